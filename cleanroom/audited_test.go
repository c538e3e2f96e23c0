package cleanroom

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestEveryRefusalAudited: every refused authenticated request leaves
// exactly one audit entry, under the route's action and collaboration,
// with a fixed reason for its kind of problem and nothing the caller wrote.
func TestEveryRefusalAudited(t *testing.T) {
	t.Parallel()
	tr, a, _, _ := readyPair(t, api.ModeHashed, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	tr.partner("ana", policy.RoleAnalyst, "alpha")
	tr.partner("audrey", policy.RoleAuditor, "alpha")
	const callerText = "ZZ-caller-chosen-ZZ"
	canary := madeUpCanary("email")
	up := startUpload(t, tr, api.StartUpload{Kind: "email", Profile: "pair-v1", Columns: []string{"region"}, Rows: 2000, RowsPerPart: 1000, Canary: canary})
	member := func(m ...string) string {
		return fmt.Sprintf(`{"id":"c2","kind":"email","members":["%s"]}`, strings.Join(m, `","`))
	}
	for _, tc := range []struct {
		name, who, method, path, body string
		status                        int
		action, collab, reason        string
	}{
		{"malformed query", "alpha", "POST", "/v1/collaborations/c1/queries", `{"version":"x"}`,
			400, "query.run", "c1", "the request was malformed"},
		{"a metric named by the caller", "alpha", "POST", "/v1/collaborations/c1/queries", `{"version":"` + api.QueryVersion + `","metrics":[{"kind":"` + callerText + `"}],"epsilon":0.1}`,
			400, "query.run", "c1", "the request was malformed"},
		{"not JSON", "alpha", "POST", "/v1/collaborations", `{`,
			400, "collaboration.create", "", "the request was malformed"},
		{"secret asked by an analyst", "ana", "GET", "/v1/collaborations/c1/secret", "",
			403, "collaboration.read", "c1", "refused: not allowed"},
		{"no such upload", "alpha", "GET", "/v1/collaborations/c1/uploads/up-" + callerText, "",
			404, "collaboration.read", "c1", "refused: not found"},
		{"no such task", "alpha", "GET", "/v1/collaborations/c1/tasks/task-x/parts/0", "",
			404, "dataset.reencrypt", "c1", "refused: not found"},
		{"part number not a number", "alpha", "GET", "/v1/collaborations/c1/tasks/task-x/parts/" + callerText, "",
			400, "dataset.reencrypt", "c1", "the request was malformed"},
		{"refused in the transaction: a member not registered", "alpha", "POST", "/v1/collaborations", member("alpha", "ghost"),
			400, "collaboration.create", "c2", "the request was malformed"},
		{"refused in the transaction: the id is taken", "alpha", "POST", "/v1/collaborations", strings.Replace(member("alpha", "bravo"), "c2", "c1", 1),
			409, "collaboration.create", "c1", "refused: conflict with the collaboration's state"},
		{"commit with parts missing", "alpha", "POST", "/v1/collaborations/c1/uploads/" + up.ID + "/commit", `{"digest":"00"}`,
			409, "dataset.upload", "c1", "refused: conflict with the collaboration's state"},
		{"policy too large", "alpha", "POST", "/v1/collaborations/c1/policy", strings.Repeat("#", maxModule+1),
			413, "policy.propose", "c1", "the request was larger than the room accepts"},
		// Refused by policy: recorded by authorize, once.
		{"query by an auditor", "audrey", "POST", "/v1/collaborations/c1/queries", `{"version":"` + api.QueryVersion + `","metrics":[{"kind":"count"}],"epsilon":0.1}`,
			403, "query.run", "c1", "auditors read the audit log but never touch data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tr.room.audit.Size()
			resp, body := requestAt(t, tr, tr.url, tc.who, tc.method, tc.path, []byte(tc.body))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if grew := tr.room.audit.Size() - before; grew != 1 {
				t.Fatalf("the log grew by %d entries, want 1", grew)
			}
			e := lastEntry(t, tr.room)
			if e.Principal != tc.who || e.Action != tc.action || e.Collaboration != tc.collab || e.Decision.Allow ||
				!slices.Contains(e.Decision.Reasons, tc.reason) || !isRequestOf(t, tr.room, e, resp.Header.Get("X-Request-Id")) {
				t.Errorf("entry %+v, want %s on %q refused: %s", e, tc.action, tc.collab, tc.reason)
			}
			if b, _ := jsonMarshal(e); bytes.Contains(b, []byte(callerText)) {
				t.Errorf("the entry carries the caller's text: %s", b)
			}
		})
	}
}

// isRequestOf reports whether e was logged for request id, under its
// principal's request key in room.
func isRequestOf(t *testing.T, room *Room, e audit.Entry, id string) bool {
	t.Helper()
	key, err := room.audit.RequestKey(e.Principal)
	if err != nil {
		t.Fatal(err)
	}
	return e.Salt != "" && audit.IsRequest(e, key, id) && !audit.IsRequest(e, nil, id)
}

// TestConcurrentRefusalsAudited: queries racing for the last of the budget
// each leave one entry, whether policy refused them before the query ran
// or the transaction did after.
func TestConcurrentRefusalsAudited(t *testing.T) {
	t.Parallel()
	// 0.1 for the match's release and two queries of 0.5, from one pool.
	tr, a, _, _ := readyPair(t, api.ModeHashed, map[string]any{"epsilon_budget": 1.1, "pooled_budget": true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	q := `{"version":"` + api.QueryVersion + `","metrics":[{"kind":"count"}],"epsilon":0.5}`
	if resp, body := requestAt(t, tr, tr.url, "alpha", "POST", "/v1/collaborations/c1/queries", []byte(q)); resp.StatusCode != 200 {
		t.Fatalf("first query: %d %s", resp.StatusCode, body)
	}
	const n = 8
	before := tr.room.audit.Size()
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			tok, err := api.SignRequestToken(tr.keys["alpha"].SigningKey(), "alpha", tr.room.Info().ID, randID(), time.Now())
			if err != nil {
				return
			}
			req, _ := http.NewRequestWithContext(ctx, "POST", tr.url+"/v1/collaborations/c1/queries", strings.NewReader(q))
			req.Header.Set("Authorization", "Bearer "+tok)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes[i] = resp.StatusCode
			}
		})
	}
	wg.Wait()
	if ok := slices.Index(codes, 200); ok < 0 || slices.Index(codes[ok+1:], 200) >= 0 {
		t.Errorf("answers %v: want exactly one 200", codes)
	}
	if grew := tr.room.audit.Size() - before; grew != n {
		t.Errorf("%d queries left %d entries", n, grew)
	}
}

// TestNonMemberCannotTell: for a principal whose partner is not a member,
// an existing collaboration and a missing one get the very same answer,
// on every collaboration route, and the same audit entry.
func TestNonMemberCannotTell(t *testing.T) {
	t.Parallel()
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	tr.partner("charlie", policy.RolePartner, "")
	tr.partner("ana", policy.RoleAnalyst, "charlie")
	tr.partner("audrey", policy.RoleAuditor, "alpha")
	tr.collab("c1", api.ModeHashed, nil, a, b)
	tr.keys[OperatorID] = tr.op.Key()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	type answer struct {
		status int
		p      api.Problem
		e      audit.Entry
	}
	ask := func(who, method, path, body string) answer {
		t.Helper()
		before := tr.room.audit.Size()
		resp, b := requestAt(t, tr, tr.url, who, method, path, []byte(body))
		if grew := tr.room.audit.Size() - before; grew != 1 {
			t.Fatalf("%s %s: the log grew by %d entries, want 1", method, path, grew)
		}
		out := answer{status: resp.StatusCode, p: *api.ParseProblem(resp.StatusCode, b), e: lastEntry(t, tr.room)}
		out.p.RequestID, out.p.Instance = "", ""
		out.e.Time, out.e.RequestID, out.e.Salt = time.Time{}, "", "" // the request's own
		return out
	}
	for _, who := range []string{"charlie", "ana", OperatorID} {
		for _, rt := range []struct{ method, path, body string }{
			{"GET", "/v1/collaborations/%s", ""},
			{"POST", "/v1/collaborations/%s/accept", `{"settings_digest":"00"}`},
			{"POST", "/v1/collaborations/%s/revoke", ""},
			{"PUT", "/v1/collaborations/%s/secrets/alpha", `{"sealed":"AAAA"}`},
			{"GET", "/v1/collaborations/%s/secret", ""},
			{"POST", "/v1/collaborations/%s/uploads", `{"kind":"email","profile":"pair-v1","rows":1000,"rows_per_part":1000}`},
			{"GET", "/v1/collaborations/%s/uploads/up-1", ""},
			{"PUT", "/v1/collaborations/%s/uploads/up-1/parts/0", ""},
			{"POST", "/v1/collaborations/%s/uploads/up-1/commit", `{"digest":"00"}`},
			{"GET", "/v1/collaborations/%s/tasks", ""},
			{"GET", "/v1/collaborations/%s/tasks/t/parts/0", ""},
			{"PUT", "/v1/collaborations/%s/tasks/t/parts/0", ""},
			{"POST", "/v1/collaborations/%s/match", ""},
			{"POST", "/v1/collaborations/%s/queries", `{"version":"` + api.QueryVersion + `","metrics":[{"kind":"count"}],"epsilon":0.1}`},
			{"GET", "/v1/collaborations/%s/budget", ""},
			{"POST", "/v1/collaborations/%s/policy", "package collaboration"},
			{"POST", "/v1/collaborations/%s/policy/00/approve", ""},
		} {
			exists := ask(who, rt.method, fmt.Sprintf(rt.path, "c1"), rt.body)
			missing := ask(who, rt.method, fmt.Sprintf(rt.path, "c9"), rt.body)
			if exists.status != http.StatusForbidden || exists.p.Type != api.ProblemDenied {
				t.Errorf("%s %s %s: %d %+v", who, rt.method, rt.path, exists.status, exists.p)
			}
			missing.e.Collaboration = exists.e.Collaboration // the path's, as sent
			if fmt.Sprintf("%+v", exists) != fmt.Sprintf("%+v", missing) {
				t.Errorf("%s %s %s tells them apart:\n exists  %+v\n missing %+v", who, rt.method, rt.path, exists, missing)
			}
		}
	}
	// What policy allows a member's principals stays allowed.
	au := tr.partner("audrey2", policy.RoleAuditor, "bravo")
	if _, err := au.Collaboration(ctx, "c1"); err != nil {
		t.Errorf("an auditor of a member reading the collaboration: %v", err)
	}
	if _, err := au.Budget(ctx, "c1"); err != nil {
		t.Errorf("an auditor of a member reading the budget: %v", err)
	}
	if _, err := a.Collaboration(ctx, "c1"); err != nil {
		t.Errorf("a member reading: %v", err)
	}
}

// TestPanicAudited: a handler's panic is a 500 problem and an audit entry,
// and the room goes on answering.
func TestPanicAudited(t *testing.T) {
	t.Parallel()
	tr := startRoom(t)
	tr.partner("alpha", policy.RolePartner, "")
	panics := func(context.Context, http.ResponseWriter, *http.Request, *actor) (any, error) { panic("boom") }
	mux := http.NewServeMux()
	mux.Handle("GET /v1/panic", tr.room.wrap(route{pattern: "GET /v1/panic", action: "room.read", fn: panics}))
	mux.Handle("GET /v1/unnamed", tr.room.wrap(route{pattern: "GET /v1/unnamed", fn: panics}))
	mux.Handle("GET /v1/midway", tr.room.wrap(route{pattern: "GET /v1/midway", action: "room.read",
		fn: func(_ context.Context, w http.ResponseWriter, _ *http.Request, _ *actor) (any, error) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "partial")
			panic("boom")
		}}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for path, action := range map[string]string{"/v1/panic": "room.read", "/v1/unnamed": "request", "/v1/midway": "room.read"} {
		before := tr.room.audit.Size()
		tok, err := api.SignRequestToken(tr.keys["alpha"].SigningKey(), "alpha", tr.room.Info().ID, randID(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		// A fresh connection each: the transport would retry a GET cut
		// short on a reused one (and its token would be a replay).
		resp, err := (&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		switch p := api.ParseProblem(500, body); {
		case path == "/v1/midway":
			// Started before the panic: the answer is cut short, neither
			// completed nor followed by a problem.
			if err == nil || strings.Contains(string(body), "internal") {
				t.Errorf("%s: answered %q, %v: want a cut connection", path, body, err)
			}
		case err != nil || resp.StatusCode != 500 || p.Type != api.ProblemInternal || strings.Contains(string(body), "boom"):
			t.Errorf("%s: panic answered %s, %v", path, body, err)
		}
		if grew := tr.room.audit.Size() - before; grew != 1 {
			t.Fatalf("%s: the log grew by %d entries, want 1", path, grew)
		}
		if e := lastEntry(t, tr.room); e.Action != action || e.Decision.Reasons[0] != reasonPanic {
			t.Errorf("%s: entry %+v", path, e)
		}
	}
	if resp, _ := requestAt(t, tr, tr.url, "alpha", "GET", "/v1/collaborations/c1", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("after the panic: %d", resp.StatusCode)
	}
}

// requestAt sends an authenticated request to the server at base.
func requestAt(t *testing.T, tr *testRoom, base, who, method, path string, body []byte) (*http.Response, []byte) {
	t.Helper()
	resp, b := signedRequest(t, tr, base, who, who, time.Now(), method, path, body, nil)
	if resp == nil {
		t.Fatalf("%s %s: the request could not be sent", method, path)
	}
	return resp, b
}

// signedRequest sends a request to the server at base with a token signer
// signed at at, naming iss as its issuer, and the headers hdr; it returns
// the answer and its body, or a nil answer if the request could not be
// made or sent (a path no URL parses, say).
func signedRequest(t *testing.T, tr *testRoom, base, signer, iss string, at time.Time, method, path string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	tok, err := api.SignRequestToken(tr.keys[signer].SigningKey(), iss, tr.room.Info().ID, randID(), at)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}
