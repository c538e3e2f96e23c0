package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/columnar"
	"github.com/opencleanroom/cleanroom/cleanroom/job"
)

// benchRows is the people per side of the pipeline benchmarks
// (CLEANROOM_BENCH_ROWS, default 10 million).
func benchRows(b *testing.B) int {
	if s := os.Getenv("CLEANROOM_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 10_000_000
}

// benchExport writes two members of n people each, half of them in
// common, as the room exports them, with shards shards: alpha with a band
// (4 values) and a spend, bravo with a revenue.
func benchExport(b *testing.B, dir string, n, shards int) {
	b.Helper()
	w, err := columnar.Create(dir, shards)
	if err != nil {
		b.Fatal(err)
	}
	bands := [][]byte{[]byte("18-24"), []byte("25-34"), []byte("35-44"), []byte("45+")}
	for _, m := range []struct {
		name  string
		cols  []string
		first int
	}{{"alpha", []string{"band", "spend"}, 0}, {"bravo", []string{"revenue"}, n / 2}} {
		mw, err := w.Member(m.name, int64(n), m.cols)
		if err != nil {
			b.Fatal(err)
		}
		for r := range n {
			tok := tokenOf(m.first + r)
			if err := mw.Pair(tok[:], uint32(r)); err != nil {
				b.Fatal(err)
			}
		}
		vals := make([][]byte, len(m.cols))
		var num []byte
		for r := range n {
			id := m.first + r
			num = strconv.AppendInt(num[:0], int64(id%500), 10)
			if len(vals) == 2 {
				vals[0], vals[1] = bands[id%4], num
			} else {
				vals[0] = num
			}
			if err := mw.Values(uint32(r), vals); err != nil {
				b.Fatal(err)
			}
		}
		if err := mw.Close(); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

func benchPlan() *job.Plan {
	return &job.Plan{Version: job.Version, Members: []string{"alpha", "bravo"}, MinGroup: 50, Epsilon: 1,
		GroupBy: []job.Group{{Ref: job.Ref{Member: "alpha", Column: "band"}, Domain: []string{"18-24", "25-34", "35-44", "45+"}}},
		Metrics: []job.Metric{{Kind: job.Sum, Column: &job.Bounded{Ref: job.Ref{Member: "bravo", Column: "revenue"}, Lo: 0, Hi: 500}},
			{Kind: job.Avg, Column: &job.Bounded{Ref: job.Ref{Member: "alpha", Column: "spend"}, Lo: 0, Hi: 500}}}}
}

// BenchmarkJoinShard is the join stage on one worker core: one shard of a
// million rows per member, read from its files, joined, with the plan's
// filters, groups and values, emitted. Its rate is the per-shard figure
// docs/SCALING.md projects from.
func BenchmarkJoinShard(b *testing.B) {
	const n = 1 << 20
	dir := filepath.Join(b.TempDir(), "export")
	benchExport(b, dir, n, 1)
	f, err := newJoinFn(dir, benchPlan())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := f.Setup(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	matched := 0
	for range b.N {
		matched = 0
		if err := f.ProcessElement(ctx, 0, func(Person) { matched++ }, func(Listed) {}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if matched != n/2 {
		b.Fatalf("matched %d, want %d", matched, n/2)
	}
	b.ReportMetric(float64(2*n*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkPipelines runs, once per iteration, at CLEANROOM_BENCH_ROWS
// people per side on Prism in this process: the room's export, the match
// pipeline and a query pipeline (a sum and an average over four declared
// groups), each timed, and the query's peak live heap (sampled each
// second; CLEANROOM_BENCH_HEAPPROFILE=FILE writes a heap profile at the
// peak). CLEANROOM_BENCH_QUERY=0 leaves the query out: on Prism each
// Privacy on Beam aggregation holds every matched person in memory (about
// 2.5 KB each), one aggregation at a time, where the match joins one shard
// at a time.
func BenchmarkPipelines(b *testing.B) {
	n := benchRows(b)
	withQuery := os.Getenv("CLEANROOM_BENCH_QUERY") != "0"
	ctx := context.Background()
	for range b.N {
		dir := filepath.Join(b.TempDir(), "export")
		shards := columnar.Shards(int64(n))
		start := time.Now()
		benchExport(b, dir, n, shards)
		export := time.Since(start)
		start = time.Now()
		counts, err := RunMatch(ctx, "prism", dir, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		match := time.Since(start)
		if counts.Matched != int64(n/2) {
			b.Fatalf("matched %d, want %d", counts.Matched, n/2)
		}
		b.ReportMetric(export.Seconds(), "export-s")
		b.ReportMetric(match.Seconds(), "match-s")
		b.ReportMetric(float64(shards), "shards")
		fmt.Fprintf(os.Stderr, "%d per side, %d shards: export %.1f s, match %.1f s\n", n, shards, export.Seconds(), match.Seconds())
		if !withQuery {
			continue
		}
		start = time.Now()
		stop := peakHeap(b)
		res, err := RunQuery(ctx, "prism", dir, benchPlan(), b.TempDir())
		peak := stop()
		if err != nil {
			b.Fatal(err)
		}
		query := time.Since(start)
		if len(res.Rows) != 4 {
			b.Fatalf("%d rows", len(res.Rows))
		}
		b.ReportMetric(query.Seconds(), "query-s")
		b.ReportMetric(float64(peak)/1e6, "query-live-MB")
		fmt.Fprintf(os.Stderr, "%d per side: query %.1f s, peak live heap %.0f MB\n", n, query.Seconds(), float64(peak)/1e6)
	}
}
