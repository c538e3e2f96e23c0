package console

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// trueOverlapByBand is the exact overlap of the shared room by the course
// platform's age band: people 1000..2999 are customers of both.
func trueOverlapByBand() map[string]int {
	out := map[string]int{}
	for i := 1000; i < 3000; i++ {
		out[ageBands[i%len(ageBands)]]++
	}
	return out
}

// TestBrowserAnalystQuery logs in as a brand by opening the printed URL,
// reads its collaboration, builds a query in the form, runs it and reads the
// numbers back from the page.
func TestBrowserAnalystQuery(t *testing.T) {
	ctx := tab(t)
	f := alliance(t)
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cu, err := f.startConsole(cctx, brandA, RolePartner)
	if err != nil {
		t.Fatal(err)
	}

	must(t, ctx, "opening the printed URL", chromedp.Navigate(cu.url), chromedp.WaitVisible(chromedp.CSS("table")))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != cu.base+"/" {
		t.Errorf("after login the address is %q, want %q (the token left out)", loc, cu.base+"/")
	}
	must(t, ctx, "pressing Tab", chromedp.KeyEvent("\t"))
	if focused, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.textContent`)); focused != "Skip to content" {
		t.Errorf("the first Tab focuses %q, want the skip link", focused)
	}

	must(t, ctx, "opening the collaboration", chromedp.Click(chromedp.CSS(`a[href="`+cu.srv.base+`/c/`+collab+`"]`)), chromedp.WaitVisible(chromedp.ID("members")))
	shown, err := f.clients[brandA].Collaboration(context.Background(), collab)
	if err != nil {
		t.Fatal(err)
	}
	if page := text(t, ctx, "main"); !strings.Contains(page, shown.SettingsDigest) || !strings.Contains(page, "Minimum group size (k)") {
		t.Errorf("the collaboration page lacks the settings digest %s or the constraints", shown.SettingsDigest)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg.gauge").length`)); n != 1 {
		t.Errorf("%d budget gauges", n)
	}

	must(t, ctx, "building the query",
		chromedp.Click(chromedp.CSS(`a[href="`+cu.srv.base+`/c/`+collab+`/query"]`)),
		chromedp.WaitVisible(chromedp.CSS("form.builder")),
	)
	everyControlLabelled(t, ctx)
	must(t, ctx, "running the query",
		chromedp.Click(chromedp.CSS(`input[name=group_by][value="coursely.age_band"]`)),
		chromedp.SetValue(chromedp.ID("epsilon"), "0.5"),
		chromedp.Click(chromedp.ID("run")),
		chromedp.WaitVisible(chromedp.ID("result-table")),
	)

	var spec api.QuerySpec
	if err := json.Unmarshal([]byte(text(t, ctx, "#spec")), &spec); err != nil {
		t.Fatalf("the spec shown is not JSON: %v", err)
	}
	if !slices.Equal(spec.GroupBy, []string{"coursely.age_band"}) || spec.Epsilon != 0.5 || len(spec.Metrics) != 1 {
		t.Errorf("spec shown: %+v", spec)
	}
	truth := trueOverlapByBand()
	rows := tableCells(t, ctx, "#result-table")
	if len(rows) != len(ageBands) {
		t.Fatalf("%d rows, want one per age band: %v", len(rows), rows)
	}
	answered := cu.srv.results.latest()
	if answered == nil {
		t.Fatal("the console holds no answer")
	}
	for i, r := range rows {
		count, err := strconv.ParseFloat(r[1], 64)
		if err != nil {
			t.Fatalf("row %v: not a number", r)
		}
		// The page shows what the room answered...
		if want := answered.res.Rows[i]; r[0] != want[0] || count != want[1] {
			t.Errorf("row %d shows %v, the room answered %v", i, r, want)
		}
		// ...and that is the overlap plus Laplace noise of scale 2
		// (epsilon 0.5 on one statistic): 40 is twenty scales.
		if want := truth[r[0]]; math.Abs(count-float64(want)) > 40 {
			t.Errorf("age band %s: the page shows %v people, the true overlap is %d", r[0], count, want)
		}
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg.chart rect.bar").length`)); n != len(ageBands) {
		t.Errorf("%d bars in the chart, want one per age band", n)
	}
	if note := text(t, ctx, "#withheld"); !strings.Contains(note, "none was withheld") {
		t.Errorf("withheld note: %q", note)
	}
	if href, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('a[href$=".csv"]').getAttribute("href")`)); !strings.HasPrefix(href, cu.srv.base+"/results/") {
		t.Errorf("CSV link %q", href)
	}
}

// everyControlLabelled fails t if a form control of the page has no label:
// a screen reader would announce it by its type alone.
func everyControlLabelled(t *testing.T, ctx context.Context) {
	t.Helper()
	unlabelled, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("input:not([type=hidden]), select, textarea")].filter(e => e.labels.length == 0).map(e => e.name || e.id)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(unlabelled) > 0 {
		t.Errorf("controls without a label: %q", unlabelled)
	}
}

// TestBrowserRefusal: a query the alliance's policy refuses shows the
// policy's reason on the page.
func TestBrowserRefusal(t *testing.T) {
	ctx := tab(t)
	f := alliance(t)
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cu, err := f.startConsole(cctx, analyst, RoleAnalyst)
	if err != nil {
		t.Fatal(err)
	}
	must(t, ctx, "asking for a region breakdown",
		chromedp.Navigate(cu.url),
		chromedp.WaitVisible(chromedp.CSS("table")),
		chromedp.Navigate(cu.base+"/c/"+collab+"/query"),
		chromedp.WaitVisible(chromedp.CSS("form.builder")),
		chromedp.Click(chromedp.CSS(`input[name=group_by][value="coursely.region"]`)),
		chromedp.Click(chromedp.ID("run")),
		chromedp.WaitVisible(chromedp.ID("refusal")),
	)
	if got := text(t, ctx, "#refusal"); !strings.Contains(got, regionReason) {
		t.Errorf("the refusal shows %q, not the policy's reason", got)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#result-table").length`)); n != 0 {
		t.Error("a refused query shows a result table")
	}
}

// TestBrowserPhoneWidth: at a phone's width the pages fit: nothing but a
// table's own scroller is wider than the screen.
func TestBrowserPhoneWidth(t *testing.T) {
	ctx := tab(t)
	f := alliance(t)
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cu, err := f.startConsole(cctx, brandB, RolePartner)
	if err != nil {
		t.Fatal(err)
	}
	must(t, ctx, "opening the console at 390×844", chromedp.EmulateViewport(390, 844), chromedp.Navigate(cu.url), chromedp.WaitVisible(chromedp.CSS("table")))
	au, err := f.startConsole(cctx, auditor, RoleAuditor)
	if err != nil {
		t.Fatal(err)
	}
	must(t, ctx, "opening the auditor's console", chromedp.Navigate(au.url), chromedp.WaitVisible(chromedp.CSS("main")))
	for _, page := range []string{cu.base + "/", cu.base + "/c/" + collab, cu.base + "/c/" + collab + "/query", au.base + "/audit", au.base + "/audit/budget"} {
		path := strings.TrimPrefix(strings.TrimPrefix(page, cu.base), au.base)
		must(t, ctx, "opening "+path, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("main")))
		fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
		if err != nil || !fits {
			w, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
			t.Errorf("%s is %d px wide at a 390 px screen (%v)", path, w, err)
		}
	}
}
