package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// RetryPolicy says how the client tries again a part upload that failed on
// the way. A part upload is the one call it repeats: the room stores a part
// sent again under the same number in place of the first, so the same bytes
// give the same receipt. Starting and committing an upload, and every other
// call, are made once.
//
// A try is repeated only when it failed transiently: the request or its
// answer was lost (a connection refused, reset or timed out), or the room
// answered 429, 502, 503 or 504. A refusal (any other status: 400, 401, 403,
// 409, 413, 422...) is final. Between tries the client waits what the
// room's Retry-After said, or else an exponential backoff with jitter; it
// stops waiting when ctx ends. It never tries sooner than the room said: a
// Retry-After longer than MaxBackoff ends the retries, with the room's
// answer as the error.
//
// The zero value is the defaults.
type RetryPolicy struct {
	// Attempts bounds the tries of one part, the first included (default
	// 5; 1 tries once).
	Attempts int
	// Backoff is the wait before the second try (default 500 ms); each
	// later wait doubles, up to MaxBackoff (default 30 s). Each wait is
	// drawn at random from its upper half, so that senders that failed
	// together do not come back together.
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// Retry defaults: five tries of a part span about 7.5 s of backoff at
// most, enough for a room restarting or a proxy reconnecting, and short
// enough that a partner is not left waiting on a room that is down.
const (
	defaultAttempts   = 5
	defaultBackoff    = 500 * time.Millisecond
	defaultMaxBackoff = 30 * time.Second
)

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = defaultAttempts
	}
	if p.Backoff <= 0 {
		p.Backoff = defaultBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = defaultMaxBackoff
	}
	p.MaxBackoff = max(p.MaxBackoff, p.Backoff)
	return p
}

// backoff is the wait after the failed try number attempt (from 1):
// Backoff·2^(attempt-1), capped at MaxBackoff, drawn from its upper half.
func (p RetryPolicy) backoff(attempt int) time.Duration {
	d := p.MaxBackoff
	if shift := attempt - 1; shift < 32 && p.Backoff<<shift < p.MaxBackoff {
		d = p.Backoff << shift
	}
	return d/2 + rand.N(d/2+1)
}

// run calls try until it succeeds, fails for good, or has been made
// p.Attempts times; it returns try's last error, or ctx's cause if ctx
// ended while it waited.
func (p RetryPolicy) run(ctx context.Context, try func() error) error {
	for attempt := 1; ; attempt++ {
		err := try()
		if err == nil || attempt >= p.Attempts || ctx.Err() != nil {
			return err
		}
		wait, said, ok := transient(err)
		if !ok || said && wait > p.MaxBackoff {
			return err
		}
		if !said {
			wait = p.backoff(attempt)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// transient reports whether err, of one try of an idempotent call, may
// pass on another try (ok), and how long the room asked to wait first, if
// it said (said).
func transient(err error) (wait time.Duration, said, ok bool) {
	var te *transportError
	if errors.As(err, &te) {
		var cv *tls.CertificateVerificationError
		return 0, false, !errors.As(err, &cv) // a certificate does not fix itself
	}
	var p *api.Problem
	if !errors.As(err, &p) {
		return 0, false, false
	}
	switch p.Status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
	default:
		return 0, false, false
	}
	var w *waitError
	if errors.As(err, &w) {
		return w.after, true, true
	}
	return 0, false, true
}

// ErrUnreachable matches (errors.Is) a request, or its answer, lost on the
// way to or from the room, after the client's retries: the room may or may
// not have acted on it.
var ErrUnreachable = errors.New("client: the room could not be reached, or its answer was lost")

// transportError is a request, or its answer, lost on the way: the room
// may or may not have acted on it.
type transportError struct{ err error }

func (e *transportError) Error() string        { return e.err.Error() }
func (e *transportError) Unwrap() error        { return e.err }
func (e *transportError) Is(target error) bool { return target == ErrUnreachable }

// bodyReader remembers the first error of reading an answer, so that a
// connection lost mid-answer is told apart from an answer that does not
// decode.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// waitError is a refusal whose answer said, in Retry-After, when to try
// again.
type waitError struct {
	p     *api.Problem
	after time.Duration
}

func (e *waitError) Error() string { return e.p.Error() }
func (e *waitError) Unwrap() error { return e.p }

// refusal is the error of an answer with a status of 300 or more: its
// problem document, with the Retry-After it carried.
func refusal(resp *http.Response, now time.Time) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	p := api.ParseProblem(resp.StatusCode, b)
	if d, ok := retryAfter(resp.Header.Get("Retry-After"), now); ok {
		return &waitError{p: p, after: d}
	}
	if resp.StatusCode == http.StatusUnauthorized {
		// A token the room refuses for its times looks like any other
		// refused token; the room's Date says whether the clocks differ.
		if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			if skew := t.Sub(now); skew > api.MaxClockSkew || skew < -api.MaxClockSkew {
				return &ClockSkewError{Skew: skew.Round(time.Second), Problem: p}
			}
		}
	}
	return p
}

// ClockSkewError is a refused token (401) from a room whose clock, by its
// answer's Date, is off this machine's by more than api.MaxClockSkew:
// tokens are checked against the room's clock. It unwraps to the room's
// problem.
type ClockSkewError struct {
	Skew    time.Duration // the room's clock minus this machine's
	Problem *api.Problem
}

func (e *ClockSkewError) Error() string {
	ahead := "ahead of"
	if e.Skew < 0 {
		ahead = "behind"
	}
	return fmt.Sprintf("%v (the room's clock is %v %s this machine's)", e.Problem, e.Skew.Abs(), ahead)
}

func (e *ClockSkewError) Unwrap() error { return e.Problem }

// retryAfter parses a Retry-After header (RFC 9110 §10.2.3): a number of
// seconds, or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(h, 10, 32); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
