package console

import (
	"encoding/xml"
	"errors"
	"html/template"
	"io"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/audit/bundle"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// wellFormed fails t unless svg is one well-formed XML element.
func wellFormed(t *testing.T, svg template.HTML) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(string(svg)))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed SVG: %v\n%s", err, svg)
		}
	}
}

func TestResultCharts(t *testing.T) {
	hostile := `<script>alert(1)</script>&"`
	r := &api.QueryResult{
		Columns: []string{"a.band", "count", "roi", "roi_low", "roi_high", "lift", "lift_ci",
			"conversion_exposed", "conversion_unexposed", "n_exposed", "n_unexposed", "match_rate(a)"},
		Rows: [][]any{
			{"18-24", 120.0, 2.5, 2.1, 2.9, 0.3, []any{0.1, 0.5}, 0.4, 0.3, 60.0, 60.0, "12%"},
			{hostile, 80.0, -0.5, -1.0, 0.2, nil, []any{-0.2, 0.4}, 0.2, 0.25, 40.0, 40.0, ">85%"},
		},
	}
	charts := resultCharts(r, 1)
	var titles []string
	for _, c := range charts {
		wellFormed(t, c)
		if strings.Contains(string(c), "<script>") {
			t.Errorf("a label reached the SVG unescaped:\n%s", c)
		}
		s := string(c)
		titles = append(titles, s[strings.Index(s, `class="chart-title"`):][:60])
	}
	// count, roi (with its interval), lift (with its pair interval) and
	// the conversion rates; no chart of the bounds, the sizes or the
	// textual match rate.
	if len(charts) != 4 {
		t.Fatalf("%d charts: %q", len(charts), titles)
	}
	all := string(charts[0] + charts[1] + charts[2] + charts[3])
	if n := strings.Count(all, `class="ci"`); n != 3 { // two ROI rows, one lift row (the other has no value)
		t.Errorf("%d interval marks, want 3", n)
	}
	if n := strings.Count(string(charts[3]), `class="bar"`); n != 4 {
		t.Errorf("conversion chart has %d bars, want exposed and not exposed for both groups", n)
	}
	for _, c := range charts {
		if strings.Contains(string(c), "NaN") || strings.Contains(string(c), "Inf") {
			t.Errorf("a coordinate is not a number:\n%s", c)
		}
	}
}

func TestBudgetCharts(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name          string
		spent, total  float64
		events        []api.BudgetEvent
		wantSpentBarW string
	}{
		{"none spent", 0, 10, nil, `width="0"`},
		{"half", 5, 10, []api.BudgetEvent{{At: t0, Epsilon: 2, Spent: 2}, {At: t0.Add(time.Hour), Epsilon: 3, Spent: 5}}, `width="320"`},
		{"overspent shows full", 12, 10, []api.BudgetEvent{{At: t0, Epsilon: 12, Spent: 12}}, `width="640"`},
		{"no budget", 1, 0, []api.BudgetEvent{{At: t0, Epsilon: 1, Spent: 1}}, `width="0"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := budgetGauge(tc.spent, tc.total)
			wellFormed(t, g)
			if !strings.Contains(string(g), `class="spent`) || !strings.Contains(string(g), tc.wantSpentBarW) {
				t.Errorf("gauge:\n%s", g)
			}
			o := budgetOverTime(tc.events, tc.total)
			if tc.events == nil {
				if o != "" {
					t.Errorf("a chart of no charges")
				}
				return
			}
			wellFormed(t, o)
			if n := strings.Count(string(o), "<circle"); n != len(tc.events) {
				t.Errorf("%d points for %d charges", n, len(tc.events))
			}
		})
	}
}

func TestAuditStrip(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	es := []indexedEntry{
		{0, bundle.Entry{Time: t0, Decision: bundle.Decision{Allow: true}}},
		{1, bundle.Entry{Time: t0.Add(time.Minute), Decision: bundle.Decision{Allow: false}}},
		{2, bundle.Entry{Time: t0.Add(2 * time.Minute), Decision: bundle.Decision{Allow: true}}},
	}
	s := auditStrip(es)
	wellFormed(t, s)
	if strings.Count(string(s), "tick-allow") != 2 || strings.Count(string(s), "tick-deny") != 1 || !strings.Contains(string(s), "1 denied") {
		t.Errorf("strip:\n%s", s)
	}
	if auditStrip(nil) != "" {
		t.Error("a strip of no entries")
	}
}

func TestWriteCSV(t *testing.T) {
	r := &api.QueryResult{Columns: []string{"a.band", "count", "match_rate(a)"}, Rows: [][]any{
		{"=HYPERLINK(\"http://x\")", 120.5, "12%"},
		{"+1", -3.0, nil},
		{"plain", 1e-7, ">85%"},
	}}
	w := httptest.NewRecorder()
	writeCSV(w, r)
	want := `"a.band","count","match_rate(a)"` + "\n" +
		`"'=HYPERLINK(""http://x"")","120.5","12%"` + "\n" +
		`"'+1","-3",""` + "\n" +
		`"plain","0.0000001",">85%"` + "\n"
	if got := w.Body.String(); got != want {
		t.Errorf("CSV\n got %q\nwant %q", got, want)
	}
}

func TestWithheldNote(t *testing.T) {
	n := func(i int) *int { return &i }
	for _, tc := range []struct {
		name    string
		r       api.QueryResult
		grouped bool
		want    string
	}{
		{"declared, some withheld", api.QueryResult{Partitions: api.PartitionsDeclared, Withheld: n(2), MinGroup: 50}, true, "2 of the declared groups"},
		{"declared, none withheld", api.QueryResult{Partitions: api.PartitionsDeclared, Withheld: n(0), MinGroup: 50}, true, "none was withheld"},
		{"selected", api.QueryResult{Partitions: api.PartitionsSelected, Delta: 1e-8}, true, "how many there were is not released"},
		{"the whole overlap below k", api.QueryResult{Partitions: api.PartitionsDeclared, Withheld: n(1), MinGroup: 50}, false, "the answer is withheld"},
		{"the whole overlap", api.QueryResult{Partitions: api.PartitionsDeclared, Withheld: n(0)}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := withheldNote(&tc.r, tc.grouped)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("%q, want %q", got, tc.want)
			}
		})
	}
}

func TestFormatCell(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{nil, "—"}, {120.0, "120"}, {-3.0, "-3"}, {0.12345678, "0.1235"}, {1234.567, "1234.6"}, {math.NaN(), "—"},
		{"12%", "12%"}, {true, "true"}, {[]any{0.1, 0.5}, "[0.1000, 0.5000]"},
	} {
		if got := formatCell(tc.in); got != tc.want {
			t.Errorf("formatCell(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
