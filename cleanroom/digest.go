package cleanroom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/policy"
)

// Digest keys. Every result digest (and query spec digest) the room writes
// into the audit log is keyed with the collaboration's digest key (see
// api.KeyedDigest for why): 32 random bytes the room makes the first time
// the collaboration needs one and keeps under its own key prefix, apart
// from the collaboration record. Members, partners and their analysts,
// fetch it to check what they received against the log; auditors never
// get it, since with it they could test guesses of results they must not
// learn. The room itself holds it, as it holds the results.

// digestKey returns collaboration collab's digest key, making it the first
// time. Two requests making it at once conflict in Badger; the loser reads
// the winner's key.
func (r *Room) digestKey(collab string) ([]byte, error) {
	for range 8 {
		var key []byte
		err := r.db.Update(func(txn *badger.Txn) error {
			stored, err := digestKeys.Get(r.txn(txn), collab)
			if err == nil {
				key = stored
				return nil
			}
			if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			key = make([]byte, api.DigestKeySize)
			if _, err := io.ReadFull(r.rand, key); err != nil {
				return fmt.Errorf("cleanroom: making a digest key: %w", err)
			}
			return digestKeys.Put(r.txn(txn), collab, key)
		})
		if errors.Is(err, badger.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(key) != api.DigestKeySize {
			return nil, fmt.Errorf("cleanroom: the stored digest key of a collaboration has %d bytes", len(key))
		}
		return key, nil
	}
	return nil, errors.New("cleanroom: the digest key kept conflicting")
}

// resultDigest is the digest of a result body (see api.ResultBody) that the
// room writes in the result's audit entry.
func (r *Room) resultDigest(_ context.Context, collab string, body []byte) (string, error) {
	key, err := r.digestKey(collab)
	if err != nil {
		return "", err
	}
	return api.KeyedDigest(key, api.ResultDigestLabel, body), nil
}

// specDigest is the digest of a query spec (see api.SpecBody) for the
// query's audit entry.
func (r *Room) specDigest(_ context.Context, collab string, spec *api.QuerySpec) (string, error) {
	body, err := api.SpecBody(spec)
	if err != nil {
		return "", err
	}
	key, err := r.digestKey(collab)
	if err != nil {
		return "", err
	}
	return api.KeyedDigest(key, api.SpecDigestLabel, body), nil
}

// digestKeyFor gives a member its collaboration's digest key. The policy
// decides it as a read of the collaboration (members only); of those, the
// room refuses auditors, and records that refusal.
func (r *Room) digestKeyFor(ctx context.Context, who *actor, id string) (*api.DigestKey, error) {
	c, err := r.collabFor(who, id)
	if err != nil {
		return nil, err
	}
	a := act{action: policy.ActionCollaborationRead, collab: c}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if who.Role != policy.RolePartner && who.Role != policy.RoleAnalyst {
		const reason = "auditors do not receive the digest key: with it they could test guesses of results"
		d.Allow, d.Reasons = false, []string{reason}
		if _, err := r.appendEntry(ctx, who, r.entry(who, a.action, c.ID, d, nil, ""), nil); err != nil {
			return nil, r.auditFailed(err)
		}
		return nil, &api.Problem{Type: api.ProblemDenied, Title: "refused by the room", Status: http.StatusForbidden, Reasons: d.Reasons}
	}
	key, err := r.digestKey(c.ID)
	if err != nil {
		return nil, err
	}
	k := &api.DigestKey{Collaboration: c.ID, Key: key, ID: api.DigestKeyID(key)}
	refs := []audit.DataRef{{Name: digestKeys.Key(c.ID), Digest: k.ID, Bytes: int64(len(key))}}
	if err := r.commit(ctx, who, a, d, refs, "", nil); err != nil {
		return nil, err
	}
	return k, nil
}
