package console

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// screenshots, when set, is where TestScreenshots writes the README's
// pictures of the console:
//
//	go test ./cleanroom/console -run TestScreenshots -screenshots "$PWD/docs/img"
var screenshots = flag.String("screenshots", "", "write the README's console screenshots into this directory")

// TestScreenshots takes the README's two pictures at 1280×800: a brand's
// query result and the auditor's verified timeline.
func TestScreenshots(t *testing.T) {
	if *screenshots == "" {
		t.Skip("pass -screenshots DIR to write the README's screenshots")
	}
	ctx := tab(t)
	f := alliance(t)
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	brand, err := f.startConsole(cctx, brandA, RolePartner)
	if err != nil {
		t.Fatal(err)
	}
	comp, err := f.startConsole(cctx, auditor, RoleAuditor)
	if err != nil {
		t.Fatal(err)
	}
	shoot := func(name string, how chromedp.Action[[]byte]) {
		t.Helper()
		png, err := chromedp.Run(ctx, how)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(*screenshots, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(png))
	}
	must(t, ctx, "a brand's query: overlap and joint ROI by age band",
		chromedp.EmulateViewport(1280, 800),
		chromedp.Navigate(brand.url),
		chromedp.WaitVisible(chromedp.CSS("table")),
		chromedp.Navigate(brand.base+"/c/"+collab+"/query"),
		chromedp.Click(chromedp.CSS(`input[name=group_by][value="coursely.age_band"]`)),
		chromedp.Click(chromedp.ID("roi")),
		chromedp.Click(chromedp.CSS(`input[name=roi_revenue][value="coursely.revenue"]`)),
		chromedp.Click(chromedp.CSS(`input[name=roi_revenue][value="pulsefit.revenue"]`)),
		chromedp.SetValue(chromedp.ID("roi-cost"), "coursely.campaign_cost"),
		chromedp.Click(chromedp.ID("run")),
		chromedp.WaitVisible(chromedp.ID("result-table")),
	)
	shoot("console-query.png", chromedp.CaptureScreenshot())
	// A refusal for the timeline to show: the analyst asks for a
	// breakdown the alliance's policy does not allow.
	f.clients[analyst].Query(context.Background(), collab, api.QuerySpec{Version: api.QueryVersion,
		Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{brandA + ".region"}, Epsilon: 0.1})
	must(t, ctx, "the auditor's timeline of the collaboration",
		chromedp.Navigate(comp.url),
		chromedp.WaitVisible(chromedp.ID("verification")),
		chromedp.Navigate(comp.base+"/audit?collab="+collab),
		chromedp.WaitVisible(chromedp.ID("timeline")),
	)
	shoot("console-audit.png", chromedp.CaptureScreenshot())
}
