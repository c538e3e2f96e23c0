package client

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// ExportAuditRange writes the audit bundle the room gives this principal
// to w: an auditor's covers what concerns its partner (a sparse bundle,
// each entry with its inclusion proof); a room auditor's or the operator's,
// the whole log. It holds entries from index from on, and before to (0:
// up to the checkpoint the room signs for the export).
func (c *Client) ExportAuditRange(ctx context.Context, w io.Writer, from, to int64) error {
	q := url.Values{}
	if from > 0 {
		q.Set("from", strconv.FormatInt(from, 10))
	}
	if to > 0 {
		q.Set("to", strconv.FormatInt(to, 10))
	}
	path := "/v1/audit/export"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return c.do(ctx, "GET", path, nil, w)
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
