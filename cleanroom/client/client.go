// Package client is the partner's side of the room's HTTP API: every
// request signed with the partner's own key, and the partner's workflows
// (sealing the collaboration secret, normalizing and uploading a CSV,
// re-encrypting relayed sets) built on it. The CLI and the demo use it.
//
// A call returns its result or an error, never both; a refusal is the
// room's *api.Problem (see SyncError for what a failed Sync did). A part
// upload, which the room stores idempotently, is tried again when it is
// lost on the way or the room is briefly unavailable (RetryPolicy); no
// other call is repeated.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
	"golang.org/x/mod/sumdb/note"
)

// ErrWrongRoom means the room at the URL is not the one the caller named
// (its id or its key differ). The caller should check the --room URL.
var ErrWrongRoom = errors.New("client: the room at this URL is not the one named: its id or its key differ")

// Client talks to one room as one principal.
type Client struct {
	base      string
	key       *crypto.PartnerKey
	principal string
	room      api.RoomInfo
	http      *http.Client
	now       func() time.Time
	retries   RetryPolicy

	requestKeyMu sync.Mutex
	requestKey   []byte // the principal's request key, once the room gave it
}

// Options configure a Client. The zero value works.
type Options struct {
	// Principal is the id the room registered the key under (default: the
	// key's name).
	Principal string
	// RoomID, when set, must be the room's id.
	RoomID string
	// RoomKey, when set, must be the room's key (RoomInfo.VerifierKey): a
	// room this client used before, whose key it recorded. Another room
	// showing that room's id and key cannot prove it holds the key.
	RoomKey string
	HTTP    *http.Client
	Now     func() time.Time
	// Retry says how a part upload that failed on the way is tried again
	// (see RetryPolicy; the zero value is its defaults).
	Retry RetryPolicy
}

// New connects to the room at base (e.g. "http://127.0.0.1:8080") and
// learns its id, the audience of every token.
func New(ctx context.Context, base string, key *crypto.PartnerKey, opts Options) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: the room URL must be http(s)://host:port")
	}
	c := &Client{base: strings.TrimRight(base, "/"), key: key, principal: opts.Principal, http: opts.HTTP, now: opts.Now,
		retries: opts.Retry.withDefaults()}
	if c.principal == "" && key != nil {
		c.principal = key.Name()
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 10 * time.Minute}
	}
	if c.now == nil {
		c.now = time.Now
	}
	// The room proves it holds the key it shows, over a challenge of
	// ours: every token names the room's id as its audience, and a room
	// that showed another's id, with its key, could otherwise pass them on.
	var challenge [32]byte
	rand.Read(challenge[:])
	path := "/v1/room?challenge=" + base64.RawURLEncoding.EncodeToString(challenge[:])
	if err := c.call(ctx, "GET", path, nil, "", &c.room, false); err != nil {
		return nil, fmt.Errorf("client: reaching the room: %w", err)
	}
	if err := checkRoomProof(c.room, challenge[:]); err != nil {
		return nil, err
	}
	if opts.RoomID != "" && opts.RoomID != c.room.ID || opts.RoomKey != "" && opts.RoomKey != c.room.VerifierKey {
		return nil, ErrWrongRoom
	}
	return c, nil
}

// ErrRoomProof means the room did not prove it holds the key it shows
// for its id: it is not the room it says it is.
var ErrRoomProof = errors.New("client: the room did not prove it holds the key it shows for its id")

// checkRoomProof reports whether info's proof is a signature of its id and
// challenge under the key it shows.
func checkRoomProof(info api.RoomInfo, challenge []byte) error {
	v, err := note.NewVerifier(info.VerifierKey)
	if err != nil {
		return fmt.Errorf("%w: its key does not parse", ErrRoomProof)
	}
	sig, err := base64.StdEncoding.DecodeString(info.Proof)
	if err != nil || !v.Verify(api.RoomProofMessage(info.ID, challenge), sig) {
		return ErrRoomProof
	}
	return nil
}

// Room returns what the room says of itself.
func (c *Client) Room() api.RoomInfo { return c.room }

// Principal returns the id the client acts as.
func (c *Client) Principal() string { return c.principal }

// Key returns the client's key.
func (c *Client) Key() *crypto.PartnerKey { return c.key }

// BlindingKey returns the partner's PAIR key in collab, in this room: the
// key every set it encrypts or re-encrypts there carries
// (crypto.PartnerKey.CollaborationKey). It differs from collaboration to
// collaboration and from room to room.
func (c *Client) BlindingKey(collab string) *crypto.BlindingKey {
	return c.key.CollaborationKey(c.room.VerifierKey, collab)
}

func (c *Client) token() (string, error) {
	var b [16]byte
	rand.Read(b[:])
	return api.SignRequestToken(c.key.SigningKey(), c.principal, c.room.ID, hex.EncodeToString(b[:]), c.now())
}

// call makes one request. body, if not nil, is sent with contentType (JSON
// when body is not an io.Reader); out, if not nil, receives the JSON answer
// (or, if it is an io.Writer, the raw answer). A refusal is an *api.Problem;
// a request or answer lost on the way, a transportError.
func (c *Client) call(ctx context.Context, method, path string, body any, contentType string, out any, auth bool) error {
	req, err := c.request(ctx, method, path, body, contentType, auth)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &transportError{err}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return refusal(resp, c.now())
	}
	rb := &bodyReader{r: resp.Body}
	switch o := out.(type) {
	case nil:
		_, err = io.Copy(io.Discard, rb)
	case io.Writer:
		_, err = io.Copy(o, rb)
	default:
		err = json.NewDecoder(rb).Decode(out)
	}
	if rb.err != nil {
		return &transportError{rb.err}
	}
	return err
}

// request makes the HTTP request of a call, with a fresh token if auth.
func (c *Client) request(ctx context.Context, method, path string, body any, contentType string, auth bool) (*http.Request, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case *partBody:
		rd = b.reader()
	case io.Reader:
		rd = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd, contentType = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		if pr, ok := rd.(*partBodyReader); ok {
			pr.Close()
		}
		return nil, err
	}
	if b, ok := body.(*partBody); ok {
		// What NewRequest does for a bytes.Reader: the length, and a
		// fresh reader should the transport send the request again.
		req.ContentLength = int64(rd.(*partBodyReader).Len())
		req.GetBody = func() (io.ReadCloser, error) { return b.reader(), nil }
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		req.Header.Set("X-Request-Id", id)
	}
	if auth {
		tok, err := c.token()
		if err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, fmt.Errorf("client: signing the request token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	return c.call(ctx, method, path, body, "", out, true)
}

func esc(s string) string { return url.PathEscape(s) }

// RegisterPrincipal registers a principal (operator only).
func (c *Client) RegisterPrincipal(ctx context.Context, p api.Principal) error {
	return c.do(ctx, "POST", "/v1/principals", p, nil)
}

// CreateCollaboration creates a collaboration.
func (c *Client) CreateCollaboration(ctx context.Context, req api.CreateCollaboration) (*api.Collaboration, error) {
	var out api.Collaboration
	if err := c.do(ctx, "POST", "/v1/collaborations", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Collaboration returns where a collaboration stands.
func (c *Client) Collaboration(ctx context.Context, id string) (*api.Collaboration, error) {
	var out api.Collaboration
	if err := c.do(ctx, "GET", "/v1/collaborations/"+esc(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Accept agrees to a collaboration's terms, named by their digest
// (api.TermsDigest, Collaboration.SettingsDigest): the room refuses a
// digest that is not the collaboration's, so a member never agrees to terms
// it was not shown.
func (c *Client) Accept(ctx context.Context, id, settingsDigest string) error {
	return c.do(ctx, "POST", "/v1/collaborations/"+esc(id)+"/accept", api.AcceptCollaboration{SettingsDigest: settingsDigest}, nil)
}

// Revoke pulls the kill switch on a collaboration.
func (c *Client) Revoke(ctx context.Context, id string) error {
	return c.do(ctx, "POST", "/v1/collaborations/"+esc(id)+"/revoke", nil, nil)
}

// Match runs the match.
func (c *Client) Match(ctx context.Context, id string) (*api.MatchResult, error) {
	var out api.MatchResult
	if err := c.do(ctx, "POST", "/v1/collaborations/"+esc(id)+"/match", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Query asks an aggregate question.
func (c *Client) Query(ctx context.Context, id string, q api.QuerySpec) (*api.QueryResult, error) {
	var out api.QueryResult
	if err := c.do(ctx, "POST", "/v1/collaborations/"+esc(id)+"/queries", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Me returns the principal's own registration: its id, role and partner.
func (c *Client) Me(ctx context.Context) (*api.Principal, error) {
	var out api.Principal
	if err := c.do(ctx, "GET", "/v1/principals/me", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Collaborations lists the collaborations that concern the principal.
func (c *Client) Collaborations(ctx context.Context) ([]api.CollaborationSummary, error) {
	var out []api.CollaborationSummary
	if err := c.do(ctx, "GET", "/v1/collaborations", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// BudgetHistory returns the charges to a collaboration's privacy budget,
// oldest first, as its audit log records them.
func (c *Client) BudgetHistory(ctx context.Context, id string) ([]api.BudgetEvent, error) {
	var out []api.BudgetEvent
	if err := c.do(ctx, "GET", "/v1/collaborations/"+esc(id)+"/budget/history", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Budget returns a collaboration's privacy budget.
func (c *Client) Budget(ctx context.Context, id string) (*api.BudgetInfo, error) {
	var out api.BudgetInfo
	if err := c.do(ctx, "GET", "/v1/collaborations/"+esc(id)+"/budget", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExportAudit writes the room's audit bundle to w (auditors, operator).
func (c *Client) ExportAudit(ctx context.Context, w io.Writer) error {
	return c.do(ctx, "GET", "/v1/audit/export", nil, w)
}

// JWKS returns the room's published checkpoint key set.
func (c *Client) JWKS(ctx context.Context) ([]byte, error) {
	var b bytes.Buffer
	if err := c.call(ctx, "GET", "/.well-known/jwks.json", nil, "", &b, false); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ProposePolicy proposes a collaboration policy module (Rego source).
func (c *Client) ProposePolicy(ctx context.Context, id string, src []byte) (*api.PolicyProposal, error) {
	var out api.PolicyProposal
	if err := c.call(ctx, "POST", "/v1/collaborations/"+esc(id)+"/policy", bytes.NewReader(src), "text/plain", &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// ApprovePolicy approves the proposed module with this hash.
func (c *Client) ApprovePolicy(ctx context.Context, id, hash string) (*api.PolicyProposal, error) {
	var out api.PolicyProposal
	if err := c.do(ctx, "POST", "/v1/collaborations/"+esc(id)+"/policy/"+esc(hash)+"/approve", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
