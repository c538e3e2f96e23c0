package client_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// fastRetries keeps the tests' backoff short.
var fastRetries = client.RetryPolicy{Attempts: 4, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}

// TestPartUploadRetries: parts whose first tries are lost on the way (the
// connection dropped before the room saw the part, or after it stored it)
// or answered 429, 502, 503 or 504 are tried again, and the upload ends as
// the same upload without faults does: same rows, parts and digest, in the
// room too. Starting and committing the upload are made once.
func TestPartUploadRetries(t *testing.T) {
	rm := startRoom(t)
	faults := map[int][]fault{
		0: {{status: http.StatusServiceUnavailable}, {status: http.StatusServiceUnavailable}},
		1: {{drop: true}},
		2: {{drop: true, forward: true}, {drop: true, forward: true}},
		3: {{status: http.StatusTooManyRequests, retryAfter: "0"}},
		4: {{status: http.StatusBadGateway}, {status: http.StatusGatewayTimeout}},
	}
	proxy := newFaultProxy(t, rm.url, func(_ *http.Request, part, try int) fault {
		if f := faults[part]; part >= 0 && try <= len(f) {
			return f[try-1]
		}
		return fault{}
	})
	a, _ := rm.partnerVia("alpha", proxy.srv.URL, client.Options{Retry: fastRetries})
	b := rm.partner("bravo", nil)
	sa, sb := rm.collab("c1", api.ModeHashed, nil, a, b)
	list := writeCSV(t, peopleHeader, people(0, minList+50))
	spec := client.UploadSpec{Collab: "c1", Input: list, IDColumn: "email", Kind: crypto.KindEmail,
		Columns: []string{"age_band"}, RowsPerPart: 50}
	ctx := context.Background()

	// Hashed tokens are the collaboration's, not the member's: the same
	// list uploaded by bravo, without faults, is what alpha's must be.
	want, err := b.UploadCSV(ctx, with(spec, func(s *client.UploadSpec) { s.State = sb }))
	if err != nil {
		t.Fatal(err)
	}
	proxy.reset()
	got, err := a.UploadCSV(ctx, with(spec, func(s *client.UploadSpec) { s.State = sa }))
	if err != nil {
		t.Fatal(err)
	}
	if got.Rows != want.Rows || got.Parts != want.Parts || got.Digest != want.Digest || got.Skipped != 0 || got.Resumed != 0 {
		t.Fatalf("with faults %+v, without %+v", got, want)
	}
	wantTries := map[int]int{0: 3, 1: 2, 2: 3, 3: 2, 4: 3}
	if tries := proxy.triesOf(); !maps.Equal(tries, wantTries) {
		t.Fatalf("tries per part %v, want %v", tries, wantTries)
	}
	if n, m := proxy.count("POST /v1/collaborations/c1/uploads"), proxy.count("POST /v1/collaborations/c1/uploads/*/commit"); n != 1 || m != 1 {
		t.Fatalf("upload started %d times, committed %d times", n, m)
	}
	v, err := b.Collaboration(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if d := v.Datasets["alpha"]; d == nil || d.Digest != want.Digest || d.Rows != want.Rows {
		t.Fatalf("the room holds %+v for alpha, want digest and rows %+v", d, want)
	}
}

// TestPartUploadFailsForGood: a refusal is not tried again; transient
// failures are, up to the policy's attempts; a Retry-After is waited for,
// or, longer than the policy's longest wait, ends the tries; and ctx ends
// a wait.
func TestPartUploadFailsForGood(t *testing.T) {
	rm := startRoom(t)
	// The rule is swapped between uploads, while the proxy serves on its
	// own goroutines.
	var rule atomic.Pointer[func(part, try int) fault]
	setRule := func(f func(part, try int) fault) { rule.Store(&f) }
	setRule(func(int, int) fault { return fault{} })
	proxy := newFaultProxy(t, rm.url, func(_ *http.Request, part, try int) fault { return (*rule.Load())(part, try) })
	a, key := rm.partnerVia("alpha", proxy.srv.URL, client.Options{Retry: fastRetries})
	b := rm.partner("bravo", nil)
	state, _ := rm.collab("c1", api.ModeHashed, nil, a, b)
	spec := client.UploadSpec{Collab: "c1", Input: writeCSV(t, peopleHeader, people(0, minList+50)), IDColumn: "email",
		Kind: crypto.KindEmail, Columns: []string{"age_band"}, RowsPerPart: 50, State: state}
	// always answers part 1 with status on every try.
	always := func(status int, retryAfter string) func(part, try int) fault {
		return func(part, _ int) fault {
			if part == 1 {
				return fault{status: status, retryAfter: retryAfter}
			}
			return fault{}
		}
	}

	for _, tc := range []struct {
		name  string
		rule  func(part, try int) fault
		tries int // of part 1
	}{
		{"400 bad request", always(http.StatusBadRequest, ""), 1},
		{"401 unauthenticated", always(http.StatusUnauthorized, ""), 1},
		{"403 denied", always(http.StatusForbidden, ""), 1},
		{"409 conflict", always(http.StatusConflict, ""), 1},
		{"413 too large", always(http.StatusRequestEntityTooLarge, ""), 1},
		{"422 invalid data", always(http.StatusUnprocessableEntity, ""), 1},
		{"500 internal error", always(http.StatusInternalServerError, ""), 1},
		{"503 on every try", always(http.StatusServiceUnavailable, ""), fastRetries.Attempts},
		{"503 retry after an hour", always(http.StatusServiceUnavailable, "3600"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(uploadFile(state, "c1")) // a new upload each time
			setRule(tc.rule)
			proxy.reset()
			rep, err := a.UploadCSV(context.Background(), spec)
			var p *api.Problem
			if rep != nil || !errors.As(err, &p) || p.Title == "" {
				t.Fatalf("UploadCSV = %+v, %v; want the proxy's problem", rep, err)
			}
			if got := proxy.triesOf()[1]; got != tc.tries {
				t.Fatalf("part 1 tried %d times, want %d", got, tc.tries)
			}
		})
	}

	t.Run("Retry-After is waited for", func(t *testing.T) {
		os.Remove(uploadFile(state, "c1"))
		setRule(func(part, try int) fault {
			if part == 0 && try == 1 {
				return fault{status: http.StatusServiceUnavailable, retryAfter: "1"}
			}
			return fault{}
		})
		proxy.reset()
		patient, err := client.New(context.Background(), proxy.srv.URL, key, client.Options{Retry: client.RetryPolicy{Backoff: time.Millisecond, MaxBackoff: 2 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := patient.UploadCSV(context.Background(), spec); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < time.Second {
			t.Fatalf("the upload took %s: it did not wait the second the room asked for", d)
		}
		if got := proxy.triesOf()[0]; got != 2 {
			t.Fatalf("part 0 tried %d times", got)
		}
	})

	t.Run("ctx ends a wait", func(t *testing.T) {
		os.Remove(uploadFile(state, "c1"))
		slow, err := client.New(context.Background(), proxy.srv.URL, key, client.Options{Retry: client.RetryPolicy{Backoff: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		setRule(always(http.StatusServiceUnavailable, ""))
		proxy.reset()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		rep, err := slow.UploadCSV(ctx, spec)
		if rep != nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("UploadCSV = %+v, %v; want the deadline", rep, err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("the upload ended %s after its deadline", d)
		}
		if got := proxy.triesOf()[1]; got != 1 {
			t.Fatalf("part 1 tried %d times", got)
		}
	})
}
