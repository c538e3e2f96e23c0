package model

import (
	"context"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
)

// BenchmarkTrain1M trains the default forest (ten trees, a fifth of the
// people held out) with Laplace noise on a million matched people and four
// features; rows/s counts people per second of training.
func BenchmarkTrain1M(b *testing.B) {
	features := truthFeatures()
	const n = 1_000_000
	d, _, _ := truthData(11, n, features)
	cfg := DefaultConfig(len(features), 0.5, 50, analytics.Laplace{})
	cfg.Seed = seedOf(1)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Train(context.Background(), features, d, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkScore scores one person (four features, ten trees).
func BenchmarkScore(b *testing.B) {
	features := truthFeatures()
	d, raw, _ := truthData(12, 20_000, features)
	cfg := DefaultConfig(len(features), 0.5, 50, analytics.Laplace{})
	m, err := Train(context.Background(), features, d, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Score(raw[i%len(raw)])
		i++
	}
}
