package cleanroom

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// defaultColumnMemory bounds the decoded columns, joins and projections
// kept in memory, unless Config.ColumnMemory sets another bound.
const defaultColumnMemory = 1 << 30

// columnCache keeps decoded attribute columns, join tables and columns
// projected onto a join: queries on a collaboration read the same few
// columns again and again, and decoding a million-row column from its
// segments costs more than answering a query. Entries are keyed by upload
// and match run, which never change once written, so nothing is ever
// stale; the oldest go first past the budget.
//
// A column is decoded in the form its use needs (columnForm) and kept in
// one form only: a dictionary serves every use, so a column decoded as
// numbers and then grouped by is decoded again as a dictionary, which
// replaces it.
//
// Loading happens outside the lock, once per key however many queries ask
// for it at the same time (singleflight, or for a dataset's columns its
// decode gate): a query on one dataset never waits for another dataset's
// decode.
type columnCache struct {
	flight   singleflight.Group
	decoding gates      // by upload: one decode of a dataset's columns at a time
	mu       sync.Mutex // guards what follows
	items    map[string]*cacheItem
	order    []string
	bytes    int64
	budget   int64 // Config.ColumnMemory; defaultColumnMemory when 0
}

// charged is what the cache charges for what it holds now.
func (c *columnCache) charged() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// charge is what the cache charges for col, a column of rows rows (a
// list's, or a join's joinRows), and whether it keeps it. The charge
// follows public facts alone: the rows, and the form the query's use gave
// (numbers or a dictionary). What the column holds follows the member's
// values (int16s or int32s or float64s, a dictionary's distinct values),
// and the other members read evictions from the latency of a refused
// query: a charge by its bytes would tell one of them whether the
// member's list holds a person with a value of a given width or a value
// no one else has. Numbers are charged at 8 bytes a row, the most they
// take; a dictionary at 4 bytes a row and dictAllowance, and one whose
// distinct values take more than that is not kept.
func (c *columnCache) charge(col *analytics.Column, rows int64) (int64, bool) {
	if !col.Dictionary() {
		return 8 * rows, true
	}
	allowance := c.dictAllowance()
	if col.DictionaryBytes() > allowance {
		return 0, false
	}
	return 4*rows + allowance, true
}

// dictAllowance is the bytes a cached column's dictionary may take: a
// sixteenth of the cache.
func (c *columnCache) dictAllowance() int64 { return c.limit() / 16 }

// limit is the bytes the cache keeps at most.
func (c *columnCache) limit() int64 {
	if c.budget <= 0 {
		return defaultColumnMemory
	}
	return c.budget
}

type cacheItem struct {
	col   *analytics.Column
	table *analytics.Table
	size  int64
}

func (c *columnCache) get(key string, load func() (*cacheItem, error)) (*cacheItem, error) {
	if it, ok := c.lookup(key); ok {
		return it, nil
	}
	v, err, _ := c.flight.Do(key, func() (any, error) {
		// A flight for key that ended just before this one began has
		// stored its item already.
		if it, ok := c.lookup(key); ok {
			return it, nil
		}
		it, err := load()
		if err != nil {
			return nil, err
		}
		c.store(key, it)
		return it, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*cacheItem), nil
}

func (c *columnCache) lookup(key string) (*cacheItem, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[key]
	return it, ok
}

// store keeps it under key, in place of what key held.
func (c *columnCache) store(key string, it *cacheItem) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = map[string]*cacheItem{}
	}
	c.removeLocked(key)
	c.items[key] = it
	c.order = append(c.order, key)
	c.bytes += it.size
	for c.bytes > c.limit() && len(c.order) > 1 {
		c.removeLocked(c.order[0])
	}
}

// remove drops key's entry, if any.
func (c *columnCache) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(key)
}

// removeIf drops every entry whose key drop reports.
func (c *columnCache) removeIf(drop func(key string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order = slices.DeleteFunc(c.order, func(key string) bool {
		if !drop(key) {
			return false
		}
		c.bytes -= c.items[key].size
		delete(c.items, key)
		return true
	})
}

func (c *columnCache) removeLocked(key string) {
	old, ok := c.items[key]
	if !ok {
		return
	}
	delete(c.items, key)
	c.bytes -= old.size
	if i := slices.Index(c.order, key); i >= 0 {
		c.order = slices.Delete(c.order, i, i+1)
	}
}

// columnForm is the form a use of a column needs it in.
type columnForm uint8

const (
	// asNumbers: read only as a bounded number (sum, avg, roi, kmeans, a
	// numeric filter, a model's numeric feature): a float64 a row, parsed
	// once, no dictionary.
	asNumbers columnForm = iota + 1
	// asDict: grouped by, filtered by value, or read as a flag: codes and
	// their dictionary.
	asDict
)

func formOf(c *analytics.Column) columnForm {
	if c.Dictionary() {
		return asDict
	}
	return asNumbers
}

// serves reports whether a column in form have serves a use needing want:
// a dictionary serves every use.
func serves(have, want columnForm) bool { return have == asDict || want == asNumbers }

func columnKey(upload string, index int) string { return fmt.Sprintf("col/%s/%d", upload, index) }

// columnSource is where a dataset's columns come from: the whole list
// (columns) or its matched rows in a join's order (joinedColumns).
type columnSource struct {
	key    func(index int) string // the cache key of a column
	rows   int64                  // the rows a column is charged for in the cache: the list's, or a join's joinRows
	decode func(want []int, forms []columnForm) ([]*analytics.Column, error)
}

// columns returns the columns of a member's dataset that want names, by
// index, each in a form that serves its use, for every row of the list.
func (r *Room) columns(ds *datasetRecord, want map[int]columnForm, hint func(int) columnForm) (map[int]*analytics.Column, error) {
	src := columnSource{
		key:  func(i int) string { return columnKey(ds.Upload, i) },
		rows: ds.Rows,
		decode: func(idx []int, forms []columnForm) ([]*analytics.Column, error) {
			return r.decodeColumns(ds, idx, forms)
		},
	}
	return r.loadColumns(ds, src, want, hint)
}

// loadColumns returns the columns of a member's dataset that want names,
// by index, each in a form that serves its use, from src. Those not cached
// are decoded in one pass over the dataset's segments; where the dataset's
// columns together take at most a quarter of the cache, the columns not
// asked for are decoded too, in the form hint gives, since queries come
// back for them.
func (r *Room) loadColumns(ds *datasetRecord, src columnSource, want map[int]columnForm, hint func(int) columnForm) (map[int]*analytics.Column, error) {
	out, missing := r.cachedColumns(src.key, want)
	if len(missing) == 0 {
		return out, nil
	}
	release, err := r.cache.decoding.acquire(context.Background(), ds.Upload, gateWidth)
	if err != nil {
		return nil, err
	}
	defer release()
	// Another query may have decoded them while this one waited.
	if out, missing = r.cachedColumns(src.key, want); len(missing) == 0 {
		return out, nil
	}
	if 8*src.rows*int64(len(ds.Columns)) <= r.cache.limit()/4 {
		for i := range ds.Columns {
			if _, ok := missing[i]; !ok {
				if _, cached := r.cache.lookup(src.key(i)); !cached {
					missing[i] = hint(i)
				}
			}
		}
	}
	idx := slices.Sorted(maps.Keys(missing))
	forms := make([]columnForm, len(idx))
	for j, i := range idx {
		forms[j] = missing[i]
	}
	cols, err := src.decode(idx, forms)
	if err != nil {
		return nil, err
	}
	for j, i := range idx {
		if size, ok := r.cache.charge(cols[j], src.rows); ok {
			r.cache.store(src.key(i), &cacheItem{col: cols[j], size: size})
		}
		if _, asked := want[i]; asked {
			out[i] = cols[j]
		}
	}
	return out, nil
}

// cachedColumns splits want into the columns cached (under key) in a form
// that serves their use and the others.
func (r *Room) cachedColumns(key func(int) string, want map[int]columnForm) (map[int]*analytics.Column, map[int]columnForm) {
	out := map[int]*analytics.Column{}
	missing := map[int]columnForm{}
	for i, form := range want {
		if it, ok := r.cache.lookup(key(i)); ok && serves(formOf(it.col), form) {
			out[i] = it.col
		} else {
			missing[i] = form
		}
	}
	return out, missing
}

// decodeColumns decodes the columns want of a dataset, each in its form,
// in one pass over its segments. Parts are decoded on all cores, a window
// at a time, each into builders of its own, then appended in order.
func (r *Room) decodeColumns(ds *datasetRecord, want []int, forms []columnForm) ([]*analytics.Column, error) {
	slot := make([]int, len(ds.Columns)) // column → its place in want, or -1
	for i := range slot {
		slot[i] = slices.Index(want, i)
	}
	all := newBuilders(forms, int(ds.Rows))
	window := make([]builders, 8*runtime.GOMAXPROCS(0))
	for lo := 0; lo < ds.Parts; lo += len(window) {
		n := min(len(window), ds.Parts-lo)
		err := onAllCores(n, func(i int) error {
			return r.withSegment(store.Segments(ds.Upload).Key(lo+i), func(seg []byte) error {
				p, err := store.DecodePart(seg)
				if err != nil {
					return err
				}
				if p.Columns != len(ds.Columns) {
					return ErrCorruptSegment
				}
				bs := newBuilders(forms, p.Rows)
				window[i] = bs
				return p.EachWanted(wanted(slot), func(int) {}, func(col int, v []byte) { bs.add(slot[col], v) })
			})
		})
		if err != nil {
			return nil, err
		}
		// Columns are appended to on all cores too: they are independent.
		onAllCores(len(want), func(j int) error {
			for _, bs := range window[:n] {
				all.append(j, bs)
			}
			return nil
		})
	}
	return all.columns(), nil
}

// builders build columns of a dataset, each in its form: a dictionary
// (dict[j]) or numbers (nums[j]).
type builders struct {
	dict []*analytics.ColumnBuilder
	nums []*analytics.NumberBuilder
}

func newBuilders(forms []columnForm, rows int) builders {
	b := builders{dict: make([]*analytics.ColumnBuilder, len(forms)), nums: make([]*analytics.NumberBuilder, len(forms))}
	for j, f := range forms {
		if f == asNumbers {
			b.nums[j] = analytics.NewNumberBuilder(rows)
		} else {
			b.dict[j] = analytics.NewColumnBuilder(rows)
		}
	}
	return b
}

func (b builders) add(j int, v []byte) {
	if d := b.dict[j]; d != nil {
		d.AddBytes(v)
		return
	}
	b.nums[j].AddBytes(v)
}

func (b builders) append(j int, o builders) {
	if d := b.dict[j]; d != nil {
		d.Append(o.dict[j])
		return
	}
	b.nums[j].Append(o.nums[j])
}

func (b builders) columns() []*analytics.Column {
	cols := make([]*analytics.Column, len(b.dict))
	for j := range cols {
		if d := b.dict[j]; d != nil {
			cols[j] = d.Column()
		} else {
			cols[j] = b.nums[j].Column()
		}
	}
	return cols
}

// onAllCores calls fn(0) to fn(n-1), GOMAXPROCS at a time, and returns
// the first error; after one, the calls not yet started are not made.
func onAllCores(n int, fn func(i int) error) error {
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	failed := atomic.Bool{}
	for i := range n {
		if failed.Load() {
			break
		}
		g.Go(func() error {
			err := fn(i)
			if err != nil {
				failed.Store(true)
			}
			return err
		})
	}
	return g.Wait()
}

// table returns the join of a collaboration's latest match, ordered by the
// first member's rows (as analytics.NewTable orders a join).
func (r *Room) table(c *collabRecord) (*analytics.Table, error) {
	it, err := r.cache.get(joinRef(c.ID, c.Match.Run), func() (*cacheItem, error) {
		t, err := r.readTable(c)
		if errors.Is(err, badger.ErrKeyNotFound) || errors.Is(err, errJoinChanged) {
			return nil, conflict("a newer match replaced this join while the query ran; ask again")
		}
		if err != nil {
			return nil, err
		}
		return &cacheItem{table: t, size: int64(4*len(c.Members)) * joinRows(c)}, nil
	})
	if err != nil {
		return nil, err
	}
	return it.table, nil
}

// errJoinChanged: the join's two reads differ.
var errJoinChanged = errors.New("cleanroom: the join changed while it was read")

// readTable reads the join in two passes over its segments, so that it is
// made in its order without sorting it or holding it twice: the first
// marks the first member's rows in a bitmap (each matched person has a
// row of its own there), the second puts each matched person at the rank
// of that row.
func (r *Room) readTable(c *collabRecord) (*analytics.Table, error) {
	if len(c.Members) == 0 {
		return &analytics.Table{}, nil
	}
	var first []uint64
	n, twice := 0, false
	err := r.readJoin(c, func(match []uint32) {
		w, bit := int(match[0]/64), uint64(1)<<(match[0]%64)
		if w >= len(first) {
			first = append(first, make([]uint64, w+1-len(first))...)
		}
		twice = twice || first[w]&bit != 0
		first[w] |= bit
		n++
	})
	if err != nil {
		return nil, err
	}
	if twice {
		return nil, fmt.Errorf("cleanroom: a join names a row of the first member twice: %w", ErrCorruptSegment)
	}
	before := make([]uint32, len(first)) // per word: the marked rows before it
	marked := uint32(0)
	for w, b := range first {
		before[w] = marked
		marked += uint32(bits.OnesCount64(b))
	}
	rows := make([][]uint32, len(c.Members))
	for m := range rows {
		rows[m] = make([]uint32, n)
	}
	seen, changed := 0, false
	err = r.readJoin(c, func(match []uint32) {
		w := int(match[0] / 64)
		if seen == n || w >= len(first) || first[w]&(uint64(1)<<(match[0]%64)) == 0 {
			changed = true
			return
		}
		seen++
		k := before[w] + uint32(bits.OnesCount64(first[w]&(uint64(1)<<(match[0]%64)-1)))
		for m, row := range match {
			rows[m][k] = row
		}
	})
	if err != nil {
		return nil, err
	}
	if changed || seen != n {
		return nil, errJoinChanged
	}
	return &analytics.Table{Rows: rows}, nil
}

// projection returns col, column index of member m's dataset, projected
// onto the collaboration's latest join (analytics.Table.Project), made
// once a join and kept in the form of col. A projection costs the join's
// length in codes or numbers, and spares every query after the first a
// read at random per matched person; the first member's columns are not
// projected, since the join is in the order of its rows already.
func (r *Room) projection(c *collabRecord, t *analytics.Table, m int, ds *datasetRecord, index int, col *analytics.Column) (*analytics.Column, error) {
	base := fmt.Sprintf("proj/%s/%s/%d/", joinRef(c.ID, c.Match.Run), ds.Upload, index)
	key, other := base+"d", base+"n"
	if !col.Dictionary() {
		key, other = other, key
	}
	project := func() (*cacheItem, error) {
		p := t.Project(col, m)
		// One projection a column: the other form's goes.
		r.cache.remove(other)
		width := int64(8)
		if p.Dictionary() {
			width = 4 // the dictionary is col's
		}
		return &cacheItem{col: p, size: width * joinRows(c)}, nil
	}
	it, err := r.cache.get(key, project)
	if err != nil {
		return nil, err
	}
	if !sameDict(it.col, col) {
		// Made from an earlier decode of the column, since evicted: the
		// codes are the same, but a projection shares its column's
		// dictionary, so it is made again.
		if it, err = project(); err != nil {
			return nil, err
		}
		r.cache.store(key, it)
	}
	return it.col, nil
}

// sameDict reports whether a projection p shares col's dictionary.
func sameDict(p, col *analytics.Column) bool {
	if len(p.Dict) != len(col.Dict) {
		return false
	}
	return len(p.Dict) == 0 || &p.Dict[0] == &col.Dict[0]
}
