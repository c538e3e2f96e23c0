package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"golang.org/x/mod/sumdb/note"

	"github.com/opencleanroom/cleanroom/audit/bundle"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// actionAuditExport is the action of an export's audit entry
// (policy.ActionAuditExport; the client does not link the policy engine).
const actionAuditExport = "audit.export"

// ExportAuditRange writes the audit bundle the room gives this principal
// to w: an auditor's covers what concerns its partner (a sparse bundle,
// each entry with its inclusion proof); a room auditor's or the operator's,
// the whole log. It holds entries from index from on, and before to (0:
// up to the checkpoint the room signs for the export). With since, a
// checkpoint of the room's the caller kept (its signed note), the bundle
// proves the log extends it, for bundle.Verify's since.
func (c *Client) ExportAuditRange(ctx context.Context, w io.Writer, from, to int64, since []byte) error {
	q := url.Values{}
	if from > 0 {
		q.Set("from", strconv.FormatInt(from, 10))
	}
	if to > 0 {
		q.Set("to", strconv.FormatInt(to, 10))
	}
	if since != nil {
		q.Set("since", base64.RawURLEncoding.EncodeToString(since))
	}
	path := "/v1/audit/export"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return c.do(ctx, "GET", path, nil, w)
}

// requestIDKey carries, in a context, the request id a call sends
// (X-Request-Id), under which the room logs it.
type requestIDKey struct{}

// FreshExport names an export ExportAuditFresh made, for VerifyFresh.
type FreshExport struct {
	requestID string
	key       []byte // the caller's request key; nil from a room that does not key request ids
}

// RequestID is the request id the export was sent under.
func (fe FreshExport) RequestID() string { return fe.requestID }

// ExportAuditFresh is ExportAuditRange of the whole log (to the latest
// checkpoint) under a request id of its own. The room logs the export
// under that id before it answers, so its answer holds the export's own
// entry: a bundle without it is not this export's answer but an older
// one, replayed (VerifyFresh).
func (c *Client) ExportAuditFresh(ctx context.Context, w io.Writer, from int64, since []byte) (FreshExport, error) {
	key, err := c.RequestKey(ctx)
	var p *api.Problem
	if errors.As(err, &p) && p.Type == api.ProblemNotFound {
		// A room that does not key request ids logs their salted digest,
		// which VerifyFresh finds without a key.
		key, err = nil, nil
	}
	if err != nil {
		return FreshExport{}, err
	}
	var b [16]byte
	rand.Read(b[:])
	fe := FreshExport{requestID: hex.EncodeToString(b[:]), key: key}
	if err := c.ExportAuditRange(context.WithValue(ctx, requestIDKey{}, fe.requestID), w, from, 0, since); err != nil {
		return FreshExport{}, err
	}
	return fe, nil
}

// RequestKey returns this principal's request key (api.RequestKey), under
// which the room's audit log keys the request ids it sends. Whoever holds
// it finds this principal's requests in a bundle by their ids, and can
// test guesses of its ids: show one request by its token
// (bundle.RequestToken) instead. The room's key for a principal never
// changes, so the client asks once.
func (c *Client) RequestKey(ctx context.Context) ([]byte, error) {
	c.requestKeyMu.Lock()
	defer c.requestKeyMu.Unlock()
	if c.requestKey != nil {
		return bytes.Clone(c.requestKey), nil
	}
	var k api.RequestKey
	if err := c.do(ctx, "GET", "/v1/principals/me/request-key", nil, &k); err != nil {
		return nil, err
	}
	if len(k.Key) != bundle.RequestKeySize || k.Principal != c.principal {
		return nil, fmt.Errorf("client: the room's answer is not a request key of %s's", c.principal)
	}
	c.requestKey = k.Key
	return bytes.Clone(k.Key), nil
}

// ErrStaleBundle means an audit bundle lacks the entry of the export that
// fetched it: the room answered with an older bundle.
var ErrStaleBundle = errors.New("client: the audit bundle does not hold the entry of the export that fetched it: it is an older bundle, replayed")

// CheckFresh is VerifyFresh of the bundle r, its entries unread.
func (c *Client) CheckFresh(r io.Reader, fe FreshExport, since []byte) error {
	_, err := c.VerifyFresh(r, fe, since, nil)
	return err
}

// VerifyFresh verifies the bundle r with the room's verifier key, as
// bundle.VerifyEntries does (fn, if not nil, sees every entry; with since,
// a checkpoint the caller kept, the log must extend it), and checks that
// it holds the entry of this client's export fe (ExportAuditFresh):
// ErrStaleBundle if not. What fn saw is to be trusted only without an
// error.
func (c *Client) VerifyFresh(r io.Reader, fe FreshExport, since []byte, fn func(index int64, e bundle.Entry) error) (*bundle.Report, error) {
	v, err := note.NewVerifier(c.room.VerifierKey)
	if err != nil {
		return nil, fmt.Errorf("client: the room's verifier key: %w", err)
	}
	found := false
	rep, err := bundle.VerifyEntries(r, v, since, func(i int64, e bundle.Entry) error {
		found = found || e.Principal == c.principal && e.Action == actionAuditExport && e.Salt != "" &&
			bundle.IsRequest(e, fe.key, fe.requestID)
		if fn != nil {
			return fn(i, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrStaleBundle
	}
	return rep, nil
}

// DigestKey returns the collaboration's digest key, which the room keys
// the result and spec digests of its audit log with (members' partners and
// analysts only).
func (c *Client) DigestKey(ctx context.Context, collab string) (*api.DigestKey, error) {
	var k api.DigestKey
	if err := c.do(ctx, "GET", "/v1/collaborations/"+esc(collab)+"/digest-key", nil, &k); err != nil {
		return nil, err
	}
	if len(k.Key) != api.DigestKeySize || k.Collaboration != collab || api.DigestKeyID(k.Key) != k.ID {
		return nil, fmt.Errorf("client: the room sent a malformed digest key")
	}
	return &k, nil
}

// CheckResult checks a result the room returned (a *api.QueryResult or
// *api.MatchResult) against the result digest of its audit entry, as an
// auditor of the member's partner exported it: it returns
// api.ErrDigestMismatch if the room logged another result than it gave.
func CheckResult(key *api.DigestKey, digest string, result any) error {
	body, err := api.ResultBody(result)
	if err != nil {
		return err
	}
	return api.CheckDigest(key.Key, api.ResultDigestLabel, digest, body)
}

// CheckSpec checks a query spec against the spec digest of its audit
// entry.
func CheckSpec(key *api.DigestKey, digest string, spec *api.QuerySpec) error {
	body, err := api.SpecBody(spec)
	if err != nil {
		return err
	}
	return api.CheckDigest(key.Key, api.SpecDigestLabel, digest, body)
}
