package analytics

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// BenchmarkBuildColumn: 1M values of a numeric column built as a
// dictionary and as numbers, for a column of cents (nearly every value
// distinct) and one of 500 distinct integers. ns/value is per row.
func BenchmarkBuildColumn(b *testing.B) {
	const rows = 1_000_000
	rng := rand.New(rand.NewPCG(1, 2))
	for _, data := range []struct {
		name  string
		value func() []byte
	}{
		{"cents", func() []byte { return strconv.AppendFloat(nil, rng.Float64()*100_000, 'f', 2, 64) }},
		{"ints500", func() []byte { return strconv.AppendInt(nil, int64(rng.IntN(500)), 10) }},
	} {
		vals := make([][]byte, rows)
		for i := range vals {
			vals[i] = data.value()
		}
		b.Run(data.name+"/dictionary", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c := NewColumnBuilder(rows)
				for _, v := range vals {
					c.AddBytes(v)
				}
				c.Column()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows*b.N), "ns/value")
		})
		b.Run(data.name+"/numbers", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c := NewNumberBuilder(rows)
				for _, v := range vals {
					c.AddBytes(v)
				}
				c.Column()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows*b.N), "ns/value")
		})
	}
}
