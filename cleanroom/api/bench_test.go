package api

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkReadPart decodes one full upload part (65,536 rows, two
// attribute columns): the room's per-row cost of receiving an upload.
func BenchmarkReadPart(b *testing.B) {
	var buf bytes.Buffer
	w := NewPartWriter(&buf)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range MaxRowsPerPart {
		r := Row{Attrs: []string{"25-34", fmt.Sprint(i % 1000)}}
		for j := 0; j < TokenSize; j += 8 {
			binary.LittleEndian.PutUint64(r.Token[j:], rng.Uint64()) // tokens are uniform
		}
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
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([]Row, MaxRowsPerPart)
	for i := range rows {
		rows[i].Attrs = []string{"25-34", "123"}
		for j := 0; j < TokenSize; j += 8 {
			binary.LittleEndian.PutUint64(rows[i].Token[j:], rng.Uint64())
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		w := NewPartWriter(&buf)
		for i := range rows {
			w.Write(&rows[i])
		}
		w.Close()
	}
	b.ReportMetric(float64(MaxRowsPerPart*b.N)/b.Elapsed().Seconds(), "rows/s")
}
