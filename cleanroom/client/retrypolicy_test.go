package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestBackoff: each wait is in the upper half of Backoff·2^(n-1), capped
// at MaxBackoff, and the defaults fill a zero policy.
func TestBackoff(t *testing.T) {
	p := RetryPolicy{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}.withDefaults()
	if p.Attempts != defaultAttempts {
		t.Fatalf("attempts %d", p.Attempts)
	}
	for n, full := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 40: time.Second} {
		for range 200 {
			if d := p.backoff(n); d < full/2 || d > full {
				t.Fatalf("wait after try %d = %s, want %s to %s", n, d, full/2, full)
			}
		}
	}
	if z := (RetryPolicy{}).withDefaults(); z != (RetryPolicy{Attempts: defaultAttempts, Backoff: defaultBackoff, MaxBackoff: defaultMaxBackoff}) {
		t.Fatalf("defaults %+v", z)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"30", 30 * time.Second, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	} {
		if d, ok := retryAfter(tc.h, now); d != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %s, %v; want %s, %v", tc.h, d, ok, tc.want, tc.ok)
		}
	}
}

// TestTransient: which failures of a part upload are tried again.
func TestTransient(t *testing.T) {
	problem := func(status int) error { return &api.Problem{Title: "x", Status: status} }
	lost := &transportError{&url.Error{Op: "Put", URL: "http://room", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}}
	for _, tc := range []struct {
		err  error
		ok   bool
		wait time.Duration
		said bool
	}{
		{lost, true, 0, false},
		{&transportError{io.ErrUnexpectedEOF}, true, 0, false},
		{fmt.Errorf("sending part 3: %w", problem(http.StatusServiceUnavailable)), true, 0, false},
		{problem(http.StatusTooManyRequests), true, 0, false},
		{problem(http.StatusBadGateway), true, 0, false},
		{problem(http.StatusGatewayTimeout), true, 0, false},
		{&waitError{problem(http.StatusServiceUnavailable).(*api.Problem), 2 * time.Second}, true, 2 * time.Second, true},
		{problem(http.StatusBadRequest), false, 0, false},
		{problem(http.StatusForbidden), false, 0, false},
		{problem(http.StatusConflict), false, 0, false},
		{problem(http.StatusRequestEntityTooLarge), false, 0, false},
		{problem(http.StatusUnprocessableEntity), false, 0, false},
		{problem(http.StatusInternalServerError), false, 0, false},
		{context.Canceled, false, 0, false},
		{errors.New("json: cannot unmarshal"), false, 0, false},
	} {
		wait, said, ok := transient(tc.err)
		if ok != tc.ok || wait != tc.wait || said != tc.said {
			t.Errorf("transient(%v) = %s, %v, %v; want %s, %v, %v", tc.err, wait, said, ok, tc.wait, tc.said, tc.ok)
		}
	}
}
