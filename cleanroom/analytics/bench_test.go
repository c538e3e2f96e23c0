package analytics

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkQuery1M: 2 dimensions and 3 metrics (count, sum, avg) over 1M
// joined rows, with noise. It reports the median latency.
func BenchmarkQuery1M(b *testing.B) {
	f := newFixture(1_200_000, 1_200_000, 1_000_000, 9)
	p := &Plan{Table: f.table, Members: []string{"a", "b"}, MinGroup: 50, Noise: Laplace{}, Epsilon: 1,
		GroupBy: []Group{{Ref: f.ref("a.age"), Domain: ages}, {Ref: f.ref("a.region"), Domain: regions}},
		Metrics: []Metric{{Kind: Count}, {Kind: Sum, Column: f.bounded("b.revenue", 0, 100)}, {Kind: Avg, Column: f.bounded("a.spend", 0, 500)}}}
	b.ReportAllocs()
	benchRun(b, p, 1e6)
}

// benchRun runs p for b's iterations and reports the median latency and
// rows (of a table of rows) a second.
func benchRun(b *testing.B, p *Plan, rows float64) {
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := Run(context.Background(), p); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(rows*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkKMeans1M: k-means (k = 4, 5 iterations) on 1M people x 4
// columns.
func BenchmarkKMeans1M(b *testing.B) {
	f := newFixture(1_000_000, 1_000_000, 1_000_000, 10)
	p := &Plan{Table: f.table, Members: []string{"a", "b"}, MinGroup: 50, Noise: Laplace{}, Epsilon: 1,
		KMeans: &KMeans{K: 4, Iterations: 5, Columns: []Bounded{
			f.bounded("a.spend", 0, 500), f.bounded("b.revenue", 0, 100), f.bounded("b.conversions", 0, 2), f.bounded("a.exposed", 0, 1)}}}
	for b.Loop() {
		if _, err := Run(context.Background(), p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(1e6*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
