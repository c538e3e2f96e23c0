package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// neighbour is another server on the console's loopback host, run by
// someone else: it records the names of the cookies each request brought,
// and sets one of its own for the whole host ("probe", Path=/).
type neighbour struct {
	*httptest.Server
	mu   sync.Mutex
	seen [][]string // per request, the cookies' names
}

func newNeighbour(t *testing.T) *neighbour {
	n := &neighbour{}
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var names []string
		for _, c := range r.Cookies() {
			names = append(names, c.Name)
		}
		n.mu.Lock()
		n.seen = append(n.seen, names)
		n.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "probe", Value: "1", Path: "/"})
		w.Write([]byte("<!doctype html><title>a local page</title><p>hello</p>"))
	}))
	t.Cleanup(n.Close)
	return n
}

// total returns how many requests the neighbour answered.
func (n *neighbour) total() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.seen)
}

// requests returns how many requests brought a cookie named name.
func (n *neighbour) requests(name string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := 0
	for _, names := range n.seen {
		if slices.Contains(names, name) {
			k++
		}
	}
	return k
}

// neighbourPaths are the pages of the neighbour's the user's browser loads,
// the console's paths among them.
var neighbourPaths = []string{"/", "/s/", "/static/console.css", "/collaborations", "/audit"}

// TestAttackRedteamCookieStaysWithConsole: browsers scope cookies by host,
// not port. Another server on 127.0.0.1, a development server or a
// malicious local program the user's browser happens to load a page from,
// would receive the console's cookie, the token itself, and could replay
// it to the console's port and act with the user's key. The cookie's path
// is the console's pages' random path, so it goes only to requests for that
// path: the neighbour, which does not know it, receives it on none of its
// pages. Checked with an RFC 6265 cookie jar and, where Chromium is
// installed, with the browser; in each, a cookie the first neighbour sets
// for "/" reaches a second neighbour on another port, which shows the port
// gives no protection of its own.
//
// The measure: requests to the neighbours (pages, and the browser's own
// requests such as the icon) that carried the console's cookie; none is
// allowed.
func TestAttackRedteamCookieStaysWithConsole(t *testing.T) {
	_, cu := brandConsole(t)
	cookie := "cleanroom_console_" + strings.TrimPrefix(cu.origin[strings.LastIndex(cu.origin, ":"):], ":")

	t.Run("cookie jar", func(t *testing.T) {
		first, second := newNeighbour(t), newNeighbour(t)
		in := httpClient(t)
		login(t, in, cu)
		for _, n := range []*neighbour{first, second} {
			for _, p := range neighbourPaths {
				resp, err := in.Get(n.URL + p)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
		}
		checkNeighbours(t, cookie, first, second)
		// The cookie still goes to the console's own pages.
		if got := getPage(t, in, cu, "/collaborations"); !strings.Contains(got, collab) {
			t.Fatal("the console's page, with the cookie, does not list the collaboration")
		}
	})

	t.Run("browser", func(t *testing.T) {
		bctx := tab(t)
		first, second := newNeighbour(t), newNeighbour(t)
		must(t, bctx, "opening the printed URL", chromedp.Navigate(cu.url), chromedp.WaitVisible(chromedp.CSS("table")))
		for _, n := range []*neighbour{first, second} {
			for _, p := range neighbourPaths {
				must(t, bctx, "opening the neighbour's "+p, chromedp.Navigate(n.URL+p), chromedp.WaitVisible(chromedp.CSS("p")))
			}
		}
		checkNeighbours(t, cookie, first, second)
		must(t, bctx, "back to the console", chromedp.Navigate(cu.base+"/collaborations"), chromedp.WaitVisible(chromedp.CSS("table")))
	})
}

// checkNeighbours fails the test if either neighbour received the console's
// cookie, and checks that the second received the first's cookie for "/":
// the client sent a host's cookies to another port.
func checkNeighbours(t *testing.T, cookie string, first, second *neighbour) {
	t.Helper()
	leaked := first.requests(cookie) + second.requests(cookie)
	t.Logf("requests to the neighbours that carried the console's cookie: %d of %d", leaked, first.total()+second.total())
	if leaked != 0 {
		t.Errorf("the console's cookie went to %d requests for other servers on its host: whoever runs them can replay it", leaked)
	}
	if second.requests("probe") == 0 {
		u, _ := url.Parse(first.URL)
		t.Fatalf("the neighbour at %s set a cookie for /, and the one on another port never received it: this client keeps cookies per port, and the test shows nothing", u.Host)
	}
}
