package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/opencleanroom/cleanroom/cleanroom/columnar"
	"github.com/opencleanroom/cleanroom/cleanroom/job"
)

// Person is a matched person as the join emits it: its privacy key (its
// row in the first member's list), its group's partition key, its value
// for each sum statistic (clamped), and its cell for each lift.
type Person struct {
	ID     int64
	Group  string
	Values []float64
	Cells  []int32
}

// Listed is one of a member's own people (a distinct identifier, at its
// lowest row), for the denominator of match-rate metric Metric.
type Listed struct {
	ID     int64
	Metric int32
	Group  string
}

// joinFn joins one shard of every member's export and emits the matched
// people who pass the plan's filters and fall in a group (and, for match
// rates, the member's own people likewise).
type joinFn struct {
	Export string // the export's directory or URL
	Plan   string // the job.Plan, JSON
	People bool   // emit the matched people
	Listed bool   // emit the match rates' own people

	m *columnar.Manifest
	l *layout
	c *compiled
}

func newJoinFn(export string, p *job.Plan) (*joinFn, error) {
	b, err := json.Marshal(p)
	return &joinFn{Export: export, Plan: string(b), People: true, Listed: true}, err
}

func (f *joinFn) Setup(ctx context.Context) error {
	var p job.Plan
	if err := json.Unmarshal([]byte(f.Plan), &p); err != nil {
		return err
	}
	m, err := readManifest(ctx, f.Export)
	if err != nil {
		return err
	}
	if f.l, err = newLayout(&p, m); err != nil {
		return err
	}
	f.m, f.c = m, compile(f.l, m)
	return nil
}

// shardData is one member's shard: its distinct tokens at their lowest
// rows, and the values read for the rows needed.
type shardData struct {
	lowest map[[columnar.TokenSize]byte]uint32
	need   map[uint32]int32 // row → index in vals
	vals   [][][]byte       // per needed row: the values of the layout's columns
}

func (f *joinFn) ProcessElement(ctx context.Context, shard int, emit func(Person), emitListed func(Listed)) error {
	n := len(f.l.plan.Members)
	data := make([]shardData, n)
	for pm := range n {
		lowest, err := readLowest(ctx, f.Export, f.m.Members[f.l.members[pm]].Pairs[shard])
		if err != nil {
			return err
		}
		data[pm] = shardData{lowest: lowest, need: map[uint32]int32{}}
	}
	// The tokens every member has, from the smallest member's.
	small := 0
	for pm := range data {
		if len(data[pm].lowest) < len(data[small].lowest) {
			small = pm
		}
	}
	var matched [][]uint32
	for tok := range data[small].lowest {
		rows := make([]uint32, n)
		all := true
		for pm := range data {
			r, ok := data[pm].lowest[tok]
			if !ok {
				all = false
				break
			}
			rows[pm] = r
		}
		if all && f.People {
			matched = append(matched, rows)
			for pm, r := range rows {
				data[pm].needRow(r)
			}
		}
	}
	if f.Listed {
		for _, pm := range f.c.denomMembers {
			for _, r := range data[pm].lowest {
				data[pm].needRow(r)
			}
		}
	}
	for pm := range data {
		if err := f.readValues(ctx, shard, pm, &data[pm]); err != nil {
			return err
		}
	}
	at := func(rows []uint32) func(c colAt) []byte {
		return func(c colAt) []byte {
			d := &data[c.member]
			return d.vals[d.need[rows[c.member]]][c.slot]
		}
	}
	for _, rows := range matched {
		if p, ok := f.c.person(at(rows)); ok {
			p.ID = int64(rows[0])
			emit(p)
		}
	}
	for _, dm := range f.c.denoms {
		if !f.Listed {
			break
		}
		rows := make([]uint32, n)
		for _, r := range data[dm.member].lowest {
			rows[dm.member] = r
			if key, ok := f.c.group(at(rows)); ok {
				emitListed(Listed{ID: int64(r), Metric: int32(dm.metric), Group: key})
			}
		}
	}
	return nil
}

func (d *shardData) needRow(r uint32) {
	if _, ok := d.need[r]; !ok {
		d.need[r] = int32(len(d.need))
	}
}

// readLowest reads a member's pairs file of a shard: each distinct token
// at its lowest row, as package matcher keeps it.
func readLowest(ctx context.Context, dir string, file columnar.File) (map[[columnar.TokenSize]byte]uint32, error) {
	r, err := openVerified(ctx, dir, file)
	if err != nil {
		return nil, err
	}
	lowest := map[[columnar.TokenSize]byte]uint32{}
	err = columnar.ReadPairs(r, func(tokens []byte, rows []uint32) error {
		for i, row := range rows {
			tok := [columnar.TokenSize]byte(tokens[i*columnar.TokenSize:])
			if have, ok := lowest[tok]; !ok || row < have {
				lowest[tok] = row
			}
		}
		return ctx.Err()
	})
	if err == nil {
		err = drain(r)
	} else {
		r.Close()
	}
	return lowest, err
}

// readValues reads the values of the rows d needs, in the layout's
// columns of plan member pm.
func (f *joinFn) readValues(ctx context.Context, shard, pm int, d *shardData) error {
	cols := f.l.cols[pm]
	d.vals = make([][][]byte, len(d.need))
	if len(cols) == 0 || len(d.need) == 0 {
		return nil
	}
	mem := &f.m.Members[f.l.members[pm]]
	want := make([]bool, len(mem.Columns))
	for _, c := range cols {
		want[c] = true
	}
	r, err := openVerified(ctx, f.Export, mem.Cols[shard])
	if err != nil {
		return err
	}
	seen := 0
	err = columnar.ReadCols(r, len(mem.Columns), want, func(rows []uint32, block []*columnar.Column) error {
		for i, row := range rows {
			slot, ok := d.need[row]
			if !ok {
				continue
			}
			v := make([][]byte, len(cols))
			for s, c := range cols {
				v[s] = bytes.Clone(block[c].Value(i))
			}
			d.vals[slot] = v
			seen++
		}
		return ctx.Err()
	})
	if err == nil {
		err = drain(r)
	} else {
		r.Close()
	}
	if err == nil && seen != len(d.need) {
		err = fmt.Errorf("%w: a shard's values miss rows of its pairs", columnar.ErrCorrupt)
	}
	return err
}

// compiled is a layout's per-person rules, made once per worker.
type compiled struct {
	l            *layout
	filters      []compiledFilter
	groups       []compiledGroup
	denoms       []denom
	denomMembers []int
	lifts        [][2]colAt // per lift: exposed, converted
}

type compiledFilter struct {
	at   colAt
	keep func([]byte) bool
}

type compiledGroup struct {
	at     colAt
	domain map[string]bool // nil: groups from the data
}

type denom struct{ metric, member int }

func compile(l *layout, m *columnar.Manifest) *compiled {
	c := &compiled{l: l}
	for _, f := range l.plan.Filters {
		c.filters = append(c.filters, compiledFilter{at: l.mustAt(f.Ref, m), keep: f.Keeper()})
	}
	for _, g := range l.plan.GroupBy {
		cg := compiledGroup{at: l.mustAt(g.Ref, m)}
		if g.Domain != nil {
			cg.domain = map[string]bool{}
			for _, v := range g.Domain {
				cg.domain[v] = true
			}
		}
		c.groups = append(c.groups, cg)
	}
	for _, mi := range l.lifts {
		mt := l.plan.Metrics[mi]
		c.lifts = append(c.lifts, [2]colAt{l.mustAt(*mt.Exposed, m), l.mustAt(*mt.Converted, m)})
	}
	for mi, mt := range l.plan.Metrics {
		if mt.Kind == job.MatchRate {
			pm := slices.Index(l.plan.Members, mt.Member)
			c.denoms = append(c.denoms, denom{metric: mi, member: pm})
			if !slices.Contains(c.denomMembers, pm) {
				c.denomMembers = append(c.denomMembers, pm)
			}
		}
	}
	return c
}

// group returns the partition key of a person whose values at gives, and
// false if a filter drops it or a value lies outside a declared domain.
func (c *compiled) group(at func(colAt) []byte) (string, bool) {
	for _, f := range c.filters {
		if !f.keep(at(f.at)) {
			return "", false
		}
	}
	vals := make([]string, len(c.groups))
	for i, g := range c.groups {
		v := string(at(g.at))
		if g.domain != nil && !g.domain[v] {
			return "", false
		}
		vals[i] = v
	}
	return groupKey(vals), true
}

// person makes a matched person's contributions.
func (c *compiled) person(at func(colAt) []byte) (Person, bool) {
	key, ok := c.group(at)
	if !ok {
		return Person{}, false
	}
	p := Person{Group: key, Values: make([]float64, len(c.l.sums)), Cells: make([]int32, len(c.l.lifts))}
	for i, s := range c.l.sums {
		for j, col := range s.cols {
			p.Values[i] += job.Clamp(at(col), s.b[j].Lo, s.b[j].Hi)
		}
	}
	for i, lc := range c.lifts {
		cell := int32(0)
		if job.Truthy(at(lc[0])) {
			cell += 2
		}
		if job.Truthy(at(lc[1])) {
			cell++
		}
		p.Cells[i] = cell
	}
	return p, true
}
