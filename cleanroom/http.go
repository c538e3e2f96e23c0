package cleanroom

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
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
	// action is the policy action the route performs, under which the
	// wrapper records a refusal no decision recorded.
	action   policy.Action
	body     int64         // request body limit
	deadline time.Duration // how long the request may run (deadlineWrite if zero)
	// detached routes run to their end (or deadline, or the room's
	// shutdown) when the caller goes away: a match, query or model is then
	// counted and charged as if it had waited for the answer. Otherwise a
	// member that abandons its requests just before they answer would run
	// them at no charge and past the daily limits (a Beam job may take
	// minutes of the engine's time, a match of the room's).
	detached bool
	fn       func(ctx context.Context, w http.ResponseWriter, req *http.Request, who *actor) (any, error)
}

func (r *Room) routes() []route {
	return []route{
		{pattern: "GET /healthz", public: true, deadline: deadlineRead, fn: r.serveHealth},
		{pattern: "GET /.well-known/jwks.json", public: true, deadline: deadlineRead, fn: r.serveJWKS},
		{pattern: "GET /v1/room", public: true, deadline: deadlineRead, fn: func(_ context.Context, _ http.ResponseWriter, req *http.Request, _ *actor) (any, error) {
			q := req.URL.Query()
			if !q.Has("challenge") {
				return r.Info(), nil
			}
			c, err := base64.RawURLEncoding.DecodeString(q.Get("challenge"))
			if err != nil || len(c) < api.MinRoomChallenge || len(c) > api.MaxRoomChallenge {
				return nil, badRequest("a challenge is %d to %d bytes, base64url without padding", api.MinRoomChallenge, api.MaxRoomChallenge)
			}
			return r.proveInfo(c), nil
		}},

		{pattern: "POST /v1/principals", action: policy.ActionPartnerRegister, body: api.MaxJSONBody, deadline: deadlineWrite, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			var p api.Principal
			if err := decodeJSON(req, &p); err != nil {
				return nil, err
			}
			return created(p), r.registerPrincipal(ctx, who, p)
		}},
		{pattern: "GET /v1/principals/me", action: policy.ActionPrincipalSelf, deadline: deadlineRead, fn: func(ctx context.Context, _ http.ResponseWriter, _ *http.Request, who *actor) (any, error) {
			return r.self(ctx, who)
		}},
		{pattern: "GET /v1/principals/me/request-key", action: policy.ActionPrincipalSelf, deadline: deadlineRead, fn: func(ctx context.Context, _ http.ResponseWriter, _ *http.Request, who *actor) (any, error) {
			return r.requestKey(ctx, who)
		}},
		{pattern: "GET /v1/principals", action: policy.ActionRoomRead, deadline: deadlineRead, fn: func(ctx context.Context, _ http.ResponseWriter, _ *http.Request, who *actor) (any, error) {
			return r.principals(ctx, who)
		}},
		{pattern: "GET /v1/collaborations", action: policy.ActionCollaborationList, deadline: deadlineRead, fn: func(ctx context.Context, _ http.ResponseWriter, _ *http.Request, who *actor) (any, error) {
			return r.collaborations(ctx, who)
		}},
		{pattern: "POST /v1/collaborations", action: policy.ActionCollaborationCreate, body: api.MaxJSONBody, deadline: deadlineWrite, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			var c api.CreateCollaboration
			if err := decodeJSON(req, &c); err != nil {
				return nil, err
			}
			v, err := r.createCollaboration(ctx, who, c)
			return created(v), err
		}},
		{pattern: "GET /v1/collaborations/{id}", action: policy.ActionCollaborationRead, deadline: deadlineRead, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return r.collaboration(ctx, who, req.PathValue("id"))
		}},
		{pattern: "POST /v1/collaborations/{id}/accept", action: policy.ActionCollaborationAccept, body: api.MaxJSONBody, deadline: deadlineWrite, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			var a api.AcceptCollaboration
			if err := decodeJSON(req, &a); err != nil {
				return nil, err
			}
			return ok(), r.accept(ctx, who, req.PathValue("id"), a.SettingsDigest)
		}},
		{pattern: "POST /v1/collaborations/{id}/revoke", action: policy.ActionCollaborationRevoke, deadline: deadlineWrite, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return ok(), r.revoke(ctx, who, req.PathValue("id"))
		}},
		{pattern: "PUT /v1/collaborations/{id}/secrets/{member}", action: policy.ActionSecretDeliver, body: api.MaxJSONBody, deadline: deadlineWrite, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			var s api.SealedSecret
			if err := decodeJSON(req, &s); err != nil {
				return nil, err
			}
			return ok(), r.deliverSecret(ctx, who, req.PathValue("id"), req.PathValue("member"), s.Sealed)
		}},
		{pattern: "GET /v1/collaborations/{id}/secret", action: policy.ActionCollaborationRead, deadline: deadlineRead, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return r.secret(ctx, who, req.PathValue("id"))
		}},
		{pattern: "POST /v1/collaborations/{id}/uploads", action: policy.ActionDatasetUpload, body: api.MaxJSONBody, deadline: deadlineWrite, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			var s api.StartUpload
			if err := decodeJSON(req, &s); err != nil {
				return nil, err
			}
			u, err := r.startUpload(ctx, who, req.PathValue("id"), s)
			return created(u), err
		}},
		{pattern: "GET /v1/collaborations/{id}/uploads/{upload}", action: policy.ActionCollaborationRead, deadline: deadlineRead, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return r.upload(ctx, who, req.PathValue("id"), req.PathValue("upload"))
		}},
		{pattern: "DELETE /v1/collaborations/{id}/uploads/{upload}", action: policy.ActionDatasetDiscard, deadline: deadlineWrite, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return ok(), r.discardUpload(ctx, who, req.PathValue("id"), req.PathValue("upload"))
		}},
		{pattern: "PUT /v1/collaborations/{id}/uploads/{upload}/parts/{part}", action: policy.ActionDatasetUpload, body: api.MaxPartBytes, deadline: deadlineTransfer, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			part, err := pathInt(req, "part")
			if err != nil {
				return nil, err
			}
			mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
			return r.putPart(ctx, who, req.PathValue("id"), req.PathValue("upload"), part, mt, req.ContentLength, req.Body)
		}},
		{pattern: "POST /v1/collaborations/{id}/uploads/{upload}/commit", action: policy.ActionDatasetUpload, body: api.MaxJSONBody, deadline: deadlineLong, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			var cu api.CommitUpload
			if err := decodeJSON(req, &cu); err != nil {
				return nil, err
			}
			return r.commitUpload(ctx, who, req.PathValue("id"), req.PathValue("upload"), cu)
		}},
		{pattern: "GET /v1/collaborations/{id}/tasks", action: policy.ActionCollaborationRead, deadline: deadlineRead, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return r.tasks(ctx, who, req.PathValue("id"))
		}},
		{pattern: "GET /v1/collaborations/{id}/tasks/{task}/parts/{part}", action: policy.ActionDatasetReencrypt, deadline: deadlineTransfer, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			part, err := pathInt(req, "part")
			if err != nil {
				return nil, err
			}
			return r.taskPart(ctx, who, req.PathValue("id"), req.PathValue("task"), part)
		}},
		{pattern: "PUT /v1/collaborations/{id}/tasks/{task}/parts/{part}", action: policy.ActionDatasetReencrypt, body: taskPartSize*api.TokenSize + 1, deadline: deadlineTransfer, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			part, err := pathInt(req, "part")
			if err != nil {
				return nil, err
			}
			return ok(), r.putTaskPart(ctx, who, req.PathValue("id"), req.PathValue("task"), part, req.Body)
		}},
		{pattern: "POST /v1/collaborations/{id}/match", action: policy.ActionMatchRun, deadline: deadlineLong, detached: true, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return r.match(ctx, who, req.PathValue("id"))
		}},
		{pattern: "POST /v1/collaborations/{id}/queries", action: policy.ActionQueryRun, body: api.MaxJSONBody, deadline: deadlineQuery, detached: true, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			var q api.QuerySpec
			if err := decodeJSON(req, &q); err != nil {
				return nil, err
			}
			return r.query(ctx, who, req.PathValue("id"), q)
		}},
		{pattern: "POST /v1/collaborations/{id}/models", action: policy.ActionModelTrain, body: api.MaxJSONBody, deadline: deadlineQuery, detached: true, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			var s api.ModelSpec
			if err := decodeJSON(req, &s); err != nil {
				return nil, err
			}
			return r.trainModel(ctx, who, req.PathValue("id"), s)
		}},
		{pattern: "POST /v1/collaborations/{id}/activations", action: policy.ActionAudienceActivate, body: api.MaxJSONBody, deadline: deadlineQuery, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			var s api.SegmentSpec
			if err := decodeJSON(req, &s); err != nil {
				return nil, err
			}
			return r.activate(ctx, who, req.PathValue("id"), s)
		}},
		{pattern: "GET /v1/collaborations/{id}/digest-key", action: policy.ActionCollaborationRead, deadline: deadlineRead, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return r.digestKeyFor(ctx, who, req.PathValue("id"))
		}},
		{pattern: "GET /v1/collaborations/{id}/budget/history", action: policy.ActionBudgetRead, deadline: deadlineRead, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return r.budgetHistory(ctx, who, req.PathValue("id"))
		}},
		{pattern: "GET /v1/collaborations/{id}/budget", action: policy.ActionBudgetRead, deadline: deadlineRead, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			return r.budgetInfo(ctx, who, req.PathValue("id"))
		}},
		{pattern: "POST /v1/collaborations/{id}/policy", action: policy.ActionPolicyPropose, body: maxModule, deadline: deadlineWrite, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			src, err := io.ReadAll(req.Body)
			if err != nil {
				return nil, err
			}
			h, err := r.proposePolicy(ctx, who, req.PathValue("id"), src)
			return api.PolicyProposal{Hash: h}, err
		}},
		{pattern: "POST /v1/collaborations/{id}/policy/{hash}/approve", action: policy.ActionPolicyApprove, deadline: deadlineWrite, fn: func(ctx context.Context, _ http.ResponseWriter, req *http.Request, who *actor) (any, error) {
			active, err := r.approvePolicy(ctx, who, req.PathValue("id"), req.PathValue("hash"))
			return api.PolicyProposal{Hash: req.PathValue("hash"), Active: active}, err
		}},
		{pattern: "GET /v1/audit/checkpoint", action: policy.ActionAuditExport, deadline: deadlineRead, fn: r.serveCheckpoint},
		{pattern: "GET /v1/audit/export", action: policy.ActionAuditExport, deadline: deadlineLong, fn: r.serveExport},
	}
}

// Handler returns the room's HTTP interface: the API members, auditors and
// the operator reach. The metrics are not part of it (MetricsHandler).
func (r *Room) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range r.routes() {
		mux.Handle(rt.pattern, r.wrap(rt))
	}
	mux.Handle("/", r.wrap(route{pattern: "unknown", public: true, fn: func(context.Context, http.ResponseWriter, *http.Request, *actor) (any, error) {
		return nil, &api.Problem{Type: api.ProblemNotFound, Title: "no such endpoint", Status: http.StatusNotFound}
	}}))
	return mux
}

// MetricsHandler returns the room's Prometheus metrics, for the operator's
// monitoring, to serve on an address of the operator's own (cleanroom serve
// --metrics-addr), never where members reach the room: they count the
// room's requests by route and status and its decisions by action and
// outcome, across collaborations, and so tell, among other things, whether
// a member's activation was answered or refused, which no other member may
// learn (docs/PRIVACY.md).
func (r *Room) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(r.cfg.Registry, promhttp.HandlerOpts{})
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
	// A stopped audit log refuses every action the room would record, until
	// the room restarts: a room that still answered healthy would keep its
	// traffic, and an orchestrator would not restart it. The cause (a disk
	// error) stays in the room's own log; this endpoint is public.
	if r.auditStopped() != nil {
		return nil, problem(http.StatusServiceUnavailable, api.ProblemUnavailable, "the audit log has stopped: the room can record nothing more until it is restarted")
	}
	// Liveness only: the log's size, polled here by anyone, would time the
	// moment another member's action is recorded to within a poll.
	return map[string]any{"status": "ok"}, nil
}

func (r *Room) serveJWKS(context.Context, http.ResponseWriter, *http.Request, *actor) (any, error) {
	return audit.PublicJWKS(r.id.key.Public().(ed25519.PublicKey))
}

func (r *Room) serveCheckpoint(ctx context.Context, w http.ResponseWriter, _ *http.Request, who *actor) (any, error) {
	a := act{action: policy.ActionAuditExport}
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
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	return rawBody{func(out io.Writer) error { _, err := out.Write(c.Note); return err }}, nil
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
	// since is a checkpoint the reader holds, signed by this room (the
	// note, base64url): the bundle carries it back with its consistency
	// proof. The checkpoint itself, not its size: what the answer holds
	// must not tell a reader which sizes the room signed a checkpoint at
	// (audit.history says why). One that exceeds the log is not refused:
	// the reader's verifier tells a log that does not extend it.
	var since *audit.Checkpoint
	if s := q.Get("since"); s != "" {
		note, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(note) > api.MaxCheckpointNote {
			return nil, badRequest("since must be a checkpoint of this room's, its signed note in base64url without padding")
		}
		if since, err = r.audit.ReaderCheckpoint(note); err != nil {
			return nil, badRequest("since is not a checkpoint this room signed")
		}
	}
	a := act{action: policy.ActionAuditExport}
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
		s.From, s.To, s.Extends = from, to, since
		scope = &s
	case policy.RoleRoomAuditor, policy.RoleOperator:
	default:
		return nil, problem(http.StatusForbidden, api.ProblemDenied, "only auditors and the room's operator export the audit log")
	}
	// The range is checked before the answer starts (the log only grows,
	// so a range within it now is within the checkpoint the export signs),
	// and only for those who may export: its refusal names the log's size,
	// which the room tells auditors and the operator alone.
	if size := r.audit.Size(); to > size || from > max(to, size) || to > 0 && from > to {
		return nil, badRequest("the export range runs from 0 to the log's %d entries, from before to", size)
	}
	if err := r.commit(ctx, who, a, d, nil, "", nil); err != nil {
		return nil, err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if scope != nil {
		return rawBody{func(out io.Writer) error { return r.audit.ExportScoped(ctx, out, *scope) }}, nil
	}
	return rawBody{func(out io.Writer) error { return r.audit.Export(ctx, out, from, to, since) }}, nil
}
