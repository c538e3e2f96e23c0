package cleanroom

import (
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
)

// cacheBudget bounds the decoded columns kept in memory (4 bytes a row
// each, and their dictionaries).
const cacheBudget = 1 << 30

// columnCache keeps decoded attribute columns and join tables: queries on
// a collaboration read the same few columns again and again, and decoding a
// million-row column from its segments costs more than answering a query.
// Entries are keyed by upload and match run, which never change once
// written, so nothing is ever stale; the oldest go first past the budget.
type columnCache struct {
	mu    sync.Mutex
	items map[string]*cacheItem
	order []string
	bytes int64
}

type cacheItem struct {
	col   *analytics.Column
	table *analytics.Table
	size  int64
}

func (c *columnCache) get(key string, load func() (*cacheItem, error)) (*cacheItem, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if it, ok := c.items[key]; ok {
		return it, nil
	}
	it, err := load()
	if err != nil {
		return nil, err
	}
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
	return it, nil
}

// column returns column index of a member's dataset, decoded.
func (r *Room) column(ds *datasetRecord, index int) (*analytics.Column, error) {
	it, err := r.cache.get(fmt.Sprintf("col/%s/%d", ds.Upload, index), func() (*cacheItem, error) {
		b := analytics.NewColumnBuilder(int(ds.Rows))
		for p := range ds.Parts {
			seg, err := r.segment(partKey(prefixSegment+ds.Upload, p))
			if err != nil {
				return nil, err
			}
			s, err := decodeSegment(seg)
			if err != nil {
				return nil, err
			}
			if err := s.values([]int{index}, func(_ int, v []string) { b.Add(v[0]) }); err != nil {
				return nil, err
			}
		}
		col := b.Column()
		size := int64(4 * col.Len())
		for _, v := range col.Dict {
			size += int64(len(v)) + 16
		}
		return &cacheItem{col: col, size: size}, nil
	})
	if err != nil {
		return nil, err
	}
	return it.col, nil
}

// table returns the join of a collaboration's latest match run.
func (r *Room) table(c *collabRecord) (*analytics.Table, error) {
	it, err := r.cache.get(fmt.Sprintf("join/%s/%d", c.ID, c.Match.Run), func() (*cacheItem, error) {
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
