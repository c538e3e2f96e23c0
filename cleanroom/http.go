package cleanroom

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// route is one endpoint. Routes lists them all; the OpenAPI document in
// cleanroom/api is checked against it by a test.
type route struct {
	pattern string // method and path, as http.ServeMux takes it
	public  bool   // served without a token
	body    int64  // request body limit
	fn      func(ctx context.Context, w http.ResponseWriter, req *http.Request, who *actor) (any, error)
}

func (r *Room) routes() []route {
	return []route{
		{pattern: "GET /healthz", public: true, fn: r.serveHealth},
		{pattern: "GET /.well-known/jwks.json", public: true, fn: r.serveJWKS},
		{pattern: "GET /v1/room", public: true, fn: func(context.Context, http.ResponseWriter, *http.Request, *actor) (any, error) { return r.Info(), nil }},

		{pattern: "POST /v1/principals", body: api.MaxJSONBody, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			var p api.Principal
			if err := decodeJSON(req, &p); err != nil {
				return nil, err
			}
			return created(p), r.registerPrincipal(ctx, who, p)
		}},
		{pattern: "GET /v1/principals", fn: func(ctx context.Context, _ http.ResponseWriter, _ *http.Request, who *actor) (any, error) {
			return r.principals(ctx, who)
		}},
		{pattern: "POST /v1/collaborations", body: api.MaxJSONBody, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			var c api.CreateCollaboration
			if err := decodeJSON(req, &c); err != nil {
				return nil, err
			}
			v, err := r.createCollaboration(ctx, who, c)
			return created(v), err
		}},
		{pattern: "GET /v1/collaborations/{id}", fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return r.collaboration(ctx, who, req.PathValue("id"))
		}},
		{pattern: "POST /v1/collaborations/{id}/accept", fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return ok(), r.accept(ctx, who, req.PathValue("id"))
		}},
		{pattern: "POST /v1/collaborations/{id}/revoke", fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return ok(), r.revoke(ctx, who, req.PathValue("id"))
		}},
		{pattern: "PUT /v1/collaborations/{id}/secrets/{member}", body: api.MaxJSONBody, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			var s api.SealedSecret
			if err := decodeJSON(req, &s); err != nil {
				return nil, err
			}
			return ok(), r.deliverSecret(ctx, who, req.PathValue("id"), req.PathValue("member"), s.Sealed)
		}},
		{pattern: "GET /v1/collaborations/{id}/secret", fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return r.secret(ctx, who, req.PathValue("id"))
		}},
		{pattern: "POST /v1/collaborations/{id}/uploads", body: api.MaxJSONBody, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			var s api.StartUpload
			if err := decodeJSON(req, &s); err != nil {
				return nil, err
			}
			u, err := r.startUpload(ctx, who, req.PathValue("id"), s)
			return created(u), err
		}},
		{pattern: "GET /v1/collaborations/{id}/uploads/{upload}", fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return r.upload(ctx, who, req.PathValue("id"), req.PathValue("upload"))
		}},
		{pattern: "PUT /v1/collaborations/{id}/uploads/{upload}/parts/{part}", body: api.MaxPartBytes, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			part, err := pathInt(req, "part")
			if err != nil {
				return nil, err
			}
			mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
			return r.putPart(ctx, who, req.PathValue("id"), req.PathValue("upload"), part, mt, req.ContentLength, req.Body)
		}},
		{pattern: "POST /v1/collaborations/{id}/uploads/{upload}/commit", body: api.MaxJSONBody, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			var cu api.CommitUpload
			if err := decodeJSON(req, &cu); err != nil {
				return nil, err
			}
			return r.commitUpload(ctx, who, req.PathValue("id"), req.PathValue("upload"), cu)
		}},
		{pattern: "GET /v1/collaborations/{id}/tasks", fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return r.tasks(ctx, who, req.PathValue("id"))
		}},
		{pattern: "GET /v1/collaborations/{id}/tasks/{task}/parts/{part}", fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			part, err := pathInt(req, "part")
			if err != nil {
				return nil, err
			}
			return r.taskPart(ctx, who, req.PathValue("id"), req.PathValue("task"), part)
		}},
		{pattern: "PUT /v1/collaborations/{id}/tasks/{task}/parts/{part}", body: taskPartSize*api.TokenSize + 1, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			part, err := pathInt(req, "part")
			if err != nil {
				return nil, err
			}
			return ok(), r.putTaskPart(ctx, who, req.PathValue("id"), req.PathValue("task"), part, req.Body)
		}},
		{pattern: "POST /v1/collaborations/{id}/match", fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return r.match(ctx, who, req.PathValue("id"))
		}},
		{pattern: "POST /v1/collaborations/{id}/queries", body: api.MaxJSONBody, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			var q api.QuerySpec
			if err := decodeJSON(req, &q); err != nil {
				return nil, err
			}
			return r.query(ctx, who, req.PathValue("id"), q)
		}},
		{pattern: "GET /v1/collaborations/{id}/digest-key", fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return r.digestKeyFor(ctx, who, req.PathValue("id"))
		}},
		{pattern: "GET /v1/collaborations/{id}/budget", fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return r.budgetInfo(ctx, who, req.PathValue("id"))
		}},
		{pattern: "POST /v1/collaborations/{id}/policy", body: maxModule, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			src, err := io.ReadAll(req.Body)
			if err != nil {
				return nil, err
			}
			h, err := r.proposePolicy(ctx, who, req.PathValue("id"), src)
			return api.PolicyProposal{Hash: h}, err
		}},
		{pattern: "POST /v1/collaborations/{id}/policy/{hash}/approve", fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			active, err := r.approvePolicy(ctx, who, req.PathValue("id"), req.PathValue("hash"))
			return api.PolicyProposal{Hash: req.PathValue("hash"), Active: active}, err
		}},
		{pattern: "GET /v1/audit/checkpoint", fn: r.serveCheckpoint},
		{pattern: "GET /v1/audit/export", fn: r.serveExport},
	}
}

// Handler returns the room's HTTP interface, with /metrics.
func (r *Room) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range r.routes() {
		mux.Handle(rt.pattern, r.wrap(rt))
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.cfg.Registry, promhttp.HandlerOpts{}))
	mux.Handle("/", r.wrap(route{pattern: "unknown", public: true, fn: func(context.Context, http.ResponseWriter, *http.Request, *actor) (any, error) {
		return nil, &api.Problem{Type: api.ProblemNotFound, Title: "no such endpoint", Status: http.StatusNotFound}
	}}))
	return mux
}

// response wrappers a route returns instead of a plain value.
type (
	statusBody struct {
		status int
		v      any
	}
	okBody struct {
		OK bool `json:"ok"`
	}
	rawBody struct{ fn func(w io.Writer) error }
)

func created(v any) any { return statusBody{http.StatusCreated, v} }
func ok() any           { return okBody{true} }

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (r *Room) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		id := req.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				r.log.Error("handler panic", "route", rt.pattern, "request_id", id, "panic", fmt.Sprint(p))
				writeProblem(sw, req, id, &api.Problem{Type: api.ProblemInternal, Title: "internal error", Status: http.StatusInternalServerError})
			}
			d := time.Since(start)
			r.metrics.requests.WithLabelValues(rt.pattern, strconv.Itoa(sw.status)).Inc()
			r.metrics.duration.WithLabelValues(rt.pattern).Observe(d.Seconds())
			r.log.Info("request", "route", rt.pattern, "status", sw.status, "duration_ms", d.Milliseconds(), "request_id", id)
		}()
		if rt.body > 0 {
			req.Body = http.MaxBytesReader(sw, req.Body, rt.body)
		} else {
			req.Body = http.MaxBytesReader(sw, req.Body, 0)
		}
		var who *actor
		if !rt.public {
			var err error
			if who, err = r.authenticate(req.Context(), req, id); err != nil {
				writeError(r.log, sw, req, id, err)
				return
			}
		}
		v, err := rt.fn(req.Context(), sw, req, who)
		if err != nil {
			writeError(r.log, sw, req, id, err)
			return
		}
		switch v := v.(type) {
		case []byte:
			sw.Header().Set("Content-Type", "application/octet-stream")
			sw.Header().Set("Content-Length", strconv.Itoa(len(v)))
			sw.Write(v)
		case rawBody:
			if err := v.fn(sw); err != nil {
				r.log.Error("streaming a response failed", "route", rt.pattern, "request_id", id, "err", err)
			}
		case statusBody:
			writeJSON(sw, v.status, v.v)
		default:
			writeJSON(sw, http.StatusOK, v)
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers with a problem. Errors that are not problems are the
// room's own failures: logged, and answered without detail.
func writeError(log *slog.Logger, w http.ResponseWriter, req *http.Request, id string, err error) {
	var p *api.Problem
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &p):
	case errors.As(err, &mb):
		p = &api.Problem{Type: api.ProblemTooLarge, Title: "the request body is larger than this endpoint accepts", Status: http.StatusRequestEntityTooLarge}
	case errors.Is(err, context.Canceled):
		p = &api.Problem{Type: api.ProblemBadRequest, Title: "the request was canceled", Status: 499}
	default:
		log.Error("request failed", "request_id", id, "err", err)
		p = &api.Problem{Type: api.ProblemInternal, Title: "internal error", Status: http.StatusInternalServerError}
	}
	writeProblem(w, req, id, p)
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

func decodeJSON(req *http.Request, v any) error {
	d := json.NewDecoder(req.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		return badRequest("the request body is not the JSON this endpoint takes")
	}
	return nil
}

func pathInt(req *http.Request, name string) (int, error) {
	n, err := strconv.Atoi(req.PathValue(name))
	if err != nil || n < 0 {
		return 0, badRequest("%s must be a non-negative integer", name)
	}
	return n, nil
}

func (r *Room) serveHealth(context.Context, http.ResponseWriter, *http.Request, *actor) (any, error) {
	if r.db.IsClosed() {
		return nil, problem(http.StatusServiceUnavailable, api.ProblemUnavailable, "the database is closed")
	}
	return map[string]any{"status": "ok", "audit_entries": r.audit.Size()}, nil
}

func (r *Room) serveJWKS(context.Context, http.ResponseWriter, *http.Request, *actor) (any, error) {
	return audit.PublicJWKS(r.id.key.Public().(ed25519.PublicKey))
}

func (r *Room) serveCheckpoint(ctx context.Context, _ http.ResponseWriter, _ *http.Request, who *actor) (any, error) {
	a := act{action: "audit.export"}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if err := r.commit(ctx, who, a, d, nil, "", nil); err != nil {
		return nil, err
	}
	c, err := r.audit.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	return rawBody{func(w io.Writer) error { _, err := w.Write(c.Note); return err }}, nil
}

func (r *Room) serveExport(ctx context.Context, w http.ResponseWriter, req *http.Request, who *actor) (any, error) {
	q := req.URL.Query()
	var from, to int64
	var err error
	if s := q.Get("from"); s != "" {
		if from, err = strconv.ParseInt(s, 10, 64); err != nil || from < 0 {
			return nil, badRequest("from must be a non-negative integer")
		}
	}
	if s := q.Get("to"); s != "" {
		if to, err = strconv.ParseInt(s, 10, 64); err != nil || to < 0 {
			return nil, badRequest("to must be a non-negative integer")
		}
	}
	a := act{action: "audit.export"}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	// An auditor gets a sparse bundle of what concerns its partner (see
	// auditscope.go); a room auditor and the operator, the whole log.
	var scope *audit.Scope
	switch who.Role {
	case policy.RoleAuditor:
		s, err := r.auditScope(who)
		if err != nil {
			return nil, err
		}
		s.From, s.To = from, to
		scope = &s
	case policy.RoleRoomAuditor, policy.RoleOperator:
	default:
		return nil, problem(http.StatusForbidden, api.ProblemDenied, "only auditors and the room's operator export the audit log")
	}
	if err := r.commit(ctx, who, a, d, nil, "", nil); err != nil {
		return nil, err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if scope != nil {
		return rawBody{func(out io.Writer) error { return r.audit.ExportScoped(ctx, out, *scope) }}, nil
	}
	return rawBody{func(out io.Writer) error { return r.audit.Export(ctx, out, from, to) }}, nil
}
