package console

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// attackerPage serves, on its own loopback port, a page whose form posts a
// query to the console: what a site the user visits while the console runs
// could do. It returns the page's URL on host (127.0.0.1: same site as the
// console, another origin; localhost: another site).
func attackerPage(t *testing.T, host, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := fmt.Sprintf(`<!doctype html><title>a page elsewhere</title>
<form method="post" action="%s">
<input type="hidden" name="count" value="on"><input type="hidden" name="epsilon" value="0.5">
<input type="hidden" name="do" value="run"><button id="go">Win a prize</button></form>`, target)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "http://" + host + ":" + port + "/"
}

// waitLocation waits until the tab has navigated to url.
func waitLocation(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	for {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err == nil && loc == url {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the tab is at %q, not %q: %v", loc, url, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestBrowserCrossSitePost: a page of another origin or another site that
// posts the query form to a console the user is logged in to gets a
// refusal, and the room answers no query.
func TestBrowserCrossSitePost(t *testing.T) {
	ctx := tab(t)
	f := alliance(t)
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cu, err := f.startConsole(cctx, brandA, RolePartner)
	if err != nil {
		t.Fatal(err)
	}
	must(t, ctx, "logging in", chromedp.Navigate(cu.url), chromedp.WaitVisible(chromedp.CSS("table")))
	before, err := f.clients[brandA].Budget(context.Background(), collab)
	if err != nil {
		t.Fatal(err)
	}
	target := cu.base + "/c/" + collab + "/query"
	for _, tc := range []struct{ name, host, want string }{
		{"another origin of the same site", "127.0.0.1", "another site"}, // the cookie goes along; Sec-Fetch-Site refuses
		{"another site", "localhost", "needs its token"},                 // SameSite=Strict keeps the cookie home
	} {
		t.Run(tc.name, func(t *testing.T) {
			must(t, ctx, "submitting the other page's form",
				chromedp.Navigate(attackerPage(t, tc.host, target)),
				chromedp.Click(chromedp.ID("go")),
			)
			waitLocation(t, ctx, target)
			body, err := chromedp.Run(ctx, chromedp.Poll[string](`document.body && document.body.innerText.includes(`+strconv.Quote(tc.want)+`) && document.body.innerText`))
			if err != nil || strings.Contains(body, "The answer") {
				t.Errorf("the console answered the other page's post with %q (%v), want %q", body, err, tc.want)
			}
		})
	}
	after, err := f.clients[brandA].Budget(context.Background(), collab)
	if err != nil {
		t.Fatal(err)
	}
	if after.QueriesToday != before.QueriesToday || after.Spent != before.Spent {
		t.Errorf("the room answered a query: %d queries and %v spent before, %d and %v after", before.QueriesToday, before.Spent, after.QueriesToday, after.Spent)
	}
}
