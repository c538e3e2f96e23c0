package cleanroom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestGather: each matched row's rank among a member's matched rows, and
// each part's first rank, whether the join is in the member's row order
// or not; a join naming a row twice or outside the list is refused.
func TestGather(t *testing.T) {
	ds := &datasetRecord{RowsPerPart: 5, Parts: 40} // 200 rows
	for _, tc := range []struct {
		name    string
		rows    []uint32
		ordered bool // the join is ordered by these rows
		bad     bool
	}{
		{"empty", nil, true, false},
		{"in order", []uint32{0, 3, 4, 5, 63, 64, 65, 127, 128, 199}, true, false},
		{"in order by chance", []uint32{0, 3, 4, 5, 63, 64, 65, 127, 128, 199}, false, false},
		{"out of order", []uint32{199, 0, 64, 7, 63, 128, 5, 12, 130}, false, false},
		{"ordered but out of order", []uint32{199, 0, 64, 7}, true, true},
		{"twice", []uint32{4, 9, 4}, false, true},
		{"outside", []uint32{3, 200}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := newGather(ds, tc.rows, tc.ordered)
			if tc.bad {
				if !errors.Is(err, ErrCorruptSegment) {
					t.Fatalf("err %v, want ErrCorruptSegment", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sorted := slices.Sorted(slices.Values(tc.rows))
			if g.sorted != tc.ordered {
				t.Errorf("sorted %v", g.sorted)
			}
			for k, row := range sorted {
				if got := g.rank(row); got != k {
					t.Errorf("row %d has rank %d, want %d", row, got, k)
				}
			}
			for p := range ds.Parts {
				n := 0
				for _, row := range tc.rows {
					if int(row)/ds.RowsPerPart == p {
						n++
						if !g.has(int(row)) {
							t.Errorf("row %d is not marked", row)
						}
					}
				}
				if got := g.first[p+1] - g.first[p]; got != n {
					t.Errorf("part %d: %d matched rows, want %d", p, got, n)
				}
			}
		})
	}
}

// TestJoinedColumnsAreProjections: every column of every member, in either
// form, decoded at the matched rows in the join's order, is the column of
// the whole list projected onto the join: the same dictionary in the same
// order, the same codes, the same numbers.
func TestJoinedColumnsAreProjections(t *testing.T) {
	names := []string{"alpha", "bravo", "charlie"}
	lists := makeTruthLists(names, 11)
	tr := startRoom(t)
	c, _ := matchTruthLists(t, tr, lists, map[string]any{}, 20)
	table, err := tr.room.table(c)
	if err != nil {
		t.Fatal(err)
	}
	if table.Len() < 100 {
		t.Fatalf("%d matched: too few to test", table.Len())
	}
	// The table read in place is the join as NewTable orders it.
	read := make([][]uint32, len(names))
	if err := tr.room.readJoin(c, func(match []uint32) {
		for m, row := range match {
			read[m] = append(read[m], row)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if slices.IsSorted(read[0]) {
		t.Fatal("the join is stored in the first member's order: its ordering goes untested")
	}
	if want := analytics.NewTable(read); !reflect.DeepEqual(table.Rows, want.Rows) {
		t.Fatal("the table differs from the join NewTable orders")
	}
	compared := 0
	for m, name := range names {
		ds := c.Datasets[name]
		if ds.Parts < 3*32 {
			t.Fatalf("%s has %d parts: too few for several windows", name, ds.Parts)
		}
		if m > 0 && slices.IsSorted(table.Rows[m]) {
			t.Fatalf("%s's rows are in the join's order: the permutation goes untested", name)
		}
		for i := range ds.Columns {
			for _, form := range []columnForm{asNumbers, asDict} {
				whole, err := tr.room.decodeColumns(ds, []int{i}, []columnForm{form})
				if err != nil {
					t.Fatal(err)
				}
				joined, err := tr.room.decodeJoined(ds, table.Rows[m], m == 0, []int{i}, []columnForm{form})
				if err != nil {
					t.Fatal(err)
				}
				want, got := table.Project(whole[0], m), joined[0]
				if got.Len() != table.Len() || got.Dictionary() != (form == asDict) {
					t.Fatalf("%s column %d: %d rows, dictionary %v", name, i, got.Len(), got.Dictionary())
				}
				if form == asDict {
					if !slices.Equal(got.Dict, want.Dict) || !slices.Equal(got.Codes, want.Codes) {
						t.Fatalf("%s column %d: dictionary %q, codes %v\nwant %q, %v", name, i, got.Dict, got.Codes[:10], want.Dict, want.Codes[:10])
					}
					continue
				}
				all := make([]uint32, table.Len())
				for j := range all {
					all[j] = uint32(j)
				}
				wide := analytics.Bounded{Ref: analytics.Ref{Col: want}, Lo: -math.MaxFloat64, Hi: math.MaxFloat64}
				narrow := wide
				narrow.Col = got
				if !slices.Equal(narrow.Values(all), wide.Values(all)) {
					t.Fatalf("%s column %d: the numbers differ", name, i)
				}
				compared++
			}
		}
	}
	if compared == 0 {
		t.Fatal("no column was compared as numbers")
	}
}

// TestJoinedNumbersForm: numbers decoded in the join's order are held as
// decimals at the fewest places that hold every value, the places growing
// as values need, in 2 bytes a row while int16s hold them, then 4, and as
// float64s once a value is no decimal an int32 holds; every value reads
// back bit for bit.
func TestJoinedNumbersForm(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		bytes  int // a row
		scale  int
	}{
		{"small integers", []string{"3", "-25", "0", "n/a", "32767"}, 2, 0},
		{"integers", []string{"3", "-25", "0", "n/a", "2147483647"}, 4, 0},
		{"cents", []string{"3", "19.99", "0.5", "n/a", "-0.01"}, 2, 2},
		{"cents past int16", []string{"3", "19.99", "400.5", "n/a", "-0.01"}, 4, 2},
		{"places grow", []string{"1", "2.5", "3.25", "4.125"}, 2, 3},
		{"places grow past int16", []string{"1", "2.5", "3.25", "40.125"}, 4, 3},
		{"too many places for its digits", []string{"1.5", "3000000", "0.001"}, 8, 0},
		{"too many places", []string{"1", "0.0000000001"}, 8, 0},
		{"too large", []string{"1.5", "3000000000"}, 8, 0},
		{"too large from int16s", []string{"1.5", "n/a", "3000000000"}, 8, 0},
		{"negative zero", []string{"1", "-0.00"}, 2, 0}, // read as 0
		{"exponent", []string{"1e3", "2.5"}, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(tc.values)
			o := &joinedOut{i16: make([]int16, n)}
			want := make([]float64, n)
			for i, v := range tc.values {
				want[n-1-i] = analytics.ParseNumber([]byte(v))
				o.fit(want[n-1-i])
				o.set(n-1-i, want[n-1-i]) // in an order of their own
			}
			col, err := o.column()
			if err != nil {
				t.Fatal(err)
			}
			if got := col.Bytes() / int64(n); got != int64(tc.bytes) {
				t.Errorf("%d bytes a row, want %d", got, tc.bytes)
			}
			if tc.bytes < 8 && o.scale != tc.scale {
				t.Errorf("%d places, want %d", o.scale, tc.scale)
			}
			rows := make([]uint32, n)
			for i := range rows {
				rows[i] = uint32(i)
			}
			// Bounds wide enough to clamp nothing: NaN reads as 0.
			b := analytics.Bounded{Ref: analytics.Ref{Col: col}, Lo: -math.MaxFloat64, Hi: math.MaxFloat64}
			for i, got := range b.Values(rows) {
				w := want[i]
				if w != w {
					w = 0
				}
				if math.Float64bits(got) != math.Float64bits(w) && !(w == 0 && got == 0) {
					t.Errorf("row %d reads %v, want %v", i, got, w)
				}
			}
		})
	}
}

// BenchmarkDecodeJoined: a first query's decode in the join's order, half
// of a 400,000-row list matched, for the member the join is ordered by
// (sorted) and for another (shuffled): age_band as a dimension, spend as
// a bounded number. rows/s counts the list's rows; cpu-ms/op is the CPU
// time a decode takes, on all cores together. BenchmarkDecodeColumns is
// the whole list's decode.
func BenchmarkDecodeJoined(b *testing.B) { benchmarkDecodeJoined(b, 400_000) }

// BenchmarkDecodeJoined5M is BenchmarkDecodeJoined on 5M rows, where a
// window of parts' values no longer fits in the cache.
func BenchmarkDecodeJoined5M(b *testing.B) {
	if testing.Short() {
		b.Skip("5M rows")
	}
	benchmarkDecodeJoined(b, 5_000_000)
}

func benchmarkDecodeJoined(b *testing.B, rows int) {
	tr, ds := decodeBench(b, rows)
	rng := rand.New(rand.NewPCG(1, 2))
	matched := rng.Perm(rows)[:rows/2]
	for _, order := range []string{"sorted", "shuffled"} {
		join := make([]uint32, len(matched))
		for i, r := range matched {
			join[i] = uint32(r)
		}
		if order == "sorted" {
			slices.Sort(join)
		}
		b.Run("order="+order, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				cols, err := tr.room.decodeJoined(ds, join, order == "sorted", []int{0, 1}, []columnForm{asDict, asNumbers})
				if err != nil || cols[1].Len() != len(join) {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// matchTruthLists has each list's member upload it (in parts of
// rowsPerPart rows) to a hashed collaboration c1 with settings, matches, and
// returns the collaboration and the members' clients, in the lists' order.
func matchTruthLists(t *testing.T, tr *testRoom, lists []truthList, settings map[string]any, rowsPerPart int) (*collabRecord, []*client.Client) {
	t.Helper()
	var ps []*client.Client
	for _, l := range lists {
		ps = append(ps, tr.partner(l.member, policy.RolePartner, ""))
	}
	states := tr.collab("c1", api.ModeHashed, settings, ps...)
	ctx := context.Background()
	for i, p := range ps {
		l := lists[i]
		if _, err := p.UploadCSV(ctx, client.UploadSpec{Collab: "c1", Input: l.write(t), IDColumn: "email", Kind: crypto.KindEmail,
			Columns: l.cols, State: states[p.Principal()], RowsPerPart: rowsPerPart}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ps[0].Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	c, err := tr.room.collab("c1")
	if err != nil {
		t.Fatal(err)
	}
	return c, ps
}

// FuzzLocalDict: a dictionary gives two values the same code exactly when
// they are equal, codes in the order values first appear, whatever bytes
// follow a value in the buffer it is read from (a short value is compared
// as one word loaded past its end) and across the switch to its index.
func FuzzLocalDict(f *testing.F) {
	f.Add([]byte("25-34\x0018-24\x0025-34\x00\x0025-34x\x00abcdefgh\x00abcdefg\x00abcdefgh\x00ab"), byte(3))
	f.Add([]byte("abcdefghX\x00abcdefghY\x00abcdefgh\x00bbcdefghX\x00abcdefghX"), byte(7))
	f.Add([]byte("a\x00b\x00c\x00d\x00e\x00f\x00g\x00h\x00i\x00j\x00k\x00l\x00m\x00n\x00o\x00p\x00q\x00r\x00a\x00r"), byte(0))
	f.Fuzz(func(t *testing.T, in []byte, pad byte) {
		var d localDict
		want := map[string]uint32{}
		var order []string
		for i, v := range bytes.Split(in, []byte{0}) {
			// The value read from a buffer with other bytes after it,
			// or from one that ends with it.
			buf := append(slices.Clone(v), bytes.Repeat([]byte{pad + byte(i)}, int(pad%9))...)
			v = buf[:len(v):len(buf)]
			code, ok := want[string(v)]
			if !ok {
				code = uint32(len(order))
				want[string(v)] = code
				order = append(order, string(v))
			}
			if got := d.intern(v); got != code {
				t.Fatalf("value %d %q: code %d, want %d", i, v, got, code)
			}
		}
		if !slices.Equal(d.dict, order) {
			t.Fatalf("dictionary %q, want %q", d.dict, order)
		}
	})
}

// BenchmarkLocalDict: interning a column's values as a part's decode does,
// read from the part's buffer: age bands (six values of five bytes) and
// longer values (six of twelve bytes).
func BenchmarkLocalDict(b *testing.B) {
	for _, tc := range []struct {
		name   string
		values []string
	}{
		{"short", []string{"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}},
		{"long", []string{"region-north", "region-south", "region-east1", "region-west1", "region-cent", "region-other"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const n = 4096
			var buf []byte
			var at [n][2]int
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range n {
				v := tc.values[rng.IntN(len(tc.values))]
				at[i] = [2]int{len(buf), len(buf) + len(v)}
				buf = append(append(buf, v...), ',')
			}
			for b.Loop() {
				var d localDict
				for _, a := range at {
					d.intern(buf[a[0]:a[1]])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/value")
		})
	}
}

// TestFitFormMerges: the form made from every part's own form (fitForm) is
// the form fit reaches over all the values in one pass, whatever the
// parts: a column's form follows its values, not how they were split.
func TestFitFormMerges(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	// Values at the forms' edges: not numbers, signed zeros, infinities,
	// the limits of int16s and int32s, nine places and more, magnitudes no
	// int holds.
	edges := []float64{math.NaN(), math.Copysign(0, -1), 0, math.Inf(1), math.Inf(-1),
		32767, -32767, 32768, -32768, 3276.7, -3276.8, math.MaxInt32, -math.MaxInt32, math.MinInt32, math.MaxInt32 + 1,
		1e-9, -1e-9, 1e-10, 0.123456789, 2.147483647, 2.147483648, 1.5, 0.1, 0.29, 1e300, -1e300, 5e-324, 1e15,
		21474.83647, 214748.3647, 3.2767, 3.2768, 0.000032767, 0.000032768, 999999999, 99999.9999}
	value := func() float64 {
		switch rng.IntN(9) {
		case 8:
			return edges[rng.IntN(len(edges))]
		case 0:
			return math.NaN()
		case 1:
			return float64(rng.IntN(100)) / 10 // one place
		case 2:
			return float64(rng.IntN(1000)) / 1000 // three places
		case 3:
			return float64(rng.Int64N(1 << 40)) // beyond int32
		case 4:
			return 1.23456789012 // float64s only
		case 5:
			return float64(rng.IntN(70_000)) // beyond int16
		}
		return float64(rng.IntN(200) - 100)
	}
	form := func(o *joinedOut) string {
		if o.nums != nil {
			return "float64s"
		}
		return fmt.Sprintf("int16s %v, %d places, largest magnitude %d", o.i16 != nil, o.scale, o.most)
	}
	kinds := map[[3]bool]int{}
	for trial := range 20_000 {
		n := 1 + rng.IntN(12)
		vals := make([]float64, n)
		for i := range vals {
			// Most trials hold few kinds of value, so that every form is met.
			if trial%2 == 0 && i > 0 {
				vals[i] = float64(rng.IntN(50))
				continue
			}
			vals[i] = value()
		}
		one := &joinedOut{i16: make([]int16, n)}
		for _, v := range vals {
			one.fit(v)
		}
		merged := &joinedOut{i16: make([]int16, n)}
		for lo := 0; lo < n; {
			hi := lo + 1 + rng.IntN(n-lo)
			part := &joinedOut{i16: []int16{}}
			for _, v := range vals[lo:hi] {
				part.fit(v)
			}
			merged.fitForm(part)
			lo = hi
		}
		if form(one) != form(merged) {
			t.Fatalf("values %v: one pass %s, merged from parts %s", vals, form(one), form(merged))
		}
		kinds[[3]bool{one.nums != nil, one.i16 != nil, one.scale > 0}]++
	}
	// Every kind of form was met: float64s, int16s and int32s, at no
	// places and at some.
	if len(kinds) < 5 {
		t.Errorf("forms met: %v, want float64s and int16s and int32s at zero and more places", kinds)
	}
}
