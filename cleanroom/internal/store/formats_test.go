package store

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/matcher"
)

func token(i int) (t [api.TokenSize]byte) {
	for j := range t {
		t[j] = byte(i*31 + j)
	}
	return t
}

// TestPartRoundTrip: a part as partners build it decodes to its tokens and
// values, row by row.
func TestPartRoundTrip(t *testing.T) {
	for _, cols := range []int{0, 1, 3} {
		p := api.Part{Columns: cols}
		var want [][]string
		for i := range 50 {
			vals := make([]string, cols)
			for c := range vals {
				vals[c] = string(bytes.Repeat([]byte{'a' + byte(c)}, i%7+(i%5)*60)) // lengths of one and two bytes
			}
			if err := p.AppendValues(vals); err != nil {
				t.Fatal(err)
			}
			p.AppendToken(token(i))
			want = append(want, vals)
		}
		b, err := p.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodePart(b)
		if err != nil || got.Rows != 50 || got.Columns != cols {
			t.Fatalf("%d columns: %+v, %v", cols, got, err)
		}
		for i := range got.Rows {
			if tk := token(i); !bytes.Equal(got.Token(i), tk[:]) {
				t.Fatalf("row %d: token differs", i)
			}
		}
		n := 0
		err = got.EachValue(func(col int, v []byte) {
			if string(v) != want[n/max(cols, 1)][col] {
				t.Fatalf("value %d differs", n)
			}
			n++
		})
		if err != nil || n != 50*cols {
			t.Fatalf("%d values, %v", n, err)
		}
		// Every other column, the others stepped over.
		wanted := make([]bool, cols)
		for c := range wanted {
			wanted[c] = c%2 == 1
		}
		row, n := -1, 0
		err = got.EachWanted(wanted, func(r int) { row = r }, func(col int, v []byte) {
			if !wanted[col] || string(v) != want[row][col] {
				t.Fatalf("row %d column %d: %d bytes, wanted %v", row, col, len(v), wanted[col])
			}
			n++
		})
		if err != nil || row != 49 || n != 50*(cols/2) {
			t.Fatalf("%d columns: %d wanted values to row %d, %v", cols, n, row, err)
		}
	}
}

// FuzzDecodePart: decoding never panics; a part that decodes has the
// tokens it claims, and reading its values either succeeds or reports the
// segment corrupt.
func FuzzDecodePart(f *testing.F) {
	p := api.Part{Columns: 2}
	p.AppendValues([]string{"x", "yz"})
	p.AppendToken(token(1))
	b, _ := p.AppendBinary(nil)
	f.Add(b)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePart(b)
		if err != nil {
			return
		}
		if len(p.Tokens) != p.Rows*api.TokenSize {
			t.Fatalf("%d rows, %d token bytes", p.Rows, len(p.Tokens))
		}
		var all [][]byte
		errAll := p.EachValue(func(_ int, v []byte) { all = append(all, v) })
		if errAll != nil && !errors.Is(errAll, ErrCorruptSegment) {
			t.Fatal(errAll)
		}
		// Stepping over values agrees with reading them all.
		wanted := make([]bool, p.Columns)
		for c := range wanted {
			wanted[c] = true
		}
		n := 0
		err = p.EachWanted(wanted, func(int) {}, func(_ int, v []byte) {
			if n >= len(all) || !bytes.Equal(v, all[n]) {
				t.Fatalf("value %d differs from EachValue's", n)
			}
			n++
		})
		if (err == nil) != (errAll == nil) || err == nil && n != len(all) {
			t.Fatalf("EachWanted: %d values, %v; EachValue: %d, %v", n, err, len(all), errAll)
		}
	})
}

// TestPairsRoundTrip: pairs, and task parts (the same pairs by column),
// decode to what was encoded.
func TestPairsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pairs := make([]matcher.Pair, 1000)
	for i := range pairs {
		pairs[i] = matcher.Pair{Token: token(rng.IntN(1 << 20)), Row: rng.Uint32()}
	}
	var b []byte
	for _, p := range pairs {
		b = AppendPair(b, p.Token[:], p.Row)
	}
	var got []matcher.Pair
	err := EachPair(b, func(elem []byte, row uint32) {
		p := matcher.Pair{Row: row}
		copy(p.Token[:], elem)
		got = append(got, p)
	})
	if err != nil || !slices.Equal(got, pairs) {
		t.Fatalf("pairs differ: %v", err)
	}

	tp, err := DecodeTaskPart(AppendTaskPart(nil, pairs))
	if err != nil || tp.Len() != len(pairs) {
		t.Fatalf("task part: %d pairs, %v", tp.Len(), err)
	}
	for i, p := range pairs {
		if !bytes.Equal(tp.Elements[i*api.TokenSize:(i+1)*api.TokenSize], p.Token[:]) || tp.Row(i) != p.Row {
			t.Fatalf("task part pair %d differs", i)
		}
	}
	if err := EachPair(b[:len(b)-1], func([]byte, uint32) {}); !errors.Is(err, ErrCorruptSegment) {
		t.Errorf("a cut pair was read: %v", err)
	}
	if _, err := DecodeTaskPart(b[:len(b)-1]); !errors.Is(err, ErrCorruptSegment) {
		t.Errorf("a cut task part was read: %v", err)
	}
}

// FuzzPairs: reading pairs and task parts never panics, and what reads
// encodes back to the same bytes.
func FuzzPairs(f *testing.F) {
	f.Add(AppendPair(nil, make([]byte, 32), 7))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var again []byte
		if EachPair(b, func(e []byte, row uint32) { again = AppendPair(again, e, row) }) == nil && !bytes.Equal(again, b) {
			t.Fatal("pairs do not encode back to themselves")
		}
		tp, err := DecodeTaskPart(b)
		if err != nil {
			return
		}
		pairs := make([]matcher.Pair, tp.Len())
		for i := range pairs {
			copy(pairs[i].Token[:], tp.Elements[i*api.TokenSize:])
			pairs[i].Row = tp.Row(i)
		}
		if !bytes.Equal(AppendTaskPart(nil, pairs), b) {
			t.Fatal("a task part does not encode back to itself")
		}
	})
}

// TestJoinRoundTrip: join parts give back their matches, each a row per
// member; duplicate lists their rows.
func TestJoinRoundTrip(t *testing.T) {
	for members := 2; members <= 4; members++ {
		var b []byte
		var want [][]uint32
		for i := range 300 {
			rows := make([]uint32, members)
			for m := range rows {
				rows[m] = uint32(i*members + m)
			}
			want = append(want, rows)
			b = AppendRows(b, rows...)
		}
		var got [][]uint32
		if err := EachMatch(b, members, func(rows []uint32) { got = append(got, slices.Clone(rows)) }); err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("%d members: matches differ", members)
		}
		if err := EachMatch(b[:len(b)-4], members, func([]uint32) {}); !errors.Is(err, ErrCorruptSegment) {
			t.Errorf("%d members: a cut match was read: %v", members, err)
		}
	}
	rows := []uint32{3, 9, 1 << 31}
	if got, err := DecodeRows(AppendRows(nil, rows...)); err != nil || !slices.Equal(got, rows) {
		t.Fatalf("rows: %v, %v", got, err)
	}
}

// FuzzJoin: reading a join part never panics, and what reads encodes back
// to the same bytes.
func FuzzJoin(f *testing.F) {
	f.Add(AppendRows(nil, 1, 2, 3, 4), 2)
	f.Add([]byte{1, 2, 3, 4, 5}, 0)
	f.Fuzz(func(t *testing.T, b []byte, members int) {
		members %= 8
		var again []byte
		if EachMatch(b, members, func(rows []uint32) { again = AppendRows(again, rows...) }) == nil && !bytes.Equal(again, b) {
			t.Fatal("a join part does not encode back to itself")
		}
		if rows, err := DecodeRows(b); err == nil && !bytes.Equal(AppendRows(nil, rows...), b) {
			t.Fatal("rows do not encode back to themselves")
		}
	})
}

// FuzzFingerprints: reading fingerprints never panics, and what reads
// encodes back to the same bytes; a round trip keeps them.
func FuzzFingerprints(f *testing.F) {
	f.Add(AppendFingerprints(nil, []uint64{1, 1 << 63, 42}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		fps, err := DecodeFingerprints(b)
		if err != nil {
			if !errors.Is(err, ErrCorruptSegment) {
				t.Fatal(err)
			}
			return
		}
		if !bytes.Equal(AppendFingerprints(nil, fps), b) {
			t.Fatal("fingerprints do not encode back to themselves")
		}
	})
}
