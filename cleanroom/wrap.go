package cleanroom

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4/y"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// How long a request may run, by kind of route. The handler's context ends
// then (and when the client goes away), so whatever honours it stops; a
// request still running at its deadline is answered 503 if nothing was
// written yet, and its late answer is dropped.
const (
	deadlineRead     = 30 * time.Second // reads of the room's records
	deadlineWrite    = time.Minute      // small changes, and routes that name none
	deadlineQuery    = 2 * time.Minute  // an aggregate query over the join
	deadlineTransfer = 5 * time.Minute  // one upload or relay part: the server's read timeout
	deadlineLong     = 30 * time.Minute // whole datasets: commits (difference, shuffle), matches, exports
)

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// deadlineProblem answers a request still running at its deadline.
var deadlineProblem = api.Problem{
	Type: api.ProblemUnavailable, Status: http.StatusServiceUnavailable,
	Title: "the request did not finish within its deadline; it may still take effect, so check before retrying",
}

// shutdownProblem answers a request still running when the room's grace
// period for shutting down ends.
var shutdownProblem = api.Problem{
	Type: api.ProblemUnavailable, Status: http.StatusServiceUnavailable,
	Title: "the room is shutting down and this request did not finish in time; it may still take effect, so check before retrying",
}

// inflight is a request being served, as shutdown sees it.
type inflight struct {
	sw     *statusWriter
	req    *http.Request
	id     string
	cancel context.CancelCauseFunc
}

// errShutdown is the cause of a request's context when the room cut it
// short at the end of its shutdown grace.
var errShutdown = errors.New("cleanroom: the room shut down")

// cutInFlight answers every request still being served 503 (if nothing was
// answered yet) and cancels it; it returns how many there were.
func (r *Room) cutInFlight() int {
	n := 0
	r.inflight.Range(func(_, v any) bool {
		f := v.(*inflight)
		f.sw.expire(f.req, f.id, shutdownProblem, func() { f.cancel(errShutdown) })
		n++
		return true
	})
	return n
}

// wrap serves a route: request id, body limit, deadline, authentication,
// the handler, its answer, and the audit entry of any error the handler's
// own decisions did not record (refusal.go). A panic is answered 500 and
// recorded; it never ends the process.
func (r *Room) wrap(rt route) http.Handler {
	deadline := rt.deadline
	if deadline <= 0 {
		deadline = deadlineWrite
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.serveRoute(rt, deadline, w, req) })
}

func (r *Room) serveRoute(rt route, deadline time.Duration, w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	id := req.Header.Get("X-Request-Id")
	if !api.ValidRequestID(id) {
		id = newRequestID()
	}
	w.Header().Set("X-Request-Id", id)
	// The clock tokens are checked against: a client whose token is
	// refused tells its user when its own clock is off this one.
	w.Header().Set("Date", r.now().UTC().Format(http.TimeFormat))
	// Every answer is the caller's alone and of the type it says: no cache
	// keeps it, and no browser reads it as another type.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if deadline > writeTimeout {
		// The server's write timeout would cut the answer off first.
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(deadline + 10*time.Second))
	}
	parent := req.Context()
	if rt.detached {
		parent = context.WithoutCancel(parent)
	}
	ctx, cancel := context.WithTimeout(parent, deadline)
	defer cancel()
	ctx, cut := context.WithCancelCause(ctx)
	defer cut(nil)
	req = req.WithContext(ctx)
	sw := &statusWriter{w: w, h: http.Header{}, status: http.StatusOK}
	stopWatch := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			sw.expire(req, id, deadlineProblem, nil)
		}
	})
	self := &inflight{sw: sw, req: req, id: id, cancel: cut}
	r.inflight.Store(self, self)
	defer r.inflight.Delete(self)
	var who *actor
	defer func() {
		stopWatch()
		defer r.releaseJTI(who)
		r.finishRequest(rt, req, sw, id, who, start, recover())
	}()
	req.Body = http.MaxBytesReader(sw, req.Body, max(rt.body, 0))
	if !rt.public {
		var ok bool
		if who, ok = r.admit(ctx, sw, req, id, rt); !ok {
			return
		}
	}
	v, err := rt.fn(ctx, sw, req, who)
	if err != nil {
		err = r.retiredMeanwhile(req, who, err)
		p, reason := r.problemFor(ctx, id, err)
		r.answer(sw, req, id, rt, who, p, reason)
		return
	}
	r.writeValue(sw, rt, id, v)
}

// admit authenticates a request, unless a disk too full to write on
// refuses it first: below the critical mark without recording it (it
// cannot), below the low mark every change, recorded. If it is refused,
// admit has answered it.
func (r *Room) admit(ctx context.Context, sw *statusWriter, req *http.Request, id string, rt route) (*actor, bool) {
	full, level := r.disk.diskRefusal(req.Method)
	if full != nil {
		r.metrics.storageRefusals.Inc()
		sw.Header().Set("Retry-After", "30")
	}
	if level == diskCritical {
		writeProblem(sw, req, id, full)
		return nil, false
	}
	who, err := r.authenticate(ctx, sw, req, id)
	if err != nil {
		p, _ := r.problemFor(ctx, id, err)
		writeProblem(sw, req, id, p)
		return nil, false
	}
	if full != nil {
		r.answer(sw, req, id, rt, who, full, refusalReasons[api.ProblemStorage])
		return who, false
	}
	return who, true
}

// writeValue writes what a handler returned.
func (r *Room) writeValue(sw *statusWriter, rt route, id string, v any) {
	switch v := v.(type) {
	case []byte:
		sw.Header().Set("Content-Type", "application/octet-stream")
		sw.Header().Set("Content-Length", strconv.Itoa(len(v)))
		sw.Write(v)
	case rawBody:
		if err := v.fn(sw); err != nil {
			r.log.Error("streaming a response failed", "route", rt.pattern, "request_id", id, "err", err)
		}
	case encodedJSON:
		sw.Header().Set("Content-Type", "application/json")
		sw.Header().Set("Content-Length", strconv.Itoa(len(v)))
		sw.Write(v)
	case statusBody:
		writeJSON(sw, v.status, v.v)
	default:
		writeJSON(sw, http.StatusOK, v)
	}
}

// finishRequest ends a request: a panic (p) answered 500 and recorded, a
// request answered 503 at its deadline recorded, its metrics and log line.
func (r *Room) finishRequest(rt route, req *http.Request, sw *statusWriter, id string, who *actor, start time.Time, p any) {
	cutShort := false
	if p != nil {
		r.log.Error("handler panic", "route", rt.pattern, "request_id", id, "panic", fmt.Sprint(p))
		cutShort = sw.started()
		r.answer(sw, req, id, rt, who, &api.Problem{Type: api.ProblemInternal, Title: "internal error", Status: http.StatusInternalServerError}, reasonPanic)
	}
	if sw.expired() && who != nil && !who.recorded.Load() {
		// Answered 503 at the deadline; the handler, finishing later,
		// recorded nothing of its own.
		if err := r.recordRefusal(req.Context(), who, rt, req, reasonDeadline); err != nil {
			r.log.Error("recording a request past its deadline", "route", rt.pattern, "request_id", id, "err", err)
		}
	}
	status := sw.finish()
	d := time.Since(start)
	r.metrics.requests.WithLabelValues(rt.pattern, strconv.Itoa(status)).Inc()
	r.metrics.duration.WithLabelValues(rt.pattern).Observe(d.Seconds())
	r.log.Info("request", "route", rt.pattern, "status", status, "duration_ms", d.Milliseconds(), "request_id", id)
	if cutShort {
		// An answer started before the panic must not look complete: the
		// server aborts the connection.
		panic(http.ErrAbortHandler)
	}
}

// answer records the refusal of who's request with reason, unless an entry
// already recorded it, and writes p if no answer was started (a panic may
// come mid-answer); if the log cannot record it, the answer is the log's 503.
func (r *Room) answer(w *statusWriter, req *http.Request, id string, rt route, who *actor, p *api.Problem, reason string) {
	// Stored data that failed its check is recorded even after the
	// request's own entry: the log is where the operator and auditors learn
	// that the room refused to use damaged state.
	if who != nil && (!who.recorded.Load() || p.Type == api.ProblemCorrupt) {
		if err := r.recordRefusal(req.Context(), who, rt, req, reason); err != nil {
			errors.As(err, &p)
		}
	}
	if !w.started() {
		writeProblem(w, req, id, p)
	}
}

// problemFor returns the problem that answers err and the fixed reason the
// audit log records for it. Errors that are not problems are the room's own
// failures: logged, and answered without detail.
func (r *Room) problemFor(ctx context.Context, id string, err error) (*api.Problem, string) {
	var p *api.Problem
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &p):
	case errors.As(err, &mb):
		p = &api.Problem{Type: api.ProblemTooLarge, Title: "the request body is larger than this endpoint accepts", Status: http.StatusRequestEntityTooLarge}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		dp := deadlineProblem
		return &dp, reasonDeadline
	case errors.Is(err, context.Canceled):
		p = &api.Problem{Type: api.ProblemBadRequest, Title: "the request was canceled", Status: 499}
	case errors.Is(err, store.ErrSegmentGone):
		// Data deleted while it was read (a dataset replaced during a
		// query or an export): no damage, and the request may be sent again.
		p = conflict("the data was replaced or deleted while it was read; send the request again")
	case errors.Is(err, ErrCorruptState) || errors.Is(err, ErrCorruptSegment) || errors.Is(err, y.ErrChecksumMismatch):
		r.log.Error("stored data failed its integrity check", "request_id", id, "err", err)
		r.metrics.corruptReads.Inc()
		p = &api.Problem{Type: api.ProblemCorrupt, Title: "stored data failed its integrity check; the room refused to use it (the operator runs cleanroom doctor)", Status: http.StatusInternalServerError}
	default:
		r.log.Error("request failed", "request_id", id, "err", err)
		p = &api.Problem{Type: api.ProblemInternal, Title: "internal error", Status: http.StatusInternalServerError}
	}
	return p, refusalReason(err, p)
}

// statusWriter is the ResponseWriter a handler writes to. It keeps the
// handler's headers apart until it writes, so that the deadline's answer
// (expire), written from another goroutine, and the handler's never mix:
// whichever writes first is the answer, and the other's writes are dropped.
type statusWriter struct {
	w http.ResponseWriter
	h http.Header // the handler's, copied to w's when it writes

	mu      sync.Mutex
	status  int
	wrote   bool
	timeout bool // the deadline's answer was written
	closed  bool // the deadline's answer was written, or the request is over
}

func (s *statusWriter) Header() http.Header { return s.h }

func (s *statusWriter) WriteHeader(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && !s.wrote {
		s.writeHeader(code)
	}
}

func (s *statusWriter) writeHeader(code int) {
	maps.Copy(s.w.Header(), s.h)
	s.status, s.wrote = code, true
	s.w.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, http.ErrHandlerTimeout
	}
	if !s.wrote {
		s.writeHeader(http.StatusOK)
	}
	return s.w.Write(b)
}

// expire answers p (a 503) if nothing was written yet, and drops what the
// handler writes from then on. cancel, if not nil, runs first, once the
// handler can no longer answer: the handler sees why it was cut short
// before the client, answered, can close the connection (which would
// cancel the request's context for another reason).
func (s *statusWriter) expire(req *http.Request, id string, p api.Problem, cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cancel == nil {
		cancel = func() {}
	}
	if s.closed || s.wrote {
		cancel()
		return
	}
	s.closed, s.timeout = true, true
	cancel()
	p.RequestID, p.Instance = id, req.URL.Path
	b, _ := json.Marshal(p)
	// A complete answer now, on a connection not to be reused: the
	// handler still holds it until it returns.
	h := s.w.Header()
	h.Set("Content-Type", api.ProblemContentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Connection", "close")
	s.status, s.wrote = p.Status, true
	s.w.WriteHeader(p.Status)
	s.w.Write(b)
	http.NewResponseController(s.w).Flush()
}

// started reports whether an answer was written.
func (s *statusWriter) started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wrote
}

// expired reports whether the deadline's answer was written.
func (s *statusWriter) expired() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.timeout
}

// finish ends the request's writing (a deadline's answer after this would
// write to a finished response) and returns the status answered.
func (s *statusWriter) finish() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return s.status
}

// writeJSON writes v with its length, so that the answer is one body
// rather than chunks the client reassembles.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// An answer that does not encode (a number JSON cannot hold) is
		// the room's error, not an empty success.
		status = http.StatusInternalServerError
		b, _ = json.Marshal(&api.Problem{Type: api.ProblemInternal, Title: "internal error", Status: status})
	}
	b = append(b, '\n') // as json.Encoder ends a value
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func writeProblem(w http.ResponseWriter, req *http.Request, id string, p *api.Problem) {
	out := *p
	out.RequestID = id
	out.Instance = req.URL.Path
	if out.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	w.Header().Set("Content-Type", api.ProblemContentType)
	w.WriteHeader(out.Status)
	json.NewEncoder(w).Encode(out)
}
