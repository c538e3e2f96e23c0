package cleanroom

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// Every answer to an authenticated request is in the audit log: an action
// taken or denied by policy is recorded by authorize and commit; any other
// error the request ends with (a malformed request, a missing upload, a
// conflict found in the transaction, a deadline, the room's own failure,
// a panic) is recorded by the HTTP wrapper, under the route's action, with
// a fixed sentence for its kind of problem. A problem's title and detail
// may carry caller-chosen strings (a metric's name, a column's), so they
// never reach the log.

// Fixed reasons the wrapper records, by problem type.
var refusalReasons = map[string]string{
	api.ProblemBadRequest:     "the request was malformed",
	api.ProblemInvalidData:    "the request's data was invalid",
	api.ProblemTooLarge:       "the request was larger than the room accepts",
	api.ProblemNotFound:       "refused: not found",
	api.ProblemConflict:       "refused: conflict with the collaboration's state",
	api.ProblemDenied:         "refused: not allowed",
	api.ProblemCanaryMismatch: "refused: the members' canary identifiers do not match",
	api.ProblemDigestMismatch: "refused: the upload's parts make another digest than declared",
	api.ProblemUnavailable:    "the room could not complete the request (unavailable)",
	api.ProblemInternal:       "the room failed to complete the request",
	api.ProblemCorrupt:        "the room refused to use stored data that failed its integrity check",
	api.ProblemStorage:        "the room refused a write: its disk is nearly full",
}

const (
	reasonCanceled = "the client went away before the answer"
	reasonDeadline = "the request did not finish within its deadline"
	reasonPanic    = "the room failed to complete the request (a panic)"
	reasonOther    = "the room refused the request"
)

// reasonNotMember is the one answer, and the one audit reason, for a
// collaboration-scoped request by a principal whose partner is not a
// member, and for a collaboration that does not exist: a non-member cannot
// tell the two apart. It is the policy's own sentence for a non-member.
const reasonNotMember = api.ReasonNotMember

// refusal is a problem with a fixed audit reason of its own.
type refusal struct {
	p      *api.Problem
	reason string
}

func (e *refusal) Error() string { return e.p.Error() }
func (e *refusal) Unwrap() error { return e.p }

func notMember() error {
	return &refusal{reason: reasonNotMember, p: denied(reasonNotMember)}
}

// denied is the problem of an action the collaboration's policy, or a
// limit it sets, refused, for these reasons.
func denied(reasons ...string) *api.Problem {
	return &api.Problem{Type: api.ProblemDenied, Title: "refused by the collaboration's policy", Status: http.StatusForbidden, Reasons: reasons}
}

// collabFor returns collaboration id for a request of who's, if who's
// partner is a member; otherwise, whether or not the collaboration exists,
// the same refusal. Every collaboration-scoped request reads its
// collaboration through it. Whether who's role may act is the policy's to
// decide next (auditors of a member read; the operator, a member of none,
// never acts on collaborations).
func (r *Room) collabFor(who *actor, id string) (*collabRecord, error) {
	return r.memberCollab(who, id, r.collab)
}

// sharedCollabFor is collabFor for requests that only read the
// collaboration: the record is shared with other requests (Room.records)
// and must not be modified.
func (r *Room) sharedCollabFor(who *actor, id string) (*collabRecord, error) {
	return r.memberCollab(who, id, r.sharedCollab)
}

func (r *Room) memberCollab(who *actor, id string, read func(string) (*collabRecord, error)) (*collabRecord, error) {
	if !crypto.ValidPartnerName(id) {
		return nil, notMember()
	}
	c, err := read(id)
	var p *api.Problem
	if errors.As(err, &p) && p.Type == api.ProblemNotFound {
		return nil, notMember()
	}
	if err != nil {
		return nil, err
	}
	if !c.isMember(who.partner()) {
		return nil, notMember()
	}
	return c, nil
}

// refusalReason is the fixed sentence recorded for err, answered as p.
func refusalReason(err error, p *api.Problem) string {
	var rf *refusal
	switch {
	case errors.As(err, &rf):
		return rf.reason
	case errors.Is(err, context.DeadlineExceeded):
		return reasonDeadline
	case errors.Is(err, context.Canceled):
		return reasonCanceled
	}
	if s, ok := refusalReasons[p.Type]; ok {
		return s
	}
	return reasonOther
}

// recordRefusal appends the entry of a request that ended in a problem no
// entry recorded: under the route's action and, if the path (or, for a
// creation, the body) names a well-formed one, the collaboration. It runs
// even when the request's context has ended (a deadline, a client gone),
// for a few seconds.
func (r *Room) recordRefusal(ctx context.Context, who *actor, rt route, req *http.Request, reason string) error {
	collab := req.PathValue("id")
	if collab == "" {
		collab = who.named
	}
	if !crypto.ValidPartnerName(collab) {
		collab = ""
	}
	action := rt.action
	if action == "" {
		action = actionRequest // a route that names none (TestRoutesDeclared keeps them named)
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	e := audit.Entry{
		Time: r.now().UTC(), Principal: who.ID, Role: who.Role, Action: string(action), Collaboration: collab,
		Decision:  audit.Decision{Allow: false, Reasons: []string{reason}},
		RequestID: who.requestID,
	}
	who.recorded.Store(true)
	if _, err := r.appendEntry(actx, who, e, nil); err != nil {
		return r.auditFailed(err)
	}
	return nil
}
