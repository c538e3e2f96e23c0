package console

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"golang.org/x/mod/sumdb/note"

	"github.com/opencleanroom/cleanroom/audit/bundle"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestBrowserAuditor: the auditor's console verifies the bundle the room
// lets it export, filters the timeline to a denial, shows that entry
// verified with the policy's reason, reconciles the budget, and exports the
// exact bundle it checked, which the CLI's verifier accepts.
func TestBrowserAuditor(t *testing.T) {
	ctx := tab(t)
	f := alliance(t)
	// A denial in the auditor's scope: the brand's analyst asks for a
	// breakdown the alliance's policy refuses.
	_, err := f.clients[analyst].Query(context.Background(), collab, api.QuerySpec{Version: api.QueryVersion,
		Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{brandA + ".region"}, Epsilon: 0.1})
	if p := problemOf(err); p == nil || p.Type != api.ProblemDenied {
		t.Fatalf("the region query: %v, want a denial", err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cu, err := f.startConsole(cctx, auditor, RoleAuditor)
	if err != nil {
		t.Fatal(err)
	}

	must(t, ctx, "opening the printed URL", chromedp.Navigate(cu.url), chromedp.WaitVisible(chromedp.ID("verification")))
	if h := text(t, ctx, "#verif-h"); h != "Verified" {
		t.Fatalf("the verification panel says %q", h)
	}
	if v := text(t, ctx, "#verified"); !strings.Contains(v, "each proved included in its signed checkpoint") {
		t.Errorf("verification: %q", v)
	}

	must(t, ctx, "filtering to denied queries",
		chromedp.SetValue(chromedp.ID("decision"), "denied"),
		chromedp.SetValue(chromedp.ID("action"), "query.run"),
		chromedp.Click(chromedp.ID("apply")),
		chromedp.WaitReady(chromedp.CSS(`#decision option[value="denied"][selected]`)),
		chromedp.WaitVisible(chromedp.ID("timeline")),
	)
	everyControlLabelled(t, ctx)
	rows := tableCells(t, ctx, "#timeline")
	if len(rows) == 0 {
		t.Fatal("no denied query in the timeline")
	}
	for _, r := range rows {
		if !strings.Contains(r[5], "DENIED") || r[3] != "query.run" {
			t.Errorf("the filter let through %v", r)
		}
	}
	if !strings.Contains(rows[0][5], regionReason) || !strings.HasPrefix(rows[0][2], analyst) {
		t.Errorf("the newest denied query is %v, want the analyst's, with the policy's reason", rows[0])
	}

	must(t, ctx, "opening the entry", chromedp.Click(chromedp.CSS(`#timeline tbody tr a`)), chromedp.WaitVisible(chromedp.ID("entry")))
	if v := text(t, ctx, "#entry-verified"); !strings.Contains(v, "Proved included in the signed checkpoint") {
		t.Errorf("the entry page says %q", v)
	}
	if d, page := text(t, ctx, "#decision"), text(t, ctx, "#entry"); d != "DENIED" || !strings.Contains(page, regionReason) || !strings.Contains(page, "Policy hash") {
		t.Errorf("entry: decision %q; %q", d, page)
	}

	must(t, ctx, "filtering to a time with no entry", chromedp.Navigate(cu.base+"/audit?from=2999-01-01T00:00"), chromedp.WaitVisible(chromedp.ID("matching")))
	if m := text(t, ctx, "#matching"); !strings.HasPrefix(m, "0 of ") {
		t.Errorf("entries after 2999: %q", m)
	}

	must(t, ctx, "reconciling the budget", chromedp.Navigate(cu.base+"/audit/budget"), chromedp.WaitVisible(chromedp.ID("reconcile")))
	if rec := tableCells(t, ctx, "#reconcile"); len(rec) != 1 || rec[0][0] != collab || rec[0][3] != "agrees" {
		t.Errorf("reconciliation: %v", rec)
	}

	// The export button's bundle, fetched as the browser would, verifies
	// with the room's key and holds the entries the page showed verified.
	in := httpClient(t)
	login(t, in, cu)
	resp, err := in.Get(cu.base + "/audit/bundle")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %q", resp.StatusCode, resp.Header.Get("Content-Disposition"))
	}
	v, err := note.NewVerifier(f.clients[auditor].Room().VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := bundle.Verify(bytes.NewReader(b), v, nil)
	if err != nil {
		t.Fatalf("the exported bundle does not verify: %v", err)
	}
	if rep.Format != bundle.SparseBundleFormat || rep.Entries != int64(len(cu.srv.audit.snap.Entries)) {
		t.Errorf("exported %s with %d entries; the page verified %d", rep.Format, rep.Entries, len(cu.srv.audit.snap.Entries))
	}
}
