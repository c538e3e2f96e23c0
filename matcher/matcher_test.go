package matcher

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/opencleanroom/cleanroom/internal/depcheck"
)

// tok makes a token from a number (a stand-in for an HMAC or a point).
func tok(i uint64) [TokenSize]byte {
	var t [TokenSize]byte
	binary.LittleEndian.PutUint64(t[:], i*0x9E3779B97F4A7C15+7)
	binary.LittleEndian.PutUint64(t[8:], i)
	return t
}

// reference is the plain, obviously right implementation: a map per set,
// the lowest row wins.
func reference(sets [][]Pair) (matches [][]uint32, dups []int64) {
	first := make([]map[[TokenSize]byte]uint32, len(sets))
	dups = make([]int64, len(sets))
	for k, s := range sets {
		first[k] = map[[TokenSize]byte]uint32{}
		for _, p := range s {
			if r, ok := first[k][p.Token]; ok {
				dups[k]++
				first[k][p.Token] = min(r, p.Row)
				continue
			}
			first[k][p.Token] = p.Row
		}
	}
	for t, r0 := range first[0] {
		rows := []uint32{r0}
		for k := 1; k < len(sets); k++ {
			r, ok := first[k][t]
			if !ok {
				rows = nil
				break
			}
			rows = append(rows, r)
		}
		if rows != nil {
			matches = append(matches, rows)
		}
	}
	sortRows(matches)
	return matches, dups
}

func sortRows(m [][]uint32) {
	slices.SortFunc(m, func(a, b []uint32) int { return slices.Compare(a, b) })
}

// genSets makes n sets of the given sizes drawing tokens from a universe
// sized so that about `overlap` of each set is shared, with `dupRate` of
// rows repeating an earlier token of the same set.
func genSets(rng *rand.Rand, sizes []int, overlap, dupRate float64) [][]Pair {
	sets := make([][]Pair, len(sizes))
	shared := uint64(1 << 40)
	for k, size := range sizes {
		var s []Pair
		for row := 0; row < size; row++ {
			var t [TokenSize]byte
			switch {
			case row > 0 && rng.Float64() < dupRate:
				t = s[rng.IntN(len(s))].Token
			case rng.Float64() < overlap:
				t = tok(shared + uint64(rng.IntN(max(1, size))))
			default:
				t = tok(uint64(k)<<32 | uint64(row))
			}
			s = append(s, Pair{Token: t, Row: uint32(row)})
		}
		sets[k] = s
	}
	return sets
}

func run(t *testing.T, sets [][]Pair, opts Options) ([][]uint32, Result) {
	t.Helper()
	readers := make([]Reader, len(sets))
	for i, s := range sets {
		readers[i] = &SliceReader{Pairs: s}
	}
	var got [][]uint32
	res, err := Intersect(context.Background(), readers, opts, func(rows []uint32) error {
		got = append(got, slices.Clone(rows))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sortRows(got)
	return got, res
}

func TestIntersectMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type tc struct {
		name    string
		sizes   []int
		overlap float64
		dups    float64
	}
	var cases []tc
	for _, sizes := range [][]int{{0, 0}, {1, 1}, {0, 50}, {1, 300}, {200, 300}, {5000, 7000}, {40000, 30000}, {300, 400, 500}, {3000, 2000, 4000}} {
		for _, ov := range []float64{0, 0.5, 1} {
			for _, d := range []float64{0, 0.1} {
				cases = append(cases, tc{fmt.Sprint(sizes, ov, d), sizes, ov, d})
			}
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sets := genSets(rng, c.sizes, c.overlap, c.dups)
			want, wantDups := reference(sets)
			for _, opts := range []Options{
				{}, // in memory
				{MemoryBudget: 1, TempDir: t.TempDir(), chunk: 4}, // spill from the first full chunk
				{Workers: 1},
				{Workers: 3, MemoryBudget: 200 << 10, TempDir: t.TempDir(), chunk: 32},
			} {
				got, res := run(t, sets, opts)
				if !slices.EqualFunc(got, want, slices.Equal) {
					t.Fatalf("opts %+v: %d matches, want %d", opts, len(got), len(want))
				}
				if res.Matches != int64(len(want)) {
					t.Fatalf("Result.Matches = %d, want %d", res.Matches, len(want))
				}
				for k := range sets {
					if res.Sets[k].Rows != int64(len(sets[k])) || res.Sets[k].Duplicates != wantDups[k] {
						t.Fatalf("set %d stats %+v, want rows %d dups %d", k, res.Sets[k], len(sets[k]), wantDups[k])
					}
				}
				spillExpected := opts.MemoryBudget == 1 && slices.ContainsFunc(c.sizes, func(n int) bool { return n >= 10000 })
				if spillExpected && !res.Spilled {
					t.Fatal("expected the spill path")
				}
			}
		})
	}
}

func TestCardinalityOnly(t *testing.T) {
	sets := genSets(rand.New(rand.NewPCG(3, 4)), []int{20000, 20000}, 0.5, 0.01)
	want, _ := reference(sets)
	res, err := Intersect(context.Background(), []Reader{&SliceReader{sets[0]}, &SliceReader{sets[1]}},
		Options{CardinalityOnly: true}, nil)
	if err != nil || res.Matches != int64(len(want)) {
		t.Fatalf("Matches = %d, %v; want %d", res.Matches, err, len(want))
	}
}

type failingReader struct{ n int }

var errDisk = errors.New("read error")

func (f *failingReader) Read(dst []Pair) (int, error) {
	if f.n <= 0 {
		return 0, errDisk
	}
	f.n -= len(dst)
	return len(dst), nil
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	one := []Reader{&SliceReader{}}
	if _, err := Intersect(ctx, one, Options{}, func([]uint32) error { return nil }); !errors.Is(err, ErrTooFewSets) {
		t.Fatalf("one set: %v", err)
	}
	sets := genSets(rand.New(rand.NewPCG(5, 6)), []int{5000, 5000}, 1, 0)
	_, err := Intersect(ctx, []Reader{&SliceReader{sets[0]}, &failingReader{n: 20000}}, Options{}, func([]uint32) error { return nil })
	if !errors.Is(err, errDisk) {
		t.Fatalf("reader error: %v", err)
	}
	stop := errors.New("enough")
	_, err = Intersect(ctx, []Reader{&SliceReader{sets[0]}, &SliceReader{sets[1]}}, Options{}, func([]uint32) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("emit error: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Intersect(cctx, []Reader{&SliceReader{sets[0]}, &SliceReader{sets[1]}}, Options{}, func([]uint32) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if _, err := Intersect(ctx, []Reader{&SliceReader{}, &SliceReader{}}, Options{}, nil); err == nil {
		t.Fatal("nil emit accepted")
	}
	if _, err := Intersect(ctx, []Reader{&SliceReader{sets[0]}, &SliceReader{sets[1]}}, Options{MemoryBudget: 1, TempDir: "/nonexistent/dir", chunk: 4}, func([]uint32) error { return nil }); err == nil {
		t.Fatal("unusable spill directory accepted")
	}
}

// TestSpillLeavesNothing: spill files are unlinked at once.
func TestSpillLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	sets := genSets(rand.New(rand.NewPCG(7, 8)), []int{20000, 20000}, 0.5, 0)
	_, res := run(t, sets, Options{MemoryBudget: 1, TempDir: dir, chunk: 8})
	if !res.Spilled {
		t.Fatal("did not spill")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("files left in the spill directory: %v", entries)
	}
}

// eofWithData returns its last batch together with io.EOF.
type eofWithData struct{ SliceReader }

func (e *eofWithData) Read(dst []Pair) (int, error) {
	n, _ := e.SliceReader.Read(dst)
	if len(e.Pairs) == 0 {
		return n, io.EOF
	}
	return n, nil
}

func TestReaderEOFWithData(t *testing.T) {
	sets := genSets(rand.New(rand.NewPCG(9, 10)), []int{10, 10}, 1, 0)
	want, _ := reference(sets)
	res, err := Intersect(context.Background(), []Reader{&eofWithData{SliceReader{sets[0]}}, &eofWithData{SliceReader{sets[1]}}},
		Options{CardinalityOnly: true}, nil)
	if err != nil || res.Matches != int64(len(want)) {
		t.Fatal(res, err)
	}
}

func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, append(depcheck.Leaves, "github.com/open-policy-agent", "github.com/dgraph-io/badger")...)
}

// TestDuplicatesLowestRowInAnyOrder: whatever order a set is read in (a
// relayed set arrives shuffled), a duplicated token is kept at its lowest
// row, and DuplicateRows lists exactly the other rows.
func TestDuplicatesLowestRowInAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	sets := genSets(rng, []int{6000, 5000, 4000}, 0.5, 0.2)
	for k := range sets {
		rng.Shuffle(len(sets[k]), func(i, j int) { sets[k][i], sets[k][j] = sets[k][j], sets[k][i] })
	}
	want, wantDups := reference(sets)
	for _, opts := range []Options{
		{DuplicateRows: true},
		{DuplicateRows: true, Workers: 3, MemoryBudget: 1, TempDir: t.TempDir(), chunk: 8},
	} {
		got, res := run(t, sets, opts)
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("opts %+v: matches differ from the lowest-row reference", opts)
		}
		for k, s := range sets {
			dropped := droppedRows(s)
			if res.Sets[k].Duplicates != wantDups[k] || !slices.Equal(res.Sets[k].DuplicateRows, dropped) {
				t.Fatalf("set %d: %d duplicates, rows %v…, want %d, %v…", k, res.Sets[k].Duplicates,
					head(res.Sets[k].DuplicateRows), wantDups[k], head(dropped))
			}
		}
	}
}

func head(s []uint32) []uint32 { return s[:min(len(s), 5)] }
