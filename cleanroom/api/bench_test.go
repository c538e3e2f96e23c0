package api

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkReadPart decodes one full upload part (65,536 rows, two
// attribute columns): the room's per-row cost of receiving an upload.
func BenchmarkReadPart(b *testing.B) {
	var buf bytes.Buffer
	w := NewPartWriter(&buf)
	for i := range MaxRowsPerPart {
		r := Row{Attrs: []string{"25-34", fmt.Sprint(i % 1000)}}
		r.Token[0], r.Token[1] = byte(i), byte(i>>8)
		w.Write(&r)
	}
	w.Close()
	part := buf.Bytes()
	b.ReportAllocs()
	b.SetBytes(int64(len(part)))
	for b.Loop() {
		n, _, err := ReadPart(bytes.NewReader(part), PartLimits{Columns: 2, MaxRows: MaxRowsPerPart}, func(*Row) error { return nil })
		if err != nil || n != MaxRowsPerPart {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(MaxRowsPerPart*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkWritePart encodes one full part: the partner's per-row cost.
func BenchmarkWritePart(b *testing.B) {
	var buf bytes.Buffer
	r := Row{Attrs: []string{"25-34", "123"}}
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		w := NewPartWriter(&buf)
		for i := range MaxRowsPerPart {
			r.Token[0] = byte(i)
			w.Write(&r)
		}
		w.Close()
	}
	b.ReportMetric(float64(MaxRowsPerPart*b.N)/b.Elapsed().Seconds(), "rows/s")
}
