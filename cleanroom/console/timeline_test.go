package console

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/audit/bundle"
)

func TestAuditFilter(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	e := indexedEntry{7, bundle.Entry{Time: t0, Principal: "ana", Action: "query.run", Collaboration: "c1",
		Decision: bundle.Decision{Allow: false, Reasons: []string{"no"}}}}
	for _, tc := range []struct {
		query string
		keep  bool
	}{
		{"", true},
		{"principal=ana&action=query.run&collab=c1&decision=denied", true},
		{"principal=bob", false},
		{"action=match.run", false},
		{"collab=c2", false},
		{"decision=allowed", false},
		{"from=2026-03-01T09:30", true},
		{"from=2026-03-01T09:31", false},
		{"to=2026-03-01T09:30", true}, // the minute "to" names is included
		{"to=2026-03-01T09:29", false},
		{"from=garbage&to=garbage", true}, // an unreadable time filters nothing
	} {
		q, _ := url.ParseQuery(tc.query)
		if got := parseAuditFilter(q).keep(e); got != tc.keep {
			t.Errorf("%q: keep = %v, want %v", tc.query, got, tc.keep)
		}
	}
	f := parseAuditFilter(url.Values{"principal": {"ana"}, "decision": {"denied"}})
	if got := f.query(42); got != "before=42&decision=denied&principal=ana" {
		t.Errorf("next page query %q", got)
	}
}

// BenchmarkTimelineFilter: filtering a 100,000-entry log and drawing its
// strip, what every timeline page does.
func BenchmarkTimelineFilter(b *testing.B) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	es := make([]indexedEntry, 100_000)
	for i := range es {
		es[i] = indexedEntry{int64(i), bundle.Entry{Time: t0.Add(time.Duration(i) * time.Second), Principal: fmt.Sprint("p", i%7),
			Action: "query.run", Collaboration: "c", Decision: bundle.Decision{Allow: i%10 != 0}}}
	}
	f := parseAuditFilter(url.Values{"principal": {"p3"}, "decision": {"denied"}})
	b.ReportAllocs()
	for b.Loop() {
		var kept []indexedEntry
		for _, e := range es {
			if f.keep(e) {
				kept = append(kept, e)
			}
		}
		auditStrip(kept)
	}
}
