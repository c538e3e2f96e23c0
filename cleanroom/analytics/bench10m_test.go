package analytics

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fixture10M is BenchmarkQuery10M's data, made once per process (it takes
// longer to make than the benchmark to run): two members of 12M rows each
// and a join of 10M, in the two layouts a plan reads (layouts). Dimensions
// are dictionary columns; the columns summed are numbers.
var fixture10M = sync.OnceValue(func() map[string]*Plan {
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
	cols := []*Column{age.Column(), region.Column(), revenue.Column(), spend.Column()}
	plans := map[string]*Plan{}
	for layout, ref := range layouts {
		r := func(m int, name string, c int) Ref { return ref(t, m, name, cols[c]) }
		plans[layout] = &Plan{Table: t, Members: []string{"a", "b"}, MinGroup: 50, Noise: Laplace{}, Epsilon: 1,
			GroupBy: []Group{{Ref: r(0, "a.age", 0), Domain: ages}, {Ref: r(0, "a.region", 1), Domain: regions}},
			Metrics: []Metric{{Kind: Count},
				{Kind: Sum, Column: Bounded{Ref: r(1, "b.revenue", 2), Lo: 0, Hi: 100}},
				{Kind: Avg, Column: Bounded{Ref: r(0, "a.spend", 3), Lo: 0, Hi: 500}}}}
	}
	return plans
})

// newBenchNumbers builds a column used only as a bounded number.
func newBenchNumbers(rows int) *NumberBuilder { return NewNumberBuilder(rows) }

// layouts are the two ways the room's planner hands a plan its columns:
// "joined", the matched people's values in the join's order, numbers as
// decimals in 2 or 4 bytes (a plan without a match rate); "projected", each
// member's whole column, numbers as float64s, a member other than the
// first's projected onto the join (a plan with a match rate).
var layouts = map[string]func(t *Table, m int, name string, c *Column) Ref{
	"joined": func(t *Table, m int, name string, c *Column) Ref {
		j := t.Project(c, m)
		if !j.Dictionary() {
			ints := make([]int32, len(j.vals))
			for i, v := range j.vals {
				var ok bool
				if ints[i], ok = ToScaled(v, 2); !ok {
					panic("a fixture value with more than 2 places")
				}
			}
			j = &Column{numbers: true, scaled: scaled{ints: ints, div: pow10[2]}}
			if !slices.ContainsFunc(ints, func(m int32) bool { return m != NotNumber && (m > math.MaxInt16 || m < -math.MaxInt16) }) {
				i16 := make([]int16, len(ints))
				for i, m := range ints {
					i16[i] = int16(m)
					if m == NotNumber {
						i16[i] = NotNumber16
					}
				}
				j.scaled = scaled{i16: i16, div: pow10[2]}
			}
		}
		return Ref{Member: m, Col: j, Joined: j, Name: name}
	},
	"projected": func(t *Table, m int, name string, c *Column) Ref {
		r := Ref{Member: m, Col: c, Name: name}
		if m > 0 {
			r.Joined = t.Project(c, m)
		}
		return r
	},
}

// BenchmarkQuery10M: 2 dimensions and 3 metrics (count, sum, avg) over
// 10M joined rows, with noise, in each layout: the queries after a
// dataset's first, whose columns are decoded and cached. It reports the
// median latency; rows/s counts matched rows; cpu-ms/op is the CPU time a
// query takes, on all cores together. Both layouts answer the same.
func BenchmarkQuery10M(b *testing.B) {
	if testing.Short() {
		b.Skip("10M rows")
	}
	plans := fixture10M()
	answers := map[string]any{}
	for layout, p := range plans {
		exact := *p
		exact.Noise = Exact{}
		res, err := Run(context.Background(), &exact)
		if err != nil {
			b.Fatal(err)
		}
		answers[layout] = res
	}
	if !reflect.DeepEqual(answers["joined"], answers["projected"]) {
		b.Fatal("the two layouts answer differently")
	}
	for _, layout := range []string{"joined", "projected"} {
		b.Run("layout="+layout, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuTime()
			benchRun(b, plans[layout], 1e7)
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
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
