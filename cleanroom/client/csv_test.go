package client

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads records until the first error, cloning each, and the line
// each starts on (line(), after each record).
func readAll(read func() ([]string, error), line func() int) ([][]string, []int, error) {
	var recs [][]string
	var lines []int
	for {
		rec, err := read()
		if err == io.EOF {
			return recs, lines, nil
		}
		if err != nil {
			return recs, lines, err
		}
		c := make([]string, len(rec))
		for i, f := range rec {
			c[i] = strings.Clone(f) // a transient reader's fields change at the next read
		}
		recs = append(recs, c)
		lines = append(lines, line())
	}
}

// sameAsEncodingCSV fails t unless csvReader and encoding/csv read in the
// same records, starting on the same lines, and fail (or not) in the same
// way at the same line. A byte-order mark at the start is csvReader's to
// skip: encoding/csv reads the input without it.
func sameAsEncodingCSV(t *testing.T, in []byte) {
	t.Helper()
	stdIn, skipped := bytes.CutPrefix(in, []byte(bom))
	std := csv.NewReader(bytes.NewReader(stdIn))
	want, wantLines, werr := readAll(std.Read, func() int { l, _ := std.FieldPos(0); return l })
	ours := newCSVReader(iotest.HalfReader(bytes.NewReader(in)))
	got, gotLines, gerr := readAll(ours.Read, ours.Line)
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("input %q:\nrecords %q\nwant    %q", in, got, want)
	}
	if !slices.Equal(gotLines, wantLines) {
		t.Fatalf("input %q: records start on lines %v, want %v", in, gotLines, wantLines)
	}
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("input %q: error %v, want %v", in, gerr, werr)
	}
	// A transient reader reads the same records, lines and error.
	tr := newCSVReader(iotest.HalfReader(bytes.NewReader(in)))
	tr.transient = true
	tgot, tlines, terr := readAll(tr.Read, tr.Line)
	if !slices.EqualFunc(tgot, got, slices.Equal) || !slices.Equal(tlines, gotLines) || fmt.Sprint(terr) != fmt.Sprint(gerr) {
		t.Fatalf("input %q: a transient reader reads\nrecords %q on lines %v, error %v\nwant    %q on lines %v, error %v",
			in, tgot, tlines, terr, got, gotLines, gerr)
	}
	if werr != nil {
		var gp, wp *csv.ParseError
		if !errors.As(gerr, &gp) || !errors.As(werr, &wp) || !errors.Is(gp.Err, wp.Err) || gp.Line != wp.Line || gp.StartLine != wp.StartLine {
			t.Fatalf("input %q: error %v, want %v", in, gerr, werr)
		}
	}
	if werr == nil {
		// recordCounter counts the same records, however its input is cut.
		for _, chunk := range []int{len(in) + 1, 1, 2, 7} {
			var rc recordCounter
			for b := in; len(b) > 0; {
				k := min(chunk, len(b))
				rc.Write(b[:k])
				b = b[k:]
			}
			if rc.records() != int64(len(want)) {
				t.Fatalf("input %q: counted %d records in writes of %d bytes, want %d", in, rc.records(), chunk, len(want))
			}
		}
	}
	offset := std.InputOffset()
	if skipped {
		offset += int64(len(bom))
	}
	if werr == nil && ours.InputOffset() != offset {
		t.Fatalf("input %q: offset %d, want %d", in, ours.InputOffset(), offset)
	}
}

var csvCases = []string{
	"",
	"a,b,c\n1,2,3\n",
	"a,b\r\n1,2\r\n",
	"a,b\n1,2",
	"a,b\n1,2\r",
	"a,b\n\n\n1,2\n\r\n3,4\n",
	"a\n\"x\"\n",
	"a,b\n\"x,y\",\"z\"\"q\"\n",
	"a,b\n\"multi\nline\",2\n",
	"a,b\n\"multi\r\nline\",2\r\n",
	"a,b\n\" Customer@example.com \",2\n",
	"a,b\n\"\",\"\"\n",
	"a,b\nx\"y,2\n",
	"a,b\n\"x\"y,2\n",
	"a,b\n\"unterminated,2\n",
	"a,b\n\"unterminated",
	"a,b\n1,2,3\n",
	"a,b\n1\n",
	"a,b,c\n,,\n",
	"a,b\n\"x\"\n",
	"a,b\n1,\"2\"\n3,\"4\n5\"\n",
	"a,\"b\nc\"\nd,e\n",
	"\"a\"\"\",b\n",
	"a,b\n \"x\",y\n",
	"a,b\n\"x\" ,y\n",
	strings.Repeat("x", 300<<10) + ",y\n1,2\n",
	"a,b\n\"" + strings.Repeat("z", 300<<10) + "\",2\n",
	bom + "email,age\nx@example.com,1\n",
	bom + "\"email\",age\r\n\"x\",1\r\n",
	bom,
	bom + "\n",
	bom + bom + "a\n1\n",
	"a\n" + bom + "\n",
	"a,b\n\"m\n\nl\",2\n1,2,3\n",
	"a,b\n\n\"x\ny\"\"z\n\",2\n\n3,4\n",
	"a,b\n1,2\n\"unterminated,2\n\n\n",
	"a,b\n\"m\n\nl\"x,2\n",
}

func TestCSVReaderMatchesEncodingCSV(t *testing.T) {
	for i, in := range csvCases {
		t.Run(fmt.Sprint(i), func(t *testing.T) { sameAsEncodingCSV(t, []byte(in)) })
	}
}

// FuzzCSVReader holds csvReader to encoding/csv on any input.
func FuzzCSVReader(f *testing.F) {
	for _, in := range csvCases {
		if len(in) < 1000 {
			f.Add([]byte(in))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) { sameAsEncodingCSV(t, in) })
}

// BenchmarkCSVReader reads a plain export of 100,000 rows (a third of its
// emails quoted, as a CRM writes those with spaces), against encoding/csv
// in the same run.
func BenchmarkCSVReader(b *testing.B) {
	var in bytes.Buffer
	in.WriteString("email,age_band,region,revenue\n")
	for i := range 100_000 {
		if i%3 == 0 {
			fmt.Fprintf(&in, "\" Customer%07d@example.com \",25-34,west,%d.50\n", i, i%200)
		} else {
			fmt.Fprintf(&in, "customer%07d@example.com,25-34,west,%d.50\n", i, i%200)
		}
	}
	for _, bc := range []struct {
		name string
		read func(io.Reader) func() ([]string, error)
	}{
		{"cleanroom", func(r io.Reader) func() ([]string, error) { return newCSVReader(r).Read }},
		{"cleanroom-transient", func(r io.Reader) func() ([]string, error) {
			c := newCSVReader(r)
			c.transient = true
			return c.Read
		}},
		{"encoding-csv", func(r io.Reader) func() ([]string, error) {
			c := csv.NewReader(r)
			c.ReuseRecord = true
			return c.Read
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(in.Len()))
			b.ReportAllocs()
			for b.Loop() {
				read := bc.read(bytes.NewReader(in.Bytes()))
				for {
					if _, err := read(); err != nil {
						break
					}
				}
			}
			b.ReportMetric(float64(100_000*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
