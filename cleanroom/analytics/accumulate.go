package analytics

import (
	"context"
	"runtime"
	"slices"
	"sync"
)

// The group-by pass. Every matched person the filters keep is added to its
// group's accumulators, all metrics in one pass over the join, a block of
// people at a time: first the block's group slots (the group_by columns'
// codes combined into one slot number, column by column), then the
// filters, which send the people they drop to a trash slot, then each
// metric in a tight loop of its own over the block. No maps (unless the
// groups are too many for flat arrays), no per-person branches on the
// plan, no per-person calls through an interface. Workers take contiguous
// shares of the join, each into accumulators of its own, added up after.

// blockRows is how many people a worker handles at a time.
const blockRows = 1024

// checkEvery is how many people a worker handles between looks at its
// context, so that a query stops soon after its deadline or its client.
const checkEvery = 1 << 16

// accumulators of one query, indexed by group slot.
type accumulators struct {
	count []int64
	sums  [][]float64 // per metric: sum, avg, roi revenue
	costs [][]float64 // per metric: roi cost column
	lift  [][4][]int64
	denom [][]int64 // per metric: match-rate denominators
}

// prepared holds a metric's readers and per-code lookups, made once per
// query.
type prepared struct {
	vals     reader   // sum, avg
	revenue  []reader // roi
	cost     reader
	exposed  []uint8 // lift: per code, 2 if exposed
	convert  []uint8 // lift: per code, 1 if converted
	revSpan  float64
	costSpan float64
}

// prepare makes each metric's readers and lookups.
func (p *Plan) prepare() []prepared {
	prep := make([]prepared, len(p.Metrics))
	for i := range p.Metrics {
		m := &p.Metrics[i]
		switch m.Kind {
		case Sum, Avg:
			prep[i].vals = m.Column.reader(m.Column.inJoin())
		case ROI:
			for _, r := range m.Revenue {
				prep[i].revenue = append(prep[i].revenue, r.reader(r.inJoin()))
				prep[i].revSpan += r.span()
			}
			if m.Cost != nil {
				prep[i].cost = m.Cost.reader(m.Cost.inJoin())
				prep[i].costSpan = m.Cost.span()
			}
		case Lift:
			prep[i].exposed = flags(m.Exposed.Col, 2)
			prep[i].convert = flags(m.Converted.Col, 1)
		}
	}
	return prep
}

// flags is, per code of a dictionary column, v if its value is truthy and
// 0 if not.
func flags(c *Column, v uint8) []uint8 {
	out := make([]uint8, len(c.truthy))
	for i, t := range c.truthy {
		if t {
			out[i] = v
		}
	}
	return out
}

func grow[T any](s []T, n int) []T {
	if n <= len(s) {
		return s
	}
	return append(s, make([]T, n-len(s))...)
}

// newAccumulators makes flat accumulators for size slots.
func (p *Plan) newAccumulators(size int) *accumulators {
	a := &accumulators{sums: make([][]float64, len(p.Metrics)), costs: make([][]float64, len(p.Metrics)),
		lift: make([][4][]int64, len(p.Metrics)), denom: make([][]int64, len(p.Metrics))}
	a.grow(p, size)
	return a
}

// grow makes room for n slots.
func (a *accumulators) grow(p *Plan, n int) {
	if n <= len(a.count) {
		return
	}
	a.count = grow(a.count, n)
	for i, m := range p.Metrics {
		switch m.Kind {
		case Sum, Avg:
			a.sums[i] = grow(a.sums[i], n)
		case ROI:
			a.sums[i] = grow(a.sums[i], n)
			if m.Cost != nil {
				a.costs[i] = grow(a.costs[i], n)
			}
		case Lift:
			for c := range a.lift[i] {
				a.lift[i][c] = grow(a.lift[i][c], n)
			}
		}
	}
}

// each calls fn with every accumulator array of a, the counts first.
func (a *accumulators) each(ints func([]int64), floats func([]float64)) {
	ints(a.count)
	for i := range a.sums {
		floats(a.sums[i])
		floats(a.costs[i])
		for c := range a.lift[i] {
			ints(a.lift[i][c])
		}
	}
}

// clearSlot zeroes slot s (a block's trash slot, in sparse mode, which a
// later block may give a group).
func (a *accumulators) clearSlot(s int) {
	a.each(func(v []int64) {
		if s < len(v) {
			v[s] = 0
		}
	}, func(v []float64) {
		if s < len(v) {
			v[s] = 0
		}
	})
}

// trim drops the slots from n on (the trash slot).
func (a *accumulators) trim(n int) {
	a.count = a.count[:min(n, len(a.count))]
	for i := range a.sums {
		a.sums[i] = a.sums[i][:min(n, len(a.sums[i]))]
		a.costs[i] = a.costs[i][:min(n, len(a.costs[i]))]
		for c := range a.lift[i] {
			a.lift[i][c] = a.lift[i][c][:min(n, len(a.lift[i][c]))]
		}
	}
}

// add adds o's flat accumulators into a's.
func (a *accumulators) add(o *accumulators) {
	for s, v := range o.count {
		a.count[s] += v
	}
	for i := range a.sums {
		for s, v := range o.sums[i] {
			a.sums[i][s] += v
		}
		for s, v := range o.costs[i] {
			a.costs[i][s] += v
		}
		for c := range a.lift[i] {
			for s, v := range o.lift[i][c] {
				a.lift[i][c][s] += v
			}
		}
	}
}

// accumulateAll adds up every matched person the filters keep: in flat
// accumulators, one set per core over a share of the rows, added up after;
// or, with too many possible groups for flat arrays, in one pass through a
// map.
func (p *Plan) accumulateAll(ctx context.Context, g *grouping, prep []prepared) (*accumulators, error) {
	n := p.Table.Len()
	if len(p.Metrics) == 0 {
		n = 0 // a k-means profile alone releases no group rows
	}
	if !g.dense {
		acc := p.newAccumulators(0)
		p.accumulate(ctx, g, acc, prep, 0, n)
		acc.trim(len(g.keys))
		return acc, ctx.Err()
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), n/50_000))
	parts := make([]*accumulators, workers)
	var wg sync.WaitGroup
	for w := range workers {
		parts[w] = p.newAccumulators(g.size + 1) // and the trash slot
		wg.Go(func() { p.accumulate(ctx, g, parts[w], prep, w*n/workers, (w+1)*n/workers) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	acc := parts[0]
	for _, o := range parts[1:] {
		acc.add(o)
	}
	acc.trim(g.size)
	return acc, nil
}

// block is one worker's view of a block of people: of matched people (the
// join pass), or of one member's list (match-rate denominators).
type block struct {
	rows   [][]uint32 // per member: the block's rows in its list
	ident  []uint32   // the join pass: the block's matched people, where columns in join order are read
	joined bool       // the join pass: columns in join order are read at ident
	slots  []uint32   // per person: its group slot, or the trash slot
	buf    [][]float64
}

func (p *Plan) newBlock(joined bool) *block {
	b := &block{rows: make([][]uint32, len(p.Table.Rows)), ident: make([]uint32, blockRows), joined: joined,
		slots: make([]uint32, blockRows)}
	for i := range p.Metrics {
		if m := &p.Metrics[i]; m.Kind == ROI && len(m.Revenue) > 1 {
			for len(b.buf) < len(m.Revenue) {
				b.buf = append(b.buf, make([]float64, blockRows))
			}
		}
	}
	return b
}

// at points b at the matched people lo..hi-1 (at most blockRows).
func (b *block) at(t *Table, lo, hi int) {
	for m := range b.rows {
		b.rows[m] = t.Rows[m][lo:hi]
	}
	b.ident = b.ident[:hi-lo]
	for j := range b.ident {
		b.ident[j] = uint32(lo + j)
	}
	b.slots = b.slots[:hi-lo]
}

// col returns the column the block reads for r, and the block's rows in
// it.
func (b *block) col(r *Ref) (*Column, []uint32) {
	if b.joined && r.Joined != nil {
		return r.Joined, b.ident
	}
	return r.Col, b.rows[r.Member]
}

// filter sends the people of the block that a filter drops to trash.
func (p *Plan) filter(b *block, trash uint32) {
	for i := range p.Filters {
		f := &p.Filters[i]
		c, rows := b.col(&f.Ref)
		f.drop(b.slots, c, rows, trash)
	}
}

// accumulate adds the matched people lo..hi-1 into acc (which, in dense
// mode, has the trash slot g.size).
func (p *Plan) accumulate(ctx context.Context, g *grouping, acc *accumulators, prep []prepared, lo, hi int) {
	b := p.newBlock(true)
	for start := lo; start < hi; start += blockRows {
		if (start-lo)%checkEvery == 0 && ctx.Err() != nil {
			return
		}
		b.at(p.Table, start, min(start+blockRows, hi))
		trash := uint32(g.size)
		if !g.dense {
			trash = noSlot
		}
		g.blockSlots(b, trash, true)
		p.filter(b, trash)
		if !g.dense {
			// The trash slot is the one past the groups seen so far.
			trash = uint32(len(g.keys))
			acc.grow(p, int(trash)+1)
			for j, s := range b.slots {
				if s == noSlot {
					b.slots[j] = trash
				}
			}
		}
		p.addBlock(b, acc, prep)
		if !g.dense {
			acc.clearSlot(int(trash))
		}
	}
}

// addBlock adds a block's people into their slots, a metric at a time.
func (p *Plan) addBlock(b *block, acc *accumulators, prep []prepared) {
	for _, s := range b.slots {
		acc.count[s]++
	}
	for mi := range p.Metrics {
		m, pr := &p.Metrics[mi], &prep[mi]
		switch m.Kind {
		case Sum, Avg:
			_, rows := b.col(&m.Column.Ref)
			pr.vals.addTo(acc.sums[mi], b.slots, rows)
		case ROI:
			if len(m.Revenue) == 1 {
				_, rows := b.col(&m.Revenue[0].Ref)
				pr.revenue[0].addTo(acc.sums[mi], b.slots, rows)
			} else {
				// A person's revenue columns are added in order, as one
				// sum.
				for ri := range pr.revenue {
					_, rows := b.col(&m.Revenue[ri].Ref)
					pr.revenue[ri].gather(b.buf[ri], rows)
				}
				sums, buf := acc.sums[mi], b.buf[:len(pr.revenue)]
				for j, s := range b.slots {
					for _, vals := range buf {
						sums[s] += vals[j]
					}
				}
			}
			if m.Cost != nil {
				_, rows := b.col(&m.Cost.Ref)
				pr.cost.addTo(acc.costs[mi], b.slots, rows)
			}
		case Lift:
			exposed, convert := pr.exposed, pr.convert
			ec, re := b.col(&m.Exposed)
			cc, rc := b.col(&m.Converted)
			eCodes, cCodes := ec.Codes, cc.Codes
			lift := &acc.lift[mi]
			for j, s := range b.slots {
				lift[exposed[eCodes[re[j]]]+convert[cCodes[rc[j]]]][s]++
			}
		}
	}
}

// denominators counts, for each match-rate metric, the member's whole list
// by the same groups and filters (all of that member's columns), once per
// distinct person: the rows that repeat an earlier row's identifier are
// skipped. Only the groups of the matched people release anything.
//
// Dense groups are slots of flat arrays. Sparse ones are counted in a
// grouping of the member's list alone, which takes every group the list
// holds, and then read at the matched people's groups: looking each of the
// member's people up in the matched groups' map would take a time the
// overlap sets (an empty map answers without hashing, one of a single
// group hashes every key), and so tell a member whose list is one person
// and made-up ones whether that person is in the other list.
func (p *Plan) denominators(g *grouping, acc *accumulators) {
	for mi := range p.Metrics {
		m := &p.Metrics[mi]
		if m.Kind != MatchRate {
			continue
		}
		own, trash := g, uint32(len(acc.count))
		if !g.dense {
			own, trash = &grouping{cols: g.cols, mult: g.mult, slot: map[groupKey]int32{}}, noSlot
		}
		var denom []int64
		if g.dense {
			denom = make([]int64, trash+1)
		}
		b := p.newBlock(false)
		ident := make([]uint32, blockRows)
		dups := m.Duplicates
		for lo := 0; lo < m.MemberRows; lo += blockRows {
			hi := min(lo+blockRows, m.MemberRows)
			ident = ident[:hi-lo]
			for j := range ident {
				ident[j] = uint32(lo + j)
			}
			// Every column grouped or filtered is the member's own.
			for mm := range b.rows {
				b.rows[mm] = ident
			}
			b.slots = b.slots[:hi-lo]
			own.blockSlots(b, trash, !g.dense)
			p.filter(b, trash)
			for len(dups) > 0 && int(dups[0]) < hi {
				if int(dups[0]) >= lo {
					b.slots[int(dups[0])-lo] = trash
				}
				dups = dups[1:]
			}
			if !g.dense {
				denom = slices.Grow(denom, len(own.keys)-len(denom))[:len(own.keys)]
			}
			for _, s := range b.slots {
				if s != noSlot {
					denom[s]++
				}
			}
		}
		if g.dense {
			acc.denom[mi] = denom[:trash]
			continue
		}
		matched := make([]int64, len(acc.count))
		for s, k := range g.keys {
			if o, ok := own.slot[k]; ok {
				matched[s] = denom[o]
			}
		}
		acc.denom[mi] = matched
	}
}
