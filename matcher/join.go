package matcher

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// joinAll joins the partitions on opts.Workers goroutines.
func joinAll(ctx context.Context, stores []*setStore[printRow], opts Options, emit func([]uint32) error, res *Result) error {
	var (
		matches atomic.Int64
		emitMu  sync.Mutex
		dups    = make([]atomic.Int64, len(stores))
		dupRows = make([][]uint32, len(stores)) // under emitMu
	)
	maxEntries := opts.maxTable
	if maxEntries <= 0 {
		// The tables of all workers take at most half the budget on top
		// of it, or twice an average partition each if that is more (as
		// many cores as there are workers, with a small budget); a
		// partition with more distinct tokens than that, which only a
		// crafted one has (the keyed fingerprints spread tokens evenly),
		// is joined in parts.
		var rows int64
		for _, s := range stores {
			rows += s.rows
		}
		maxEntries = int(min(opts.MemoryBudget/int64(2*opts.Workers*entryBytes(len(stores))), 1<<30))
		maxEntries = max(maxEntries, int(min(2*rows/partitions, 1<<30)), 1<<12)
	}
	// The first error (a worker's, or emit's) cancels the others.
	err := onPartitions(ctx, opts.Workers, func() func(p int) error {
		w := newWorker(len(stores), opts.chunk, maxEntries)
		// Counting needs no rows: neither matches' nor duplicates'.
		w.noRows = opts.CardinalityOnly && !opts.DuplicateRows
		// flush hands on what one table found.
		flush := func() error {
			for k, d := range w.dups {
				dups[k].Add(d)
			}
			if opts.DuplicateRows {
				emitMu.Lock()
				for k, rows := range w.dupRows {
					dupRows[k] = append(dupRows[k], rows...)
				}
				emitMu.Unlock()
			}
			n := w.matches()
			matches.Add(int64(n))
			if opts.CardinalityOnly || n == 0 {
				return nil
			}
			emitMu.Lock()
			defer emitMu.Unlock()
			return w.emit(emit)
		}
		return func(p int) error { return w.join(p, stores, flush) }
	})
	if err != nil {
		return err
	}
	res.Matches = matches.Load()
	for k := range dups {
		res.Sets[k].Duplicates = dups[k].Load()
		if opts.DuplicateRows {
			slices.Sort(dupRows[k])
			res.Sets[k].DuplicateRows = dupRows[k]
		}
	}
	return nil
}

// onPartitions calls a join for every partition, on workers goroutines,
// each with a join of its own that newJoin makes; the first error cancels
// the others.
func onPartitions(ctx context.Context, workers int, newJoin func() func(p int) error) error {
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range workers {
		join := newJoin()
		g.Go(func() error {
			for {
				p := int(next.Add(1) - 1)
				if p >= partitions {
					return nil
				}
				if err := gctx.Err(); err != nil {
					return err
				}
				if err := join(p); err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// worker joins one partition at a time with an open-addressing hash table
// (linear probing, load at most 1/2) over the distinct fingerprints of
// every set in the partition. It keeps its buffers from one partition to
// the next.
//
// A slot is 32 bits: an entry's index (which needs at most log2 of the
// table's size, the table being at most half full) and, above it, a tag of
// the fingerprint, so a probe that meets another one is mostly rejected
// without reading the entry (a cache miss); equal tags are confirmed on
// the whole fingerprint.
type worker struct {
	n   int    // sets
	all uint64 // mask with a bit for every set
	max int    // distinct tokens a table may hold
	// noRows: only counts are wanted, so the table keeps no rows.
	noRows bool

	slots   []uint32 // tag | entry index+1, or 0 when empty
	idxMask uint32   // the bits of a slot that hold the index
	entries []entry
	rows    []uint32 // n rows per entry
	dups    []int64
	dupRows [][]uint32 // per set: rows dropped in this table

	buf  []printRow // a spilled chunk, read back
	out  []uint32
	zero []uint32 // n zero rows, appended for each new entry
}

type entry struct {
	key  print
	mask uint64 // the sets the fingerprint was seen in
}

// entryBytes is what a table takes for each distinct fingerprint of n
// sets: two slots, the entry and its rows.
func entryBytes(n int) int { return 2*4 + 24 + 4*n }

// errPartitionUnsplittable: more distinct fingerprints than a table may
// hold share every bit a split could use, which only a guessed key makes.
var errPartitionUnsplittable = errors.New("matcher: a partition cannot be split to fit the memory budget")

func newWorker(n, chunk, maxEntries int) *worker {
	return &worker{
		n: n, all: 1<<uint(n) - 1, max: maxEntries,
		dups: make([]int64, n), dupRows: make([][]uint32, n),
		buf: make([]printRow, chunk), out: make([]uint32, n), zero: make([]uint32, n),
	}
}

// tableSlots returns the slots of a table for size entries, at most half
// full, cleared: slots itself if it has room, or a new slice.
func tableSlots[T any](slots []T, size int) []T {
	capacity := 16
	for capacity < 2*size {
		capacity <<= 1
	}
	if cap(slots) < capacity {
		return make([]T, capacity)
	}
	slots = slots[:capacity]
	clear(slots)
	return slots
}

func (w *worker) reset(size int) {
	w.slots = tableSlots(w.slots, size)
	w.idxMask = uint32(len(w.slots) - 1)
	// The table holds at most size entries: sized once, it never grows
	// during a scan.
	if cap(w.entries) < size {
		w.entries = make([]entry, 0, size)
	}
	w.entries = w.entries[:0]
	if !w.noRows && cap(w.rows) < size*w.n {
		w.rows = make([]uint32, 0, size*w.n)
	}
	w.rows = w.rows[:0]
	clear(w.dups)
	for k := range w.dupRows {
		w.dupRows[k] = w.dupRows[k][:0]
	}
}

// join joins partition p, calling flush after each table.
func (w *worker) join(p int, stores []*setStore[printRow], flush func() error) error {
	size := 0
	for _, s := range stores {
		size += s.partitionSize(p)
	}
	return w.joinRange(p, stores, size, 0, 0, flush)
}

// joinRange joins the fingerprints of partition p whose bits below the
// partition's start with the depth bits of prefix (all of them at depth
// 0). If they are more distinct fingerprints than a table may hold, it
// drops the table and joins the two halves of the range in turn: no
// fingerprint is in both, so each match and each duplicate is found in
// exactly one table.
func (w *worker) joinRange(p int, stores []*setStore[printRow], size int, prefix uint64, depth uint, flush func() error) error {
	fits, err := w.scan(p, stores, size, prefix, depth)
	if err != nil {
		return err
	}
	if fits {
		return flush()
	}
	if depth == printBits {
		return errPartitionUnsplittable
	}
	for half := range uint64(2) {
		if err := w.joinRange(p, stores, size, prefix<<1|half, depth+1, flush); err != nil {
			return err
		}
	}
	return nil
}

// scan builds the table of one range of partition p; it reports false,
// leaving the table unfinished, if the range has too many distinct tokens.
func (w *worker) scan(p int, stores []*setStore[printRow], size int, prefix uint64, depth uint) (bool, error) {
	w.reset(min(size, w.max))
	mask := uint64(len(w.slots) - 1)
	full := false
	for k, s := range stores {
		bit := uint64(1) << uint(k)
		err := s.each(p, w.buf, func(elems []printRow) bool {
			for i := range elems {
				pr := &elems[i]
				key := pr.print()
				if depth > 0 && key.hi<<partitionBits>>(64-depth) != prefix {
					continue
				}
				if !w.insert(key, mask, pr.row, k, bit) {
					full = true
					return false
				}
			}
			return true
		})
		if err != nil || full {
			return false, err
		}
	}
	return true, nil
}

// insert adds set k's fingerprint key, at row, to the table; it reports
// false if the table is full.
func (w *worker) insert(key print, mask uint64, row uint32, k int, bit uint64) bool {
	// The high bits of hi chose the partition (and the lower ones split
	// it); the low bits of lo pick the slot, the middle ones make the tag.
	tag := uint32(key.lo>>24) &^ w.idxMask
	for j := key.lo & mask; ; j = (j + 1) & mask {
		sl := w.slots[j]
		if sl == 0 {
			if len(w.entries) == w.max {
				return false
			}
			w.entries = append(w.entries, entry{key: key, mask: bit})
			w.slots[j] = tag | uint32(len(w.entries))
			if w.noRows {
				return true
			}
			w.rows = append(w.rows, w.zero...)
			w.rows[len(w.rows)-w.n+k] = row
			return true
		}
		if sl&^w.idxMask == tag {
			e := int(sl&w.idxMask) - 1
			if en := &w.entries[e]; en.key == key {
				w.add(en, e, k, bit, row)
				return true
			}
		}
	}
}

// add records set k's row for a token already in the table.
func (w *worker) add(en *entry, e, k int, bit uint64, row uint32) {
	if en.mask&bit == 0 {
		en.mask |= bit
		if !w.noRows {
			w.rows[e*w.n+k] = row
		}
		return
	}
	w.dups[k]++
	if w.noRows {
		return
	}
	// The lowest row wins: the first occurrence in the member's list, in
	// any read order.
	kept := &w.rows[e*w.n+k]
	dropped := row
	if dropped < *kept {
		*kept, dropped = dropped, *kept
	}
	w.dupRows[k] = append(w.dupRows[k], dropped)
}

func (w *worker) matches() int {
	n := 0
	for i := range w.entries {
		if w.entries[i].mask == w.all {
			n++
		}
	}
	return n
}

func (w *worker) emit(fn func([]uint32) error) error {
	for i := range w.entries {
		if w.entries[i].mask != w.all {
			continue
		}
		copy(w.out, w.rows[i*w.n:(i+1)*w.n])
		if err := fn(w.out); err != nil {
			return err
		}
	}
	return nil
}
