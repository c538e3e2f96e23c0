package matcher

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// joinAll joins the partitions on opts.Workers goroutines.
func joinAll(ctx context.Context, stores []*setStore, seed maphash.Seed, opts Options, emit func([]uint32) error, res *Result) error {
	var (
		next    atomic.Int64
		matches atomic.Int64
		emitMu  sync.Mutex
		dups    = make([]atomic.Int64, len(stores))
		dupRows = make([][]uint32, len(stores)) // under emitMu
	)
	// The first error (a worker's, or emit's) cancels the others.
	g, gctx := errgroup.WithContext(ctx)
	for range opts.Workers {
		g.Go(func() error {
			w := newWorker(len(stores), seed, opts.chunk)
			for {
				p := int(next.Add(1) - 1)
				if p >= partitions {
					return nil
				}
				if err := gctx.Err(); err != nil {
					return err
				}
				if err := w.join(p, stores); err != nil {
					return err
				}
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
					continue
				}
				emitMu.Lock()
				err := w.emit(emit)
				emitMu.Unlock()
				if err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
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

// worker joins one partition at a time with an open-addressing hash table
// (linear probing, load at most 1/2) over the distinct tokens of every set
// in the partition. It keeps its buffers from one partition to the next.
type worker struct {
	n    int // sets
	seed maphash.Seed
	all  uint64 // mask with a bit for every set

	slots   []int32 // index into entries, or -1
	entries []entry
	rows    []uint32 // n rows per entry
	dups    []int64
	dupRows [][]uint32 // per set: rows dropped in this partition

	buf  []byte
	dec  []Pair
	out  []uint32
	zero []uint32 // n zero rows, appended for each new entry
}

type entry struct {
	tok  [TokenSize]byte
	mask uint64 // the sets the token was seen in
}

func newWorker(n int, seed maphash.Seed, chunk int) *worker {
	return &worker{
		n: n, seed: seed, all: 1<<uint(n) - 1, dups: make([]int64, n), dupRows: make([][]uint32, n),
		buf: make([]byte, chunk*pairBytes), dec: make([]Pair, chunk), out: make([]uint32, n),
		zero: make([]uint32, n),
	}
}

func (w *worker) reset(size int) {
	capacity := 16
	for capacity < 2*size {
		capacity <<= 1
	}
	if cap(w.slots) >= capacity {
		w.slots = w.slots[:capacity]
	} else {
		w.slots = make([]int32, capacity)
	}
	for i := range w.slots {
		w.slots[i] = -1
	}
	w.entries = w.entries[:0]
	w.rows = w.rows[:0]
	clear(w.dups)
	for k := range w.dupRows {
		w.dupRows[k] = w.dupRows[k][:0]
	}
}

func (w *worker) join(p int, stores []*setStore) error {
	size := 0
	for _, s := range stores {
		size += s.partitionSize(p)
	}
	w.reset(size)
	mask := uint64(len(w.slots) - 1)
	for k, s := range stores {
		bit := uint64(1) << uint(k)
		err := s.each(p, w.buf, w.dec, func(pairs []Pair) {
			for i := range pairs {
				pr := &pairs[i]
				// The high bits chose the partition; the low bits pick
				// the slot.
				j := maphash.Bytes(w.seed, pr.Token[:]) & mask
				for {
					e := w.slots[j]
					if e < 0 {
						w.slots[j] = int32(len(w.entries))
						w.entries = append(w.entries, entry{tok: pr.Token, mask: bit})
						w.rows = append(w.rows, w.zero...)
						w.rows[len(w.rows)-w.n+k] = pr.Row
						break
					}
					en := &w.entries[e]
					if en.tok == pr.Token {
						if en.mask&bit != 0 {
							// The lowest row wins: the first occurrence
							// in the member's list, in any read order.
							w.dups[k]++
							kept := &w.rows[int(e)*w.n+k]
							dropped := pr.Row
							if dropped < *kept {
								*kept, dropped = dropped, *kept
							}
							w.dupRows[k] = append(w.dupRows[k], dropped)
						} else {
							en.mask |= bit
							w.rows[int(e)*w.n+k] = pr.Row
						}
						break
					}
					j = (j + 1) & mask
				}
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
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
