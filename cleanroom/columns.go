package cleanroom

import (
	"errors"
	"fmt"
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

// cacheBudget bounds the decoded columns kept in memory (4 bytes a row
// each, and their dictionaries).
const cacheBudget = 1 << 30

// columnCache keeps decoded attribute columns and join tables: queries on
// a collaboration read the same few columns again and again, and decoding a
// million-row column from its segments costs more than answering a query.
// Entries are keyed by upload and match run, which never change once
// written, so nothing is ever stale; the oldest go first past the budget.
//
// Loading happens outside the lock, once per key however many queries ask
// for it at the same time (singleflight): a query on one dataset never
// waits for another dataset's decode.
type columnCache struct {
	flight singleflight.Group
	mu     sync.Mutex // guards what follows
	items  map[string]*cacheItem
	order  []string
	bytes  int64
}

type cacheItem struct {
	cols  map[int]*analytics.Column // by column index
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

func (c *columnCache) store(key string, it *cacheItem) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = map[string]*cacheItem{}
	}
	c.items[key] = it
	c.order = append(c.order, key)
	c.bytes += it.size
	for c.bytes > cacheBudget && len(c.order) > 1 {
		old := c.order[0]
		c.order = c.order[1:]
		c.bytes -= c.items[old].size
		delete(c.items, old)
	}
}

// column returns column index of a member's dataset, decoded. A dataset
// whose columns together take at most a quarter of the cache is decoded
// whole, in one pass over its segments, since queries come back for its
// other columns; a larger one a column at a time.
func (r *Room) column(ds *datasetRecord, index int) (*analytics.Column, error) {
	key, want := fmt.Sprintf("col/%s/%d", ds.Upload, index), []int{index}
	if 4*ds.Rows*int64(len(ds.Columns)) <= cacheBudget/4 {
		key, want = "cols/"+ds.Upload, make([]int, len(ds.Columns))
		for i := range want {
			want[i] = i
		}
	}
	it, err := r.cache.get(key, func() (*cacheItem, error) {
		cols, err := r.decodeColumns(ds, want)
		if err != nil {
			return nil, err
		}
		it := &cacheItem{cols: map[int]*analytics.Column{}}
		for i, col := range cols {
			it.cols[want[i]] = col
			it.size += int64(4 * col.Len())
			for _, v := range col.Dict {
				it.size += int64(len(v)) + 16
			}
		}
		return it, nil
	})
	if err != nil {
		return nil, err
	}
	return it.cols[index], nil
}

// decodeColumns decodes the columns want of a dataset in one pass over its
// segments. Parts are decoded on all cores, a window at a time, each into
// dictionaries of its own, then appended in order.
func (r *Room) decodeColumns(ds *datasetRecord, want []int) ([]*analytics.Column, error) {
	slot := make([]int, len(ds.Columns)) // column → its place in want, or -1
	for i := range slot {
		slot[i] = slices.Index(want, i)
	}
	all := make([]*analytics.ColumnBuilder, len(want))
	for i := range all {
		all[i] = analytics.NewColumnBuilder(int(ds.Rows))
	}
	window := make([][]*analytics.ColumnBuilder, 8*runtime.GOMAXPROCS(0))
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
				bs := make([]*analytics.ColumnBuilder, len(want))
				for j := range bs {
					bs[j] = analytics.NewColumnBuilder(p.Rows)
				}
				window[i] = bs
				return p.EachValue(func(col int, v []byte) {
					if j := slot[col]; j >= 0 {
						bs[j].AddBytes(v)
					}
				})
			})
		})
		if err != nil {
			return nil, err
		}
		// Columns are appended to on all cores too: they are independent.
		onAllCores(len(all), func(j int) error {
			for _, bs := range window[:n] {
				all[j].Append(bs[j])
			}
			return nil
		})
	}
	cols := make([]*analytics.Column, len(all))
	for i, b := range all {
		cols[i] = b.Column()
	}
	return cols, nil
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

// table returns the join of a collaboration's latest match run.
func (r *Room) table(c *collabRecord) (*analytics.Table, error) {
	it, err := r.cache.get(joinRef(c.ID, c.Match.Run), func() (*cacheItem, error) {
		rows := make([][]uint32, len(c.Members))
		for m := range rows {
			rows[m] = make([]uint32, 0, c.Match.Matched)
		}
		err := r.readJoin(c, func(match []uint32) {
			for m, row := range match {
				rows[m] = append(rows[m], row)
			}
		})
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil, conflict("a newer match replaced this join while the query ran; ask again")
		}
		if err != nil {
			return nil, err
		}
		return &cacheItem{table: analytics.NewTable(rows), size: int64(4 * len(c.Members) * int(c.Match.Matched))}, nil
	})
	if err != nil {
		return nil, err
	}
	return it.table, nil
}
