package cleanroom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestFailClosed: when the audit log cannot record, requests are refused
// with 503 and nothing they asked for happens.
func TestFailClosed(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	tr.partner("bravo", policy.RolePartner, "")
	ctx := context.Background()
	tr.room.audit.Close()
	_, err := a.CreateCollaboration(ctx, api.CreateCollaboration{ID: "c1", Kind: "email", Members: []string{"alpha", "bravo"}})
	p := wantProblem(t, err, api.ProblemUnavailable)
	if p.Status != http.StatusServiceUnavailable {
		t.Errorf("status %d", p.Status)
	}
	if _, err := tr.room.collab("c1"); err == nil {
		t.Fatal("the collaboration was created though its audit entry was not written")
	}
}

// TestExpiry: a collaboration past its expiry touches no data.
func TestExpiry(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	ctx := context.Background()
	tr := startRoomAt(t, now, nil)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	if _, err := a.CreateCollaboration(ctx, api.CreateCollaboration{ID: "c1", Kind: "email", Members: []string{"alpha", "bravo"}, Settings: []byte(`{"expires_in_hours": 1}`)}); err != nil {
		t.Fatal(err)
	}
	states := map[string]client.StateDir{"alpha": client.StateDir(t.TempDir())}
	if err := a.DistributeSecret(ctx, "c1", states["alpha"], nil); err != nil {
		t.Fatal(err)
	}
	acceptAsShown(t, b, "c1")
	offset.Store(int64(2 * time.Hour))
	_, err := a.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(0, 1500)), states["alpha"]))
	p := wantProblem(t, err, api.ProblemDenied)
	if !strings.Contains(strings.Join(p.Reasons, "|"), "the collaboration has expired") {
		t.Errorf("reasons %v", p.Reasons)
	}
}

// TestHTTPHygiene: request ids, problem documents for unknown routes,
// health, metrics (apart from the API) and the published key set.
func TestHTTPHygiene(t *testing.T) {
	tr := startRoom(t)
	get := func(path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", tr.url+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/healthz", "X-Request-Id", "trace-42")
	if resp.StatusCode != 200 || !strings.Contains(body, `"status":"ok"`) || resp.Header.Get("X-Request-Id") != "trace-42" {
		t.Errorf("healthz: %d %s (request id %q)", resp.StatusCode, body, resp.Header.Get("X-Request-Id"))
	}
	// Answers and refusals alike: never cached, never sniffed.
	for _, path := range []string{"/healthz", "/v1/principals", "/nope"} {
		resp, _ := get(path)
		if cc, nosniff := resp.Header.Get("Cache-Control"), resp.Header.Get("X-Content-Type-Options"); cc != "no-store" || nosniff != "nosniff" {
			t.Errorf("%s (%d): Cache-Control %q, X-Content-Type-Options %q", path, resp.StatusCode, cc, nosniff)
		}
	}
	resp, body = get("/nope", "X-Request-Id", "bad id with spaces")
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != api.ProblemContentType || !strings.Contains(body, "no such endpoint") {
		t.Errorf("unknown route: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if id := resp.Header.Get("X-Request-Id"); id == "" || strings.Contains(id, " ") {
		t.Errorf("request id %q", id)
	}
	_, body = get("/.well-known/jwks.json")
	if !strings.Contains(body, `"crv":"Ed25519"`) || strings.Contains(body, `"d":`) {
		t.Errorf("jwks: %s", body)
	}
	get("/v1/principals") // a refused request, to be counted (the second)
	if resp, _ := get("/metrics"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the API's port: %d, want 404 (the operator serves MetricsHandler apart)", resp.StatusCode)
	}
	rec := httptest.NewRecorder()
	tr.room.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body = rec.Body.String()
	for _, m := range []string{`cleanroom_http_requests_total{code="401",route="GET /v1/principals"} 2`, "cleanroom_auth_failures_total", "cleanroom_audit_entries"} {
		if !strings.Contains(body, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
}

// A room whose audit log has stopped (a commit of unknown outcome: a disk
// error) can record nothing more until it restarts: its health check says
// so, to the orchestrator that would restart it, without the cause, which
// names the room's disk and files to anyone who reaches the port.
func TestHealthReportsStoppedAuditLog(t *testing.T) {
	tr := startRoom(t)
	health := func() (int, string) {
		t.Helper()
		resp, err := http.Get(tr.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := health(); code != http.StatusOK || tr.room.auditStopped() != nil {
		t.Fatalf("a running room: %d %s (audit log: %v)", code, body, tr.room.auditStopped())
	}
	stop := fmt.Errorf("audit: append failed, 1 entries may or may not have been written: %w",
		errors.Join(audit.ErrStopped, errors.New("sync /srv/room/db/000042.vlog: input/output error")))
	tr.room.auditFault.Store(&stop)
	code, body := health()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, api.ProblemUnavailable) || !strings.Contains(body, "audit log has stopped") {
		t.Errorf("a stopped audit log: %d %s", code, body)
	}
	for _, leak := range []string{"000042", "/srv/room", "input/output"} {
		if strings.Contains(body, leak) {
			t.Errorf("the health check tells anyone %q: %s", leak, body)
		}
	}
	tr.room.auditFault.Store(nil)
	if code, body := health(); code != http.StatusOK {
		t.Errorf("health once the log runs again: %d %s", code, body)
	}
}
