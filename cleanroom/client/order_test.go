package client

import (
	"cmp"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/crypto"
)

// TestSortPlaces checks the bucket sort against slices.SortFunc, with
// places that share their top bits (a spill group's), ties, and sizes
// around the bucket sort's threshold.
func TestSortPlaces(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 7, 8, 9, 16, 100, 1000, 4097, 100_000} {
		for _, skip := range []uint{0, 3, 12, 63, 64} {
			rows := make([]orderedRow, n)
			top := rng.Uint64()
			for i := range rows {
				at := rng.Uint64()
				if skip > 0 && skip < 64 {
					at = top&^(^uint64(0)>>skip) | at>>skip
				} else if skip == 64 {
					at = top
				}
				if i%50 == 7 && i > 0 {
					at = rows[i-1].at // a tie, broken by n
				}
				rows[i] = orderedRow{at: at, n: rng.IntN(1 << 30)}
			}
			want := slices.Clone(rows)
			slices.SortFunc(want, func(a, b orderedRow) int {
				if a.less(b) {
					return -1
				}
				if b.less(a) {
					return 1
				}
				return 0
			})
			sortPlaces(rows, skip)
			if !slices.Equal(rows, want) {
				t.Fatalf("n=%d skip=%d: sortPlaces disagrees with slices.SortFunc", n, skip)
			}
		}
	}
}

// TestRowOrder: a key's place is a function of the secret and the file's
// fingerprint, and another secret or file gives another.
func TestRowOrder(t *testing.T) {
	k1, _ := crypto.NewSecret(nil)
	k2, _ := crypto.NewSecret(nil)
	places := func(o *rowOrder) []uint64 {
		out := make([]uint64, 64)
		for j := range out {
			out[j] = o.at(&crypto.MatchKey{byte(j)})
		}
		return out
	}
	a := places(newRowOrder(k1, "crc32c:00000001:10"))
	if !slices.Equal(a, places(newRowOrder(k1, "crc32c:00000001:10"))) {
		t.Fatal("the same secret and file placed the records differently")
	}
	if slices.Equal(a, places(newRowOrder(k2, "crc32c:00000001:10"))) || slices.Equal(a, places(newRowOrder(k1, "crc32c:00000002:10"))) {
		t.Fatal("another secret or file placed the records the same")
	}
	if slices.IsSorted(a) {
		t.Fatal("the places follow the keys' order")
	}
}

// BenchmarkSortPlaces sorts the places of a 10M-row list, as an audience's
// mapping does (a spill group's are a few tens of thousands), against
// slices.SortFunc in the same run.
func BenchmarkSortPlaces(b *testing.B) {
	const n = 10_000_000
	rng := rand.New(rand.NewPCG(3, 4))
	rows := make([]orderedRow, n)
	for i := range rows {
		rows[i] = orderedRow{at: rng.Uint64(), n: i}
	}
	work := make([]orderedRow, n)
	b.Run("sort=places", func(b *testing.B) {
		for b.Loop() {
			copy(work, rows)
			sortPlaces(work, 0)
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("sort=pdq", func(b *testing.B) {
		for b.Loop() {
			copy(work, rows)
			slices.SortFunc(work, func(a, b orderedRow) int {
				if a.less(b) {
					return -1
				}
				if b.less(a) {
					return 1
				}
				return 0
			})
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// TestSpill: records added to a spill of several groups (its size says an
// input of 64 MiB) come back, group after group, in the upload's order,
// with their keys and values; a spill's files go when it is removed, and
// the next upload's spill removes those a crashed run left.
func TestSpill(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "c1.rows-left-by-a-crash"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := newSpill(dir, "c1", 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if s.groups() != 16 {
		t.Fatalf("%d groups, want 16", s.groups())
	}
	if _, err := os.Stat(filepath.Join(dir, "c1.rows-left-by-a-crash")); !os.IsNotExist(err) {
		t.Fatalf("a crashed run's spill file is still there: %v", err)
	}
	order := newRowOrder(mustSecret(t), "crc32c:00000001:10")
	const n = 20_000
	type rec struct {
		at   uint64
		key  crypto.MatchKey
		vals string
	}
	var want []rec
	for j := range n {
		r := rec{vals: strings.Repeat("v", j%300)}
		r.key[0], r.key[31] = byte(j), byte(j>>8)
		r.at = order.at(&r.key)
		if err := s.add(r.at, &r.key, []byte(r.vals)); err != nil {
			t.Fatal(err)
		}
		want = append(want, r)
	}
	slices.SortStableFunc(want, func(a, b rec) int { return cmp.Compare(a.at, b.at) })
	var got []rec
	for g := range s.groups() {
		b, rows, err := s.group(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range rows {
			key, vals := entry(b, o.n)
			got = append(got, rec{o.at, key, string(vals)})
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the spill gave back %d records, not the %d added in the upload's order", len(got), len(want))
	}
	s.remove()
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) > 0 {
		t.Fatalf("files left after the spill was removed: %v", left)
	}
}

func mustSecret(t *testing.T) *crypto.Secret {
	ks, err := crypto.NewSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}
