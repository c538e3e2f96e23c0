package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
)

// auditedRoom starts a room with the partners coursely and pulsefit and
// coursely's auditor aud, and returns it with a reverse proxy to it, for a
// dishonest front end to pass on what it does not answer itself.
func auditedRoom(t *testing.T) (*cliRoom, *httputil.ReverseProxy) {
	t.Helper()
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	out, _ := r.must("keygen", "--name", "aud", "--out", r.path("aud.key"))
	os.WriteFile(r.path("aud.jwks"), []byte(out), 0o644)
	r.must("partner", "add", "--room", r.url, "--key", r.path("room/operator.key"), "--id", "aud", "--keys", r.path("aud.jwks"),
		"--role", "auditor", "--partner", "coursely")
	upstream, err := url.Parse(r.url)
	if err != nil {
		t.Fatal(err)
	}
	return r, httputil.NewSingleHostReverseProxy(upstream)
}

// exportThenMore has aud export the log through the front end at front
// (into b1.txt), then the room go on (a collaboration aud's partner
// creates), and returns the command line of a principal through a room.
func exportThenMore(r *cliRoom, front string) func(room, p string, args ...string) []string {
	via := func(room, p string, args ...string) []string {
		return append(args, "--room", room, "--key", r.path(p+".key"))
	}
	r.must(via(front, "coursely", "collab", "create", "--collab", "alliance", "--members", "coursely,pulsefit", "--kind", "email")...)
	r.must(via(front, "aud", "audit", "export", "--out", r.path("b1.txt"))...)
	r.must(via(front, "coursely", "collab", "create", "--collab", "second", "--members", "coursely,pulsefit", "--kind", "email")...)
	return via
}

// TestAttackStaleBundleReplay: a dishonest operator answers an auditor's
// second export with its first bundle, byte for byte, hiding everything
// the room did since (here: a collaboration the auditor's partner
// created in between). Checkpoints carry no time, so cleanroom audit
// verify, even with --since the checkpoint the auditor saved from its
// first bundle, would say OK; the export sends a request id of its own and
// refuses a bundle without the entry the room logged under it.
func TestAttackStaleBundleReplay(t *testing.T) {
	r, rp := auditedRoom(t)

	// The operator's front end: the room itself, but an export is answered
	// with the first bundle it served.
	var mu sync.Mutex
	var first []byte
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/audit/export" {
			rp.ServeHTTP(w, req)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, req)
			first = rec.Body.Bytes()
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(first)
	}))
	defer front.Close()
	via := exportThenMore(r, front.URL)

	code, out, errs := cli(via(front.URL, "aud", "audit", "export", "--out", r.path("b2.txt"))...)
	t.Logf("the second export: exit %d\n%s%s", code, out, errs)
	if code == 0 {
		b1, _ := os.ReadFile(r.path("b1.txt"))
		b2, _ := os.ReadFile(r.path("b2.txt"))
		t.Fatalf("a replayed bundle was taken for the room's answer (the same bytes: %v)", bytes.Equal(b1, b2))
	}
	if !strings.Contains(errs, "older bundle, replayed") {
		t.Errorf("the second export failed otherwise: %s", errs)
	}
	if _, err := os.Stat(r.path("b2.txt")); err == nil {
		t.Error("the replayed bundle was left in place")
	}
	// The room itself, asked directly, answers with its current log.
	r.must(via(r.url, "aud", "audit", "export", "--out", r.path("b3.txt"))...)
	if b3, _ := os.ReadFile(r.path("b3.txt")); !bytes.Contains(b3, []byte(`"collaboration":"second"`)) {
		t.Error("the room's own bundle lacks the collaboration created since")
	}
}
