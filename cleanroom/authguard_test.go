package cleanroom

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestFailedAuthenticationsThrottled: 2,000 bad tokens from one source
// grow the audit log by one entry, whose counts add up to the 2,000: those
// refused after verification (401, within the source's allowance) and
// those refused before it (429). Meanwhile another source's good requests
// are answered, and this source's are once a token has refilled.
func TestFailedAuthenticationsThrottled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr := startRoom(t) // the default limits: 20 failures, then 60 a minute
	tr.partner("alpha", policy.RolePartner, "")
	httpc := clientFrom(t, "127.0.0.1")
	// The same principal, connecting from another loopback address.
	elsewhere := clientFrom(t, "127.0.0.2")
	// goodToken lists the principals with a good token of alpha's: policy
	// refuses it (403) once the token is verified.
	goodToken := func(c *http.Client) (int, string) {
		t.Helper()
		tok, err := api.SignRequestToken(tr.keys["alpha"].SigningKey(), "alpha", tr.room.Info().ID, randID(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", tr.url+"/v1/principals", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Content-Type")
	}
	if status, _ := goodToken(elsewhere); status != http.StatusForbidden {
		t.Skipf("cannot connect from 127.0.0.2 (%d)", status)
	}

	const sent = 2000
	before := tr.room.audit.Size()
	status := map[int]int{}
	start := time.Now()
	for i := range sent {
		req, _ := http.NewRequestWithContext(ctx, "GET", tr.url+"/v1/principals", nil)
		req.Header.Set("Authorization", "Bearer not.a.jwt")
		resp, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		status[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("request %d: Retry-After %q", i, resp.Header.Get("Retry-After"))
			}
		}
	}
	elapsed := time.Since(start)
	if status[http.StatusUnauthorized]+status[http.StatusTooManyRequests] != sent {
		t.Fatalf("answers %v: want only 401 and 429", status)
	}
	if allowed := 20 + int(elapsed.Seconds()) + 1; status[http.StatusUnauthorized] > allowed {
		t.Errorf("%d tokens verified in %v, want at most %d", status[http.StatusUnauthorized], elapsed, allowed)
	}
	if got := counterValue(t, tr.room, "cleanroom_auth_rate_limited_total"); int(got) != status[http.StatusTooManyRequests] {
		t.Errorf("rate-limited metric %v, want %d", got, status[http.StatusTooManyRequests])
	}

	// Over its limit, the source is refused even a good token, unread...
	if status, ct := goodToken(httpc); status != http.StatusTooManyRequests || ct != api.ProblemContentType {
		t.Errorf("a good token over the limit: %d %s", status, ct)
	}
	// ...while another source is answered.
	if status, _ := goodToken(elsewhere); status != http.StatusForbidden {
		t.Errorf("a good token from another source: %d", status)
	}

	if err := tr.room.flushAuthFailures(ctx); err != nil {
		t.Fatal(err)
	}
	grew := tr.room.audit.Size() - before
	var counted int64
	for i := before; i < tr.room.audit.Size(); i++ {
		e := entryAt(t, tr.room, i)
		if e.Action != "auth.token" {
			continue // the other source's requests, refused by policy
		}
		for _, n := range refusedCounts(t, e) {
			counted += n
		}
	}
	t.Logf("%d bad tokens in %v: %v; the log grew by %d entries", sent, elapsed.Round(time.Millisecond), status, grew)
	if grew > 3 {
		t.Errorf("the log grew by %d entries, want at most 3 (the source's, perhaps one more flush, the other source's request)", grew)
	}
	if counted != sent+1 { // and the good token refused unread
		t.Errorf("the entries count %d refusals, want %d", counted, sent+1)
	}

	// Once a token has refilled, the source's good requests are answered.
	time.Sleep(1100 * time.Millisecond)
	if status, _ := goodToken(httpc); status != http.StatusForbidden {
		t.Errorf("a good token after the refill: %d", status)
	}

	// Close records what was not yet flushed.
	for range 5 {
		req, _ := http.NewRequestWithContext(ctx, "GET", tr.url+"/v1/principals", nil)
		resp, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	tr.restart()
	e := lastEntry(t, tr.room)
	if n := refusedCounts(t, e); e.Action != "auth.token" || n[authNoToken]+n[authLimited] != 5 {
		t.Errorf("after Close, last entry %+v", e)
	}
}

// clientFrom is an HTTP client whose connections come from local address ip.
func clientFrom(t *testing.T, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tp := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tp.CloseIdleConnections)
	return &http.Client{Transport: tp, Timeout: 30 * time.Second}
}

// TestAuthGuard: the buckets refill at the rate, the table of sources is
// bounded (beyond it, sources share one bucket), drained sources whose
// buckets are full are forgotten, and counts not recorded are restored.
func TestAuthGuard(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	g := newAuthGuard(AuthLimits{PerMinute: 60, Burst: 2, Sources: 2}, func() time.Time { return now })
	admitted := func(src string) bool { _, ok := g.admit(src, authLimited); return ok }
	for _, step := range []struct {
		name string
		do   func()
		src  string
		want bool
	}{
		{"a new source", func() {}, "10.0.0.1", true},
		{"one failure", func() { g.fail("10.0.0.1", authMalformed) }, "10.0.0.1", true},
		{"the burst spent", func() { g.fail("10.0.0.1", authMalformed) }, "10.0.0.1", false},
		{"another source", func() {}, "10.0.0.2", true},
		{"a second of refill", func() { now = now.Add(time.Second) }, "10.0.0.1", true},
		{"a second source fails", func() { g.fail("10.0.0.2", authMalformed); g.fail("10.0.0.2", authMalformed) }, "10.0.0.2", false},
		{"a third source shares the other bucket", func() { g.fail("10.0.0.3", authMalformed) }, "10.0.0.4", true},
		{"the other bucket spent", func() { g.fail("10.0.0.4", authMalformed) }, "10.0.0.5", false},
	} {
		step.do()
		if got := admitted(step.src); got != step.want {
			t.Fatalf("%s: admit(%s) = %v, want %v", step.name, step.src, got, step.want)
		}
	}
	if len(g.sources) != 2 {
		t.Fatalf("%d sources tracked, want 2", len(g.sources))
	}
	reps := g.drain()
	got := map[string]int64{}
	for _, rep := range reps {
		for _, n := range rep.refused {
			got[rep.source] += n
		}
	}
	want := map[string]int64{"10.0.0.1": 3, "10.0.0.2": 3, otherSource: 3}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("drained %v, want %v", got, want)
	}
	g.restore(reps)
	now = now.Add(time.Minute)
	if reps := g.drain(); len(reps) != 3 {
		t.Errorf("restored counts drained as %v", reps)
	}
	if len(g.sources) != 0 {
		t.Errorf("%d sources still tracked with full buckets and nothing to record", len(g.sources))
	}
}

// TestSourceOf: the source is the connection's address (an IPv6 one by its
// /64), never a header.
func TestSourceOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ remote, want string }{
		{"203.0.113.7:5000", "203.0.113.7"},
		{"[::ffff:203.0.113.7]:5000", "203.0.113.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:443", "fe80::/64"},
		{"garbage", otherSource},
	} {
		req, _ := http.NewRequest("GET", "http://room/", nil)
		req.RemoteAddr = tc.remote
		req.Header.Set("X-Forwarded-For", "198.51.100.1")
		if got := sourceOf(req); got != tc.want {
			t.Errorf("sourceOf(%s) = %s, want %s", tc.remote, got, tc.want)
		}
	}
}

func entryAt(t *testing.T, r *Room, i int64) audit.Entry {
	t.Helper()
	b, err := r.audit.Entry(context.Background(), i)
	if err != nil {
		t.Fatal(err)
	}
	e, err := audit.ParseEntry(b)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// counterValue sums the room's counter name over its labels.
func counterValue(t *testing.T, r *Room, name string) float64 {
	t.Helper()
	mfs, err := r.cfg.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}
