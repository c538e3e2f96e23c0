package console

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// login opens the console's printed URL with c, as a browser does, and
// checks the exchange: a cookie of the console's own, and a redirect to
// the page without the token.
func login(t *testing.T, c *http.Client, cu *consoleUnderTest) {
	t.Helper()
	resp, err := c.Get(cu.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != cu.srv.base+"/" {
		t.Fatalf("opening the printed URL: %d to %q, want 303 to %s/", resp.StatusCode, resp.Header.Get("Location"), cu.srv.base)
	}
	set := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=" + cu.srv.base + ";"} {
		if !strings.Contains(set, want) {
			t.Errorf("cookie %q lacks %s", set, want)
		}
	}
}

// TestGuard: every way a request can fail the console's guard, against a
// console with a real room behind it.
func TestGuard(t *testing.T) {
	f := alliance(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cu, err := f.startConsole(ctx, brandA, RolePartner)
	if err != nil {
		t.Fatal(err)
	}
	in := httpClient(t)
	login(t, in, cu)
	u, _ := url.Parse(cu.base)
	form := url.Values{"count": {"on"}, "epsilon": {"0.1"}, "do": {"run"}}.Encode()
	queryURL := cu.base + "/c/" + collab + "/query"

	for _, tc := range []struct {
		name   string
		client *http.Client
		method string
		url    string
		header map[string]string
		want   int
		body   string // the answer contains this
	}{
		{"page with the cookie", in, "GET", cu.base + "/", nil, 200, collab},
		{"page without the token", http.DefaultClient, "GET", cu.base + "/", nil, 403, "needs its token"},
		{"wrong token in the URL", httpClient(t), "GET", cu.base + "/?token=" + newToken(), nil, 403, "not this console's"},
		{"stylesheet without the token", http.DefaultClient, "GET", cu.origin + "/static/console.css", nil, 200, "cleanroom console"},
		{"rebound DNS name", in, "GET", cu.base + "/", map[string]string{"Host": "attacker.example:" + u.Port()}, 403, "its own address"},
		{"POST from another origin", in, "POST", queryURL, map[string]string{"Origin": "http://attacker.example"}, 403, "another site"},
		{"POST from another site (fetch metadata)", in, "POST", queryURL, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "another site"},
		{"POST without the token", http.DefaultClient, "POST", queryURL, map[string]string{"Origin": cu.origin}, 403, "needs its token"},
		{"POST from the console's own page", in, "POST", queryURL, map[string]string{"Origin": cu.origin, "Sec-Fetch-Site": "same-origin"}, 200, "The spec sent to the room"},
		{"auditor page on a partner's console", in, "GET", cu.base + "/audit", nil, 404, "no such page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.method == "POST" {
				body = strings.NewReader(form)
			}
			req, err := http.NewRequest(tc.method, tc.url, body)
			if err != nil {
				t.Fatal(err)
			}
			if body != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			for k, v := range tc.header {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := tc.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.body) {
				t.Fatalf("%s %s: %d, want %d with %q; body:\n%.400s", tc.method, tc.url, resp.StatusCode, tc.want, tc.body, b)
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			if resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("X-Frame-Options %q", resp.Header.Get("X-Frame-Options"))
			}
		})
	}
}

func TestListenLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true}, {"localhost:0", true}, {"[::1]:0", true},
		{"0.0.0.0:0", false}, {":0", false}, {"192.0.2.1:0", false}, {"example.org:0", false}, {"nonsense", false},
	} {
		ln, err := Listen(tc.addr)
		if ln != nil {
			ln.Close()
		}
		if tc.ok && err != nil && !strings.Contains(err.Error(), "assign requested address") {
			t.Errorf("Listen(%q) = %v", tc.addr, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("Listen(%q) accepted", tc.addr)
		}
	}
}

// TestGuardRedirectStaysOnSite: opening the console's link with a path
// that begins with two slashes (or a backslash) redirects, after setting
// the cookie, to a path of the console's own, never to the host the path
// would name.
func TestGuardRedirectStaysOnSite(t *testing.T) {
	f := alliance(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cu, err := f.startConsole(ctx, brandA, RolePartner)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(cu.url)
	if err != nil {
		t.Fatal(err)
	}
	token := u.Query().Get(tokenParam)
	for _, path := range []string{"//attacker.example/", "///attacker.example/x", "/\\attacker.example/"} {
		req, err := http.NewRequest("GET", cu.base+"/?"+tokenParam+"="+url.QueryEscape(token), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Path = cu.srv.base + path
		resp, err := httpClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, cu.srv.base+"/") || strings.HasPrefix(loc, cu.srv.base+"//") {
			t.Errorf("GET %s with the token: %d to %q, want a page of the console's", path, resp.StatusCode, loc)
		}
	}
	// A tab or newline in the path: http.Redirect leaves a Location it
	// cannot parse as it is, and a browser's URL parser drops tabs and
	// newlines before resolving it ("/\t/host/" is "//host/"). Go's client
	// refuses such a Location: read the answer off the wire.
	base, _ := url.Parse(cu.base + "/")
	for _, path := range []string{"/%09/attacker.example/", "/%09%2Fattacker.example/", "/%0A/attacker.example/", "/%5C%09/attacker.example/"} {
		conn, err := net.Dial("tcp", base.Host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s?%s=%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", cu.srv.base+path, tokenParam, url.QueryEscape(token), base.Host)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		conn.Close()
		loc := resp.Header.Get("Location")
		to, err := base.Parse(strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(loc))
		if err == nil && to.Host != base.Host {
			t.Errorf("GET %s with the token: Location %q, which a browser follows to %s, off the console", path, loc, to)
		}
	}
}
