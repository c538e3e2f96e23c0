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

// TestAttackRedteamRTRedirectTab: after the token's exchange the guard
// redirects to the same path, one leading slash kept. A path of
// "/%09/attacker.example/" would give the Location "/\t/attacker.example/"
// (http.Redirect leaves a URL it cannot parse as it is), which a browser's
// URL parser, dropping every tab and newline, follows to
// //attacker.example/, another site.
//
// The property: the redirect after the token's exchange never resolves,
// as a browser resolves it, to another host.
func TestAttackRedteamRTRedirectTab(t *testing.T) {
	f := alliance(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cu, err := f.startConsole(ctx, brandA, RolePartner)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(cu.url)
	token := u.Query().Get(tokenParam)
	base, _ := url.Parse(cu.base + "/")
	for _, path := range []string{"/%09/attacker.example/", "/%09%2Fattacker.example/", "/%0A/attacker.example/", "/%5C%09/attacker.example/"} {
		// Go's client refuses a Location with a tab before handing it
		// over: read the answer off the wire as a browser does.
		conn, err := net.Dial("tcp", base.Host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s?%s=%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, tokenParam, url.QueryEscape(token), base.Host)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		conn.Close()
		loc := resp.Header.Get("Location")
		// The WHATWG URL parser strips ASCII tab and newline anywhere.
		browserLoc := strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(loc)
		to, err := base.Parse(browserLoc)
		t.Logf("GET %s?token=…: %d, Location %q, which a browser follows to %v", path, resp.StatusCode, loc, to)
		if err == nil && to.Host != base.Host {
			t.Errorf("GET %s with the token: Location %q, which a browser resolves to %s: off the console", path, loc, to)
		}
	}
}

// TestAttackRedteamRTStaticPrefixOtherMethods: the guard lets any request
// whose path begins with /static/ through without the token, for the
// stylesheet and icon. Only GET /static/ is the assets' route: any other
// method on such a path falls through to the catch-all "/", which renders
// the console's error page inside its layout, naming the principal whose
// key the console holds, its role and the room's id, to a caller without
// the token.
func TestAttackRedteamRTStaticPrefixOtherMethods(t *testing.T) {
	f := alliance(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cu, err := f.startConsole(ctx, brandB, RolePartner)
	if err != nil {
		t.Fatal(err)
	}
	room := f.clients[brandB].Room().ID
	for _, method := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
		req, _ := http.NewRequest(method, cu.base+"/static/x", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := string(b)
		if strings.Contains(page, "As <strong>"+brandB+"</strong>") || strings.Contains(page, room) {
			t.Errorf("%s /static/x without the token: %d, the console's layout naming principal %q and room %q", method, resp.StatusCode, brandB, room)
		}
	}
}
