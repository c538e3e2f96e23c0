package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom"
)

// TestAttackStaleBundleReplay: a dishonest operator answers an auditor's
// second export with its first bundle, byte for byte, hiding everything
// the room did since (here: a collaboration the auditor's partner is in,
// created in between). Checkpoints carry no time, so cleanroom audit
// verify, even with --since the checkpoint the auditor saved from its
// first bundle, would say OK; the export sends a request id of its own and
// refuses a bundle without the entry the room logged under it.
func TestAttackStaleBundleReplay(t *testing.T) {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	if code, _, errs := cli("init", "--data", path("room")); code != 0 {
		t.Fatalf("init: %s", errs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := cleanroom.Open(ctx, cleanroom.Config{Dir: cleanroom.DataDir(path("room"))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { r.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done; r.Close() })
	os.WriteFile(path("room.vkey"), []byte(r.Info().VerifierKey+"\n"), 0o644)

	// The operator's front end: the room itself, but an export is answered
	// with the first bundle it served.
	upstream, _ := url.Parse("http://" + ln.Addr().String())
	rp := httputil.NewSingleHostReverseProxy(upstream)
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
	room := front.URL

	must := func(args ...string) string {
		t.Helper()
		code, out, errs := cli(args...)
		if code != 0 {
			t.Fatalf("cleanroom %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	for _, p := range []string{"coursely", "pulsefit", "aud"} {
		_, out, _ := cli("keygen", "--name", p, "--out", path(p+".key"))
		os.WriteFile(path(p+".jwks"), []byte(out), 0o644)
	}
	add := func(args ...string) {
		must(append([]string{"partner", "add", "--room", room, "--key", path("room/operator.key")}, args...)...)
	}
	add("--id", "coursely", "--keys", path("coursely.jwks"))
	add("--id", "pulsefit", "--keys", path("pulsefit.jwks"))
	add("--id", "aud", "--keys", path("aud.jwks"), "--role", "auditor", "--partner", "coursely")
	as := func(p string, args ...string) []string { return append(args, "--room", room, "--key", path(p+".key")) }
	must(as("coursely", "collab", "create", "--id", "alliance", "--members", "coursely,pulsefit", "--kind", "email")...)

	must(as("aud", "audit", "export", "--out", path("b1.txt"))...)
	b1, _ := os.ReadFile(path("b1.txt"))
	hdr, _, _ := bytes.Cut(b1, []byte("\n"))
	var h struct {
		Checkpoint string `json:"checkpoint"`
	}
	json.Unmarshal(hdr, &h)
	os.WriteFile(path("saved.ckpt"), []byte(h.Checkpoint), 0o644)
	t.Logf("auditor saved the checkpoint of its first bundle:\n%s", h.Checkpoint)

	// The room goes on: a collaboration the auditor's partner is in.
	must(as("pulsefit", "collab", "create", "--id", "second", "--members", "pulsefit,coursely", "--kind", "email")...)

	code, out, errs := cli(as("aud", "audit", "export", "--out", path("b2.txt"))...)
	t.Logf("the second export: exit %d\n%s%s", code, out, errs)
	if code == 0 {
		b2, _ := os.ReadFile(path("b2.txt"))
		t.Fatalf("a replayed bundle was taken for the room's answer (the same bytes: %v)", bytes.Equal(b1, b2))
	}
	if !strings.Contains(errs, "older bundle, replayed") {
		t.Errorf("the second export failed otherwise: %s", errs)
	}
	if _, err := os.Stat(path("b2.txt")); err == nil {
		t.Error("the replayed bundle was left in place")
	}
	// The room itself, asked directly, answers with its current log.
	direct := func(p string, args ...string) []string {
		return append(args, "--room", "http://"+ln.Addr().String(), "--key", path(p+".key"))
	}
	must(direct("aud", "audit", "export", "--out", path("b3.txt"))...)
	code, out, errs = cli("audit", "verify", path("b3.txt"), "--key", path("room.vkey"), "--since", path("saved.ckpt"))
	if b3, _ := os.ReadFile(path("b3.txt")); code != 0 || !bytes.Contains(b3, []byte(`"collaboration":"second"`)) {
		t.Errorf("the room's own bundle: verify exit %d %s%s", code, out, errs)
	}
}
