package cleanroom

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestDeadlines: a request runs under its route's deadline and stops when
// its client goes away; one still running at its deadline is answered 503
// then, not when it finishes, and the answer is audited.
func TestDeadlines(t *testing.T) {
	t.Parallel()
	tr := startRoom(t)
	tr.partner("alpha", policy.RolePartner, "")
	ended := make(chan error, 1)
	mux := http.NewServeMux()
	for _, rt := range []route{
		{pattern: "GET /v1/honours", action: "room.read", deadline: time.Second,
			fn: func(ctx context.Context, _ http.ResponseWriter, _ *http.Request, _ *actor) (any, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			}},
		{pattern: "GET /v1/ignores", action: "room.read", deadline: time.Second,
			fn: func(context.Context, http.ResponseWriter, *http.Request, *actor) (any, error) {
				time.Sleep(6 * time.Second)
				return ok(), nil
			}},
		{pattern: "GET /v1/waits", action: "room.read", deadline: time.Minute,
			fn: func(ctx context.Context, _ http.ResponseWriter, _ *http.Request, _ *actor) (any, error) {
				<-ctx.Done()
				ended <- ctx.Err()
				return nil, ctx.Err()
			}},
		{pattern: "GET /v1/quick", action: "room.read", deadline: time.Minute,
			fn: func(context.Context, http.ResponseWriter, *http.Request, *actor) (any, error) { return ok(), nil }},
	} {
		mux.Handle(rt.pattern, tr.room.wrap(rt))
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// waitEntry waits for the log to grow past n and returns the entry.
	waitEntry := func(n int64) []string {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if tr.room.audit.Size() > n {
				return entryAt(t, tr.room, n).Decision.Reasons
			}
		}
		t.Fatal("no audit entry")
		return nil
	}
	for _, tc := range []struct {
		path   string
		status int
		within time.Duration
		reason string
	}{
		// Within a few seconds of the deadline (the room may be loaded),
		// well before the 6 s the second handler takes.
		{"/v1/honours", http.StatusServiceUnavailable, 4 * time.Second, reasonDeadline},
		{"/v1/ignores", http.StatusServiceUnavailable, 4 * time.Second, reasonDeadline},
		{"/v1/quick", http.StatusOK, time.Minute, ""},
	} {
		before := tr.room.audit.Size()
		start := time.Now()
		resp, body := requestAt(t, tr, srv.URL, "alpha", "GET", tc.path, nil)
		took := time.Since(start)
		if resp.StatusCode != tc.status || took > tc.within || (tc.status == http.StatusServiceUnavailable && took < time.Second) {
			t.Errorf("%s: %d after %v, want %d within %v: %s", tc.path, resp.StatusCode, took, tc.status, tc.within, body)
		}
		if tc.status == http.StatusServiceUnavailable {
			if p := api.ParseProblem(resp.StatusCode, body); p.Type != api.ProblemUnavailable || p.RequestID != resp.Header.Get("X-Request-Id") {
				t.Errorf("%s: problem %+v", tc.path, p)
			}
		}
		if tc.reason != "" {
			if got := waitEntry(before); !slices.Equal(got, []string{tc.reason}) {
				t.Errorf("%s: recorded %q", tc.path, got)
			}
		}
	}

	// A client that goes away ends the request's context.
	tok, err := api.SignRequestToken(tr.keys["alpha"].SigningKey(), "alpha", tr.room.Info().ID, randID(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	before := tr.room.audit.Size()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/waits", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the request was answered: %d", resp.StatusCode)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the handler's context ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's context did not end when the client went away")
	}
	if got := waitEntry(before); !slices.Equal(got, []string{reasonCanceled}) {
		t.Errorf("recorded %q", got)
	}
}

// TestRoutesDeclared: every route has a deadline of its kind, and every
// authenticated one an action the policy knows, to record its refusals.
func TestRoutesDeclared(t *testing.T) {
	t.Parallel()
	tr := startRoom(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	long := []string{"POST /v1/collaborations/{id}/uploads/{upload}/commit", "POST /v1/collaborations/{id}/match", "GET /v1/audit/export"}
	for _, rt := range tr.room.routes() {
		switch {
		case rt.deadline <= 0:
			t.Errorf("%s: no deadline", rt.pattern)
		case slices.Contains(long, rt.pattern) && rt.deadline < 10*time.Minute:
			t.Errorf("%s: deadline %v for a whole dataset", rt.pattern, rt.deadline)
		case rt.pattern[:4] == "GET " && !slices.Contains(long, rt.pattern) && rt.deadline > deadlineTransfer:
			t.Errorf("%s: deadline %v for a read", rt.pattern, rt.deadline)
		}
		if rt.public {
			continue
		}
		d := tr.room.policy.Decide(ctx, policy.Input{Principal: policy.Principal{ID: "x", Role: policy.RolePartner, Partner: "x"}, Action: rt.action})
		if slices.Contains(d.Reasons, "this action is not one the room's policy knows") {
			t.Errorf("%s: action %q unknown to the policy", rt.pattern, rt.action)
		}
	}
}
