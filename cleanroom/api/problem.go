package api

import (
	"encoding/json"
	"fmt"
)

// Problem is an RFC 9457 problem details object: every error the room
// returns. Its text names what went wrong and, at most, a row or part
// number: never an identifier, token or data value.
type Problem struct {
	Type      string   `json:"type"`
	Title     string   `json:"title"`
	Status    int      `json:"status"`
	Detail    string   `json:"detail,omitempty"`
	Instance  string   `json:"instance,omitempty"`
	RequestID string   `json:"request_id,omitempty"`
	Reasons   []string `json:"reasons,omitempty"` // policy's sentences, on a denial
}

// ProblemContentType is the media type of a Problem.
const ProblemContentType = "application/problem+json"

// Problem types. Clients branch on these, not on titles.
const (
	ProblemBadRequest      = "/problems/bad-request"
	ProblemUnauthenticated = "/problems/unauthenticated"
	ProblemDenied          = "/problems/denied"
	ProblemNotFound        = "/problems/not-found"
	ProblemConflict        = "/problems/conflict"
	ProblemTooLarge        = "/problems/too-large"
	ProblemInvalidData     = "/problems/invalid-data"
	ProblemCanaryMismatch  = "/problems/canary-mismatch"
	// ProblemDigestMismatch: an upload's parts, as the room holds them,
	// make another dataset digest than the one its commit declared: a
	// part the client had a wrong digest of, or sent differently. The
	// client sends the upload again from the start.
	ProblemDigestMismatch = "/problems/digest-mismatch"
	ProblemUnavailable    = "/problems/unavailable"
	// ProblemRateLimited: too many failed authentications came from the
	// caller's address; retry after the Retry-After header's seconds.
	ProblemRateLimited = "/problems/rate-limited"
	ProblemInternal    = "/problems/internal"
	// ProblemCorrupt: stored data failed its integrity check; the room
	// refused to use it. The operator runs cleanroom doctor.
	ProblemCorrupt = "/problems/corrupt"
	// ProblemStorage: the data directory's disk is (nearly) full; the room
	// refuses writes until space returns, and keeps answering reads.
	ProblemStorage = "/problems/insufficient-storage"
)

// ReasonNotMember is the one reason a collaboration's routes give a
// principal whose partner is not a member, whether or not the collaboration
// exists (a ProblemDenied): check the collaboration's id.
const ReasonNotMember = "only members of the collaboration may act on it"

func (p *Problem) Error() string {
	s := fmt.Sprintf("%s (%d)", p.Title, p.Status)
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	for _, r := range p.Reasons {
		s += "; " + r
	}
	return s
}

// ParseProblem decodes a problem document; a body that is not one becomes a
// problem with the status alone.
func ParseProblem(status int, body []byte) *Problem {
	var p Problem
	if json.Unmarshal(body, &p) != nil || p.Title == "" {
		return &Problem{Type: "about:blank", Title: fmt.Sprintf("HTTP %d", status), Status: status}
	}
	if p.Status == 0 {
		p.Status = status
	}
	return &p
}
