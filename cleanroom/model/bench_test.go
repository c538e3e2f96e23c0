package model

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
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

// BenchmarkScoreCSV scores a list of 100,000 rows (an email and the four
// features): ScoreCSV on all cores, and the reference, encoding/csv and
// Model.score a record at a time; rows/s counts rows per second of wall.
func BenchmarkScoreCSV(b *testing.B) {
	features := truthFeatures()
	d, raw, _ := truthData(13, 100_000, features)
	cfg := DefaultConfig(len(features), 0.5, 50, analytics.Laplace{})
	m, err := Train(context.Background(), features, d, cfg)
	if err != nil {
		b.Fatal(err)
	}
	var in bytes.Buffer
	in.WriteString("email,age_band,region,spend,exposed\n")
	for i, r := range raw {
		fmt.Fprintf(&in, "customer%07d@example.com,%s\n", i, strings.Join(r, ","))
	}
	for _, bc := range []struct {
		name  string
		score func(io.Reader, io.Writer, string) (int64, error)
	}{{"ScoreCSV", m.ScoreCSV}, {"reference", m.scoreCSVRef}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(in.Len()))
			for b.Loop() {
				if _, err := bc.score(bytes.NewReader(in.Bytes()), io.Discard, "score"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(raw))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
