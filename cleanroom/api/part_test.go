package api

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBinaryPartRoundTrip(t *testing.T) {
	p := Part{Columns: 3}
	var rows [][]string
	for i := range 300 {
		vals := []string{fmt.Sprint(i), strings.Repeat("é", i%100), ""}
		rows = append(rows, vals)
		if err := p.AppendValues(vals); err != nil {
			t.Fatal(err)
		}
		p.AppendToken([TokenSize]byte{byte(i), 0xff})
	}
	b, err := p.AppendBinary([]byte("prefix"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePart(b[len("prefix"):], PartLimits{Columns: 3, MaxRows: 300})
	if err != nil {
		t.Fatal(err)
	}
	if got.Rows != 300 || !bytes.Equal(got.Tokens, p.Tokens) || !bytes.Equal(got.Values, p.Values) {
		t.Fatalf("parsed part differs: %d rows", got.Rows)
	}
	v := got.Values
	for i, want := range rows {
		for j := range want {
			l, n := binary.Uvarint(v)
			if s := string(v[n : n+int(l)]); s != want[j] {
				t.Fatalf("row %d value %d: %q, want %q", i, j, s, want[j])
			}
			v = v[n+int(l):]
		}
	}
	p.Reset()
	if p.Rows != 0 || len(p.Tokens) != 0 || len(p.Values) != 0 || p.Columns != 3 {
		t.Fatalf("Reset: %+v", p)
	}
}

func TestPartAppendRefuses(t *testing.T) {
	p := Part{Columns: 1}
	for _, vals := range [][]string{{"a", "b"}, {strings.Repeat("v", MaxValueLen+1)}, {"\xff"}} {
		if err := p.AppendValues(vals); !errors.Is(err, ErrInvalidPart) || strings.Contains(err.Error(), "vvv") {
			t.Errorf("AppendValues: %v", err)
		}
	}
	if p.Rows != 0 || len(p.Values) != 0 {
		t.Fatalf("a refused row was kept: %+v", p)
	}
	// Not ASCII but UTF-8, and ASCII at the longest: kept.
	for _, v := range []string{"Zürich", strings.Repeat("v", MaxValueLen)} {
		if err := p.AppendValues([]string{v}); err != nil {
			t.Fatalf("AppendValues refused a valid value: %v", err)
		}
	}
	if p.Rows != 2 {
		t.Fatalf("%d rows kept, want 2", p.Rows)
	}
	p.Reset()
	p.AppendValues([]string{"a"})
	if _, err := p.AppendBinary(nil); err == nil {
		t.Fatal("a part with a row and no token encoded")
	}
}

// FuzzParsePart: the parser never panics, and what it accepts has the
// declared shape and re-encodes to the same bytes when its varints are
// minimal.
func FuzzParsePart(f *testing.F) {
	p := Part{Columns: 2}
	p.AppendValues([]string{"25-34", "west"})
	p.AppendToken([TokenSize]byte{1})
	b, _ := p.AppendBinary(nil)
	f.Add(b, 2)
	f.Add([]byte{0, 0}, 0)
	f.Add([]byte{1, 1}, 1)
	f.Fuzz(func(t *testing.T, b []byte, columns int) {
		if columns < 0 || columns > MaxColumns {
			return
		}
		p, err := ParsePart(b, PartLimits{Columns: columns, MaxRows: 64})
		if err != nil {
			if !errors.Is(err, ErrInvalidPart) {
				t.Fatalf("error without ErrInvalidPart: %v", err)
			}
			return
		}
		if p.Rows > 64 || len(p.Tokens) != p.Rows*TokenSize || p.Columns != columns {
			t.Fatalf("accepted a part of the wrong shape: %d rows, %d token bytes", p.Rows, len(p.Tokens))
		}
		v, q := p.Values, Part{Columns: columns}
		for range p.Rows {
			vals := make([]string, columns)
			for j := range vals {
				l, n := binary.Uvarint(v)
				vals[j] = string(v[n : n+int(l)])
				if !utf8.ValidString(vals[j]) || len(vals[j]) > MaxValueLen {
					t.Fatalf("accepted a value that is too long or not UTF-8")
				}
				v = v[n+int(l):]
			}
			if err := q.AppendValues(vals); err != nil {
				t.Fatal(err)
			}
		}
		q.Tokens = p.Tokens
		again, err := q.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) == len(b) && !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func ExamplePart() {
	p := Part{Columns: 1}
	p.AppendValues([]string{"25-34"})
	p.AppendToken([TokenSize]byte{1})
	body, _ := p.AppendBinary(nil)
	got, err := ParsePart(body, PartLimits{Columns: 1, MaxRows: 10})
	fmt.Println(len(body), got.Rows, got.Tokens[0], err)
	// Output: 40 1 1 <nil>
}

// BenchmarkParsePart checks one full binary part (65,536 rows, two
// attribute columns), as BenchmarkReadPart does for gzip NDJSON.
func BenchmarkParsePart(b *testing.B) {
	body := benchBinaryPart(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		p, err := ParsePart(body, PartLimits{Columns: 2, MaxRows: MaxRowsPerPart})
		if err != nil || p.Rows != MaxRowsPerPart {
			b.Fatal(p.Rows, err)
		}
	}
	b.ReportMetric(float64(MaxRowsPerPart*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkBuildPart encodes one full binary part, as BenchmarkWritePart
// does for gzip NDJSON.
func BenchmarkBuildPart(b *testing.B) {
	toks := benchTokens()
	p := Part{Columns: 2}
	var body []byte
	b.ReportAllocs()
	for b.Loop() {
		p.Reset()
		for i := range toks {
			p.AppendValues([]string{"25-34", "123"})
			p.AppendToken(toks[i])
		}
		body, _ = p.AppendBinary(body[:0])
	}
	b.ReportMetric(float64(MaxRowsPerPart*b.N)/b.Elapsed().Seconds(), "rows/s")
}

func benchTokens() [][TokenSize]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	toks := make([][TokenSize]byte, MaxRowsPerPart)
	for i := range toks {
		for j := 0; j < TokenSize; j += 8 {
			binary.LittleEndian.PutUint64(toks[i][j:], rng.Uint64())
		}
	}
	return toks
}

func benchBinaryPart(b *testing.B) []byte {
	p := Part{Columns: 2}
	for i, t := range benchTokens() {
		p.AppendValues([]string{"25-34", fmt.Sprint(i % 1000)})
		p.AppendToken(t)
	}
	body, err := p.AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	return slices.Clip(body)
}
