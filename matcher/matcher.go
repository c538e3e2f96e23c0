package matcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// TokenSize is the size of a token.
const TokenSize = 32

// Pair is one element of a member's set: a token and the member's row
// number for it. Rows are 32-bit: a set holds at most 4,294,967,295 rows.
type Pair struct {
	Token [TokenSize]byte
	Row   uint32
}

// Reader streams a member's set. Read fills dst with up to len(dst) pairs
// and returns how many; at the end of the set it returns io.EOF (with or
// without a last batch of pairs), like io.Reader.
type Reader interface {
	Read(dst []Pair) (int, error)
}

// SliceReader reads pairs from memory.
type SliceReader struct{ Pairs []Pair }

// Read implements Reader.
func (s *SliceReader) Read(dst []Pair) (int, error) {
	n := copy(dst, s.Pairs)
	s.Pairs = s.Pairs[n:]
	if len(s.Pairs) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// Options tune Intersect. The zero value works.
type Options struct {
	// MemoryBudget is roughly how many bytes the stored sets may take in
	// memory before full chunks spill to disk (default 1 GiB; set it
	// below the sets' size, about 20 bytes a token, to force spilling).
	// The join's tables take at most half of it besides.
	MemoryBudget int64
	// TempDir holds spill files (default os.TempDir()).
	TempDir string
	// Workers joins partitions in parallel (default GOMAXPROCS).
	Workers int
	// CardinalityOnly counts matches without emitting them. Without
	// DuplicateRows, and for at most eight sets, the sets are then held as
	// fingerprints (see the package's documentation on counting).
	CardinalityOnly bool
	// DuplicateRows lists, in SetStats.DuplicateRows, the rows of every
	// set dropped as duplicates.
	DuplicateRows bool

	// chunk overrides the full chunk size (tests use it to take the spill
	// path with small sets); maxTable, the distinct tokens a join table
	// holds (tests use it to split partitions).
	chunk    int
	maxTable int
}

// Result summarizes an intersection.
type Result struct {
	Matches int64
	Sets    []SetStats
	Spilled bool // whether any set was spilled to disk
}

// SetStats describes one input set.
type SetStats struct {
	Rows       int64 // pairs read
	Duplicates int64 // pairs dropped because their token occurs at a lower row of the same set
	// DuplicateRows are the rows dropped, ascending (with
	// Options.DuplicateRows).
	DuplicateRows []uint32
}

// ErrTooFewSets: an intersection needs at least two sets.
var ErrTooFewSets = errors.New("matcher: need at least two sets")

// maxSets bounds the number of sets (one bit of a 64-bit mask each).
const maxSets = 64

// Intersect finds the tokens present in every set and calls emit once per
// match with the row of that token in each set, in the order of sets
// (rows is reused after emit returns). emit is called from one goroutine
// at a time. If emit returns an error, Intersect stops and returns it.
func Intersect(ctx context.Context, sets []Reader, opts Options, emit func(rows []uint32) error) (Result, error) {
	if len(sets) < 2 {
		return Result{}, ErrTooFewSets
	}
	return intersect(ctx, sets, opts, emit)
}

// Distinct reads one set and counts its pairs and its duplicates, as a
// count (opts.CardinalityOnly is implied; its distinct tokens are Rows -
// Duplicates). It reads the set once, where intersecting a set with itself
// reads it twice.
func Distinct(ctx context.Context, set Reader, opts Options) (SetStats, error) {
	opts.CardinalityOnly = true
	res, err := intersect(ctx, []Reader{set}, opts, nil)
	if err != nil {
		return SetStats{}, err
	}
	return res.Sets[0], nil
}

// intersect is Intersect for one set or more: with one, every distinct
// token is a match.
func intersect(ctx context.Context, sets []Reader, opts Options, emit func(rows []uint32) error) (Result, error) {
	if len(sets) > maxSets {
		return Result{}, fmt.Errorf("matcher: at most %d sets", maxSets)
	}
	if opts.MemoryBudget <= 0 {
		opts.MemoryBudget = 1 << 30
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	if opts.chunk <= 0 {
		opts.chunk = defaultChunk
	}
	if emit == nil && !opts.CardinalityOnly {
		return Result{}, errors.New("matcher: emit is nil and CardinalityOnly is not set")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if opts.CardinalityOnly && !opts.DuplicateRows && len(sets) <= maxCountSets {
		return count(ctx, sets, opts)
	}

	f := newPrinter()
	stores, res, err := readSets(ctx, sets, opts, f.rowParts)
	defer closeAll(stores)
	if err != nil {
		return Result{}, err
	}
	if err := joinAll(ctx, stores, opts, emit, &res); err != nil {
		return Result{}, err
	}
	return res, nil
}

// readSets reads every set at once, one goroutine each (reading is I/O or
// decoding bound in the caller's Reader, partitioning is cheap), storing
// each as elements that convert makes; the first failure cancels the
// others. The result holds each set's rows. The stores are the caller's
// to close, on error too.
func readSets[E element](ctx context.Context, sets []Reader, opts Options, convert func([]Pair, []E, []uint8)) ([]*setStore[E], Result, error) {
	mem := &budget{limit: opts.MemoryBudget}
	stores := make([]*setStore[E], len(sets))
	for i := range stores {
		stores[i] = newSetStore[E](mem, opts.TempDir, opts.chunk)
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, r := range sets {
		g.Go(func() error {
			if err := stores[i].readAll(gctx, r, convert); err != nil {
				return fmt.Errorf("matcher: set %d: %w", i, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return stores, Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return stores, Result{}, err
	}
	res := Result{Sets: make([]SetStats, len(sets))}
	for i, s := range stores {
		res.Sets[i].Rows = s.rows
		res.Spilled = res.Spilled || s.spilled()
	}
	return stores, res, nil
}

func closeAll[E element](stores []*setStore[E]) {
	for _, s := range stores {
		s.close()
	}
}

// budget counts the bytes of chunks held in memory across all sets.
type budget struct {
	limit int64
	used  atomic.Int64
	over  atomic.Bool // once over, every set spills its full chunks
}

func (b *budget) add(n int64) {
	if b.used.Add(n) > b.limit {
		b.over.Store(true)
	}
}
