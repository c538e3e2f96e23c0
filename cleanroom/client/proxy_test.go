package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// faultProxy is an HTTP proxy in front of a real room that, as fault
// decides, answers a request itself, or drops its connection before or
// after the room has answered it. It counts every request by method and
// path pattern (pathPattern), and a part upload's tries by part number.
type faultProxy struct {
	srv   *httptest.Server
	room  *httputil.ReverseProxy
	fault func(r *http.Request, part, try int) fault

	mu    sync.Mutex
	calls map[string]int
	tries map[int]int // PUT .../uploads/*/parts/<n>: tries of part n
}

// fault is what the proxy does to one request: forward it (the zero
// value), answer status itself (with Retry-After if set), or drop the
// connection, before forwarding it or, with forward, once the room has
// answered.
type fault struct {
	status     int
	retryAfter string
	drop       bool
	forward    bool
}

func newFaultProxy(t *testing.T, roomURL string, f func(r *http.Request, part, try int) fault) *faultProxy {
	t.Helper()
	u, err := url.Parse(roomURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{room: httputil.NewSingleHostReverseProxy(u), fault: f, calls: map[string]int{}, tries: map[int]int{}}
	p.room.ErrorLog = log.New(io.Discard, "", 0) // a client gone mid-request is expected here
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	part := partNumber(r)
	p.mu.Lock()
	p.calls[r.Method+" "+pathPattern(r.URL.Path)]++
	try := 0
	if part >= 0 {
		p.tries[part]++
		try = p.tries[part]
	}
	p.mu.Unlock()
	var f fault
	if p.fault != nil {
		f = p.fault(r, part, try)
	}
	switch {
	case f.drop && f.forward:
		p.room.ServeHTTP(httptest.NewRecorder(), r) // the room acts on it; its answer is lost
		panic(http.ErrAbortHandler)
	case f.drop:
		panic(http.ErrAbortHandler) // closes the connection, no answer
	case f.status != 0:
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		w.Header().Set("Content-Type", api.ProblemContentType)
		w.WriteHeader(f.status)
		fmt.Fprintf(w, `{"type":"/problems/test","title":"the proxy answers %d","status":%d}`, f.status, f.status)
	default:
		p.room.ServeHTTP(w, r)
	}
}

// partNumber is the part a part upload sends, or -1 for another request.
func partNumber(r *http.Request) int {
	segs := strings.Split(r.URL.Path, "/")
	if r.Method != http.MethodPut || len(segs) < 2 || segs[len(segs)-2] != "parts" || !strings.Contains(r.URL.Path, "/uploads/") {
		return -1
	}
	n, err := strconv.Atoi(segs[len(segs)-1])
	if err != nil {
		return -1
	}
	return n
}

// triesOf returns the tries of each part so far.
func (p *faultProxy) triesOf() map[int]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int]int, len(p.tries))
	for k, v := range p.tries {
		out[k] = v
	}
	return out
}

// count is how many requests matched method and pattern.
func (p *faultProxy) count(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[key]
}

// reset forgets the requests so far.
func (p *faultProxy) reset() {
	p.mu.Lock()
	clear(p.calls)
	clear(p.tries)
	p.mu.Unlock()
}

// partnerVia registers a partner and returns its client, which reaches the
// room at url with opts, and its key.
func (rm *room) partnerVia(id, url string, opts client.Options) (*client.Client, *crypto.PartnerKey) {
	t := rm.t
	t.Helper()
	ctx := context.Background()
	k, err := crypto.GeneratePartnerKey(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rm.op.RegisterPrincipal(ctx, api.Principal{ID: id, Role: policy.RolePartner, Keys: k.Public()}); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(ctx, url, k, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}
