package policy

import (
	"context"
	"sort"
	"testing"
	"time"
)

// BenchmarkDecide: one query decision through the default bundle, the
// common case; reports the median latency.
func BenchmarkDecide(b *testing.B) {
	e := newEngine(b)
	in := queryInput(okQuery())
	ctx := context.Background()
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		t := time.Now()
		if d := e.Decide(ctx, in); !d.Allow {
			b.Fatal(d.Reasons)
		}
		lat = append(lat, time.Since(t))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
}

// BenchmarkDecideWithModule: the same with a collaboration module active.
func BenchmarkDecideWithModule(b *testing.B) {
	e := newEngine(b)
	ctx := context.Background()
	m, err := e.ParseModule(ctx, []byte(goodModule))
	if err != nil {
		b.Fatal(err)
	}
	if err := e.SetCollaborationPolicy(ctx, "alliance", m); err != nil {
		b.Fatal(err)
	}
	q := okQuery()
	q.GroupBy = []string{"region"}
	q.Epsilon = 0.1
	in := queryInput(q)
	b.ReportAllocs()
	for b.Loop() {
		if d := e.Decide(ctx, in); !d.Allow {
			b.Fatal(d.Reasons)
		}
	}
}

// BenchmarkDecideRead: a member's read of its collaboration (status,
// budget), the most frequent decision.
func BenchmarkDecideRead(b *testing.B) {
	e := newEngine(b)
	in := Input{Principal: partner, Action: ActionCollaborationRead, Collaboration: collab()}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d := e.Decide(ctx, in); !d.Allow {
			b.Fatal(d.Reasons)
		}
	}
}
