package console

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser the tests drive: Debian's headless Chromium, one process for
// the package, a tab per test.

var browserState struct {
	once   sync.Once
	ctx    context.Context
	cancel func()
	err    error
}

// chromiumPath finds Chromium or Chrome: $CHROME, then the usual names.
func chromiumPath() string {
	if p := os.Getenv("CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// tab returns a new browser tab for the test, at a 1280×800 window. Without
// Chromium the test skips, unless CI is set: there, a missing browser is a
// failure (.ci/run installs it).
func tab(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set and Chromium is missing: install it (apt-get install -y chromium; .ci/run does) or set CHROME")
		}
		t.Skip("skipped: Chromium is not installed and CI is unset (apt-get install -y chromium, or set CHROME, to run the browser tests)")
	}
	browserState.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
			chromedp.DisableGPU, chromedp.WindowSize(1280, 800), chromedp.Flag("lang", "en-US"))
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelCtx := chromedp.NewContext(alloc)
		browserState.ctx = ctx
		browserState.cancel = func() { cancelCtx(); cancelAlloc() }
		browserState.err = chromedp.Do(ctx) // starts the browser
	})
	if browserState.err != nil {
		t.Fatalf("starting Chromium (%s): %v", path, browserState.err)
	}
	ctx, cancel := chromedp.NewContext(browserState.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		t.Fatal(err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, 45*time.Second)
	t.Cleanup(cancelTimeout)
	return tctx
}

// stopBrowser ends the shared browser, if a test started it.
func stopBrowser() {
	if browserState.cancel != nil {
		browserState.cancel()
	}
}

// must runs browser steps and fails the test at the first error, naming
// what the test was doing.
func must(t *testing.T, ctx context.Context, doing string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", doing, err)
	}
}

// text reads an element's text.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("reading %s: %v", sel, err)
	}
	return s
}

// tableCells reads the body rows of a table, each as its cells' text.
func tableCells(t *testing.T, ctx context.Context, table string) [][]string {
	t.Helper()
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](
		`[...document.querySelectorAll(`+"`"+table+` tbody tr`+"`"+`)].map(tr => [...tr.children].map(c => c.textContent.trim()))`))
	if err != nil {
		t.Fatalf("reading the rows of %s: %v", table, err)
	}
	return rows
}
