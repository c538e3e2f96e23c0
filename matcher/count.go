package matcher

import (
	"context"
	"sync/atomic"
)

// A count (Options.CardinalityOnly, without Options.DuplicateRows) needs
// neither rows nor tokens back, only which are equal: its sets hold
// fingerprints alone, 16 bytes a token, and its tables the fingerprints
// with the mask of the sets each was seen in, in place of their top bits,
// which are the partition's and so the same for every fingerprint of it.
// That leaves a bit for each of up to eight sets.
const maxCountSets = 8

// count is intersect for at most maxCountSets sets when only counts are
// wanted.
func count(ctx context.Context, sets []Reader, opts Options) (Result, error) {
	f := newPrinter()
	stores, res, err := readSets(ctx, sets, opts, f.parts)
	defer closeAll(stores)
	if err != nil {
		return Result{}, err
	}
	var rows int64
	for _, s := range res.Sets {
		rows += s.Rows
	}

	// A table slot is two of a fingerprint's size, at most half full: the
	// tables of all workers take at most half the budget, or twice an
	// average partition each if that is more, as the join's do.
	maxEntries := opts.maxTable
	if maxEntries <= 0 {
		maxEntries = int(min(opts.MemoryBudget/int64(2*opts.Workers*2*16), 1<<30))
		maxEntries = max(maxEntries, int(min(2*rows/partitions, 1<<30)), 1<<12)
	}
	var (
		matches atomic.Int64
		dups    = make([]atomic.Int64, len(sets))
	)
	err = onPartitions(ctx, opts.Workers, func() func(p int) error {
		w := newCountWorker(len(sets), opts.chunk, maxEntries)
		return func(p int) error {
			if err := w.join(p, stores, 0, 0); err != nil {
				return err
			}
			matches.Add(w.matches)
			for k, d := range w.dups {
				dups[k].Add(d)
			}
			return nil
		}
	})
	if err != nil {
		return Result{}, err
	}
	res.Matches = matches.Load()
	for k := range dups {
		res.Sets[k].Duplicates = dups[k].Load()
	}
	return res, nil
}

// countWorker counts one partition at a time with an open-addressing table
// (linear probing, load at most 1/2) of the partition's distinct
// fingerprints, each with the mask of the sets it was seen in. It keeps its
// buffers from one partition to the next.
type countWorker struct {
	all   uint64 // mask with a bit for every set
	max   int    // distinct fingerprints a table may hold
	slots []print
	used  int     // slots in use
	full  int64   // slots whose mask is w.all
	buf   []print // a spilled chunk, read back

	// What the last join counted, over all its tables.
	matches int64
	dups    []int64
}

// The bits of a table slot's hi that hold the fingerprint; the top ones
// hold the mask of sets, which is never zero in a used slot.
const printBits = 64 - partitionBits

func newCountWorker(n, chunk, maxEntries int) *countWorker {
	return &countWorker{all: 1<<uint(n) - 1, max: maxEntries, buf: make([]print, chunk), dups: make([]int64, n)}
}

// join counts partition p, restricted to the fingerprints whose bits below
// the partition's start with the depth bits of prefix (all of them at
// depth 0). If they are more distinct fingerprints than a table may hold
// (with the default bound, more than twice an average partition's, which
// pseudorandom fingerprints all but never are), it counts the two halves
// of the range in turn: no fingerprint is in both.
func (w *countWorker) join(p int, stores []*setStore[print], prefix uint64, depth uint) error {
	if depth == 0 {
		w.matches = 0
		clear(w.dups)
	}
	size := 0
	for _, s := range stores {
		size += s.partitionSize(p)
	}
	dups := make([]int64, len(w.dups))
	fits, err := w.scan(p, stores, min(size, w.max), prefix, depth, dups)
	if err != nil {
		return err
	}
	if fits {
		w.matches += w.full
		for k, d := range dups {
			w.dups[k] += d
		}
		return nil
	}
	if depth == printBits {
		return errPartitionUnsplittable
	}
	for half := range uint64(2) {
		if err := w.join(p, stores, prefix<<1|half, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// scan builds the table of one range of partition p, counting each set's
// repeats in dups; it reports false, leaving the table unfinished, if the
// range has more than w.max distinct fingerprints.
func (w *countWorker) scan(p int, stores []*setStore[print], size int, prefix uint64, depth uint, dups []int64) (bool, error) {
	w.slots = tableSlots(w.slots, size)
	w.used, w.full = 0, 0
	mask := uint64(len(w.slots) - 1)
	full := false
	for k, s := range stores {
		bit := uint64(1) << uint(k)
		err := s.each(p, w.buf, func(prints []print) bool {
			for i := range prints {
				e := prints[i]
				if depth > 0 && e.hi<<partitionBits>>(64-depth) != prefix {
					continue
				}
				seen, ok := w.insert(e, mask, bit)
				if !ok {
					full = true
					return false
				}
				if seen {
					dups[k]++
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

// insert adds fingerprint e of the set with mask bit; it reports whether
// that set had it already, and false if the table is full.
func (w *countWorker) insert(e print, mask, bit uint64) (seen, ok bool) {
	const low = 1<<printBits - 1
	key := e.hi & low
	for j := e.lo & mask; ; j = (j + 1) & mask {
		sl := &w.slots[j]
		if sl.hi == 0 {
			if w.used == w.max {
				return false, false
			}
			w.used++
			*sl = print{hi: bit<<printBits | key, lo: e.lo}
			if bit == w.all {
				w.full++
			}
			return false, true
		}
		if sl.lo == e.lo && sl.hi&low == key {
			m := sl.hi >> printBits
			if m&bit != 0 {
				return true, true
			}
			if m|bit == w.all {
				w.full++
			}
			sl.hi |= bit << printBits
			return false, true
		}
	}
}
