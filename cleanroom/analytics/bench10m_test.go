package analytics

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fixture10M is BenchmarkQuery10M's data, made once per process (it takes
// longer to make than the benchmark to run): two members of 12M rows each
// and a join of 10M. Dimensions are dictionary columns; the columns summed
// are held as numbers, as the room decodes a column used only as one, and
// the second member's is projected onto the join, as the room keeps it.
var fixture10M = sync.OnceValue(func() *Plan {
	const rows, matched = 12_000_000, 10_000_000
	rng := rand.New(rand.NewPCG(10, 7))
	age, region := NewColumnBuilder(rows), NewColumnBuilder(rows)
	spend, revenue := newBenchNumbers(rows), newBenchNumbers(rows)
	var buf []byte
	for range rows {
		age.Add(ages[rng.IntN(len(ages))])
		region.Add(regions[rng.IntN(len(regions))])
		buf = strconv.AppendFloat(buf[:0], rng.Float64()*600-50, 'f', 2, 64) // some outside [0, 500]
		spend.AddBytes(buf)
		buf = strconv.AppendFloat(buf[:0], float64(rng.IntN(3))*rng.Float64()*40, 'f', 2, 64)
		revenue.AddBytes(buf)
	}
	join := [][]uint32{make([]uint32, matched), make([]uint32, matched)}
	for m := range join {
		for i, r := range rng.Perm(rows)[:matched] {
			join[m][i] = uint32(r)
		}
	}
	t := NewTable(join)
	ref := func(m int, name string, c *Column) Ref { return benchRef(t, m, name, c) }
	return &Plan{Table: t, Members: []string{"a", "b"}, MinGroup: 50, Noise: Laplace{}, Epsilon: 1,
		GroupBy: []Group{{Ref: ref(0, "a.age", age.Column()), Domain: ages}, {Ref: ref(0, "a.region", region.Column()), Domain: regions}},
		Metrics: []Metric{{Kind: Count},
			{Kind: Sum, Column: Bounded{Ref: ref(1, "b.revenue", revenue.Column()), Lo: 0, Hi: 100}},
			{Kind: Avg, Column: Bounded{Ref: ref(0, "a.spend", spend.Column()), Lo: 0, Hi: 500}}}}
})

// newBenchNumbers builds a column used only as a bounded number.
func newBenchNumbers(rows int) *NumberBuilder { return NewNumberBuilder(rows) }

// benchRef refers to a column as the room's planner does: a column of a
// member other than the first with its projection onto the join.
func benchRef(t *Table, m int, name string, c *Column) Ref {
	r := Ref{Member: m, Col: c, Name: name}
	if m > 0 {
		r.Joined = t.Project(c, m)
	}
	return r
}

// BenchmarkQuery10M: 2 dimensions and 3 metrics (count, sum, avg) over
// 10M joined rows, with noise: the queries after a dataset's first, whose
// columns are decoded and cached. It reports the median latency; rows/s
// counts matched rows; cpu-ms/op is the CPU time a query takes, on all
// cores together.
func BenchmarkQuery10M(b *testing.B) {
	if testing.Short() {
		b.Skip("10M rows")
	}
	p := fixture10M()
	var lat []time.Duration
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		start := time.Now()
		if _, err := Run(context.Background(), p); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(1e7*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// cpuTime is the CPU time this process has used, user and system: on a
// shared machine a query's wall time depends on the other load, its CPU
// time much less.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
