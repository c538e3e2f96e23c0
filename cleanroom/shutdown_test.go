package cleanroom

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestShutdownAnswersInFlight: a room told to stop logs why, lets a quick
// request finish, and answers one still running at the end of its grace
// with a 503 problem (not a cut connection), and cancels it.
func TestShutdownAnswersInFlight(t *testing.T) {
	tr := startRoom(t)
	tr.partner("alpha", policy.RolePartner, "")
	var logs bytes.Buffer
	tr.room.log = slog.New(slog.NewTextHandler(&logs, nil))
	started, canceled := make(chan struct{}, 2), make(chan error, 1)
	mux := http.NewServeMux()
	for _, rt := range []route{
		{pattern: "GET /v1/slow", action: "room.read", deadline: time.Minute,
			fn: func(ctx context.Context, _ http.ResponseWriter, _ *http.Request, _ *actor) (any, error) {
				started <- struct{}{}
				<-ctx.Done()
				canceled <- context.Cause(ctx)
				time.Sleep(100 * time.Millisecond) // a handler slow to notice
				return ok(), nil
			}},
		{pattern: "GET /v1/finishes", action: "room.read", deadline: time.Minute,
			fn: func(context.Context, http.ResponseWriter, *http.Request, *actor) (any, error) {
				started <- struct{}{}
				time.Sleep(200 * time.Millisecond)
				return ok(), nil
			}},
	} {
		mux.Handle(rt.pattern, tr.room.wrap(rt))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ctx, stop := context.WithCancelCause(context.Background())
	served := make(chan error, 1)
	go func() { served <- tr.room.serve(ctx, ln, mux, 500*time.Millisecond) }()

	type answer struct {
		status int
		body   string
	}
	ask := func(path string) chan answer {
		out := make(chan answer, 1)
		go func() {
			resp, body := requestAt(t, tr, url, "alpha", "GET", path, nil)
			out <- answer{resp.StatusCode, string(body)}
		}()
		return out
	}
	slow, quick := ask("/v1/slow"), ask("/v1/finishes")
	<-started
	<-started
	stop(errors.New("terminated signal received"))
	if a := <-quick; a.status != http.StatusOK {
		t.Errorf("a request that finishes within the grace: %d %s", a.status, a.body)
	}
	select {
	case a := <-slow:
		p := api.ParseProblem(a.status, []byte(a.body))
		if a.status != http.StatusServiceUnavailable || p.Type != api.ProblemUnavailable || !strings.Contains(p.Title, "shutting down") {
			t.Errorf("a request still running at the end of the grace: %d %s", a.status, a.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to the request still running")
	}
	if cause := <-canceled; !errors.Is(cause, errShutdown) {
		t.Errorf("the handler's context ended with %v", cause)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	for _, want := range []string{"room shutting down", "terminated signal received", "answered 503", "room stopped serving"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log has no %q:\n%s", want, logs.String())
		}
	}
}
