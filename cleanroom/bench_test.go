package cleanroom

import (
	"context"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// BenchmarkHashedRoundTrip runs a whole hashed collaboration over loopback
// per iteration: two uploads of 20,000 rows, the match, and a count query.
// rows/s counts rows uploaded by both partners.
func BenchmarkHashedRoundTrip(b *testing.B) {
	const rows = 20000
	for b.Loop() {
		b.StopTimer()
		tr := startRoom(b)
		a := tr.partner("alpha", policy.RolePartner, "")
		c := tr.partner("bravo", policy.RolePartner, "")
		states := tr.collab("c1", api.ModeHashed, nil, a, c)
		la, lb := writeList(b, span(0, rows)), writeList(b, span(rows/2, rows/2+rows))
		ctx := context.Background()
		b.StartTimer()
		if _, err := a.UploadCSV(ctx, uploadSpec("c1", la, states["alpha"])); err != nil {
			b.Fatal(err)
		}
		if _, err := c.UploadCSV(ctx, uploadSpec("c1", lb, states["bravo"])); err != nil {
			b.Fatal(err)
		}
		m, err := a.Match(ctx, "c1")
		if err != nil || m.Matched != rows/2 {
			b.Fatal(m, err)
		}
		if _, err := a.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.5}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(2*rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
