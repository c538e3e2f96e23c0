package cleanroom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/policy"
)

// maxModule bounds a proposed policy module's source.
const maxModule = 64 << 10

// Module sources are kept apart from the collaboration's record
// (policySources), while the module is pending or active.

// dropSources deletes the sources of modules no longer pending or active.
func dropSources(tx *store.Tx, collab string, hashes []string) error {
	for _, h := range hashes {
		if err := policySources.Delete(tx, store.In{Collab: collab, ID: h}); err != nil {
			return err
		}
	}
	return nil
}

// proposePolicy records a collaboration policy module (Rego, package
// collaboration) proposed, and so approved, by the caller. It takes effect
// once every member approved its exact hash.
func (r *Room) proposePolicy(ctx context.Context, who *actor, collab string, src []byte) (string, error) {
	c, err := r.collabFor(who, collab)
	if err != nil {
		return "", err
	}
	a := act{action: policy.ActionPolicyPropose, collab: c}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return "", err
	}
	m, err := r.policy.ParseModule(ctx, src)
	if err != nil {
		var ce *policy.CompileError
		if errors.As(err, &ce) {
			p := badRequest("the policy module does not compile")
			for _, pr := range ce.Problems {
				p.Reasons = append(p.Reasons, pr.Message)
			}
			return "", p
		}
		return "", err
	}
	sum := sha256.Sum256(src)
	refs := []audit.DataRef{{Name: "policy/" + collab, Digest: hex.EncodeToString(sum[:]), Bytes: int64(len(src))}}
	var activated bool
	err = r.commit(ctx, who, a, d, refs, "", func(tx *store.Tx) error {
		var dropped []string
		if err := updateCollab(tx, collab, func(c *collabRecord) error {
			before := c.Policy.Active
			var err error
			if dropped, err = c.Policy.Propose(who.partner(), c.Members, m); err != nil {
				return problem(http.StatusForbidden, api.ProblemDenied, err.Error())
			}
			activated = c.Policy.Active != before
			return nil
		}); err != nil {
			return err
		}
		if err := policySources.Put(tx, store.In{Collab: collab, ID: m.Hash}, &m.Source); err != nil {
			return err
		}
		return dropSources(tx, collab, dropped)
	})
	if err != nil {
		return "", err
	}
	if activated {
		return m.Hash, r.policy.SetCollaborationPolicy(ctx, collab, m)
	}
	return m.Hash, nil
}

// approvePolicy records the caller's approval of the proposed module with
// this hash; with every member's approval it becomes the active policy.
func (r *Room) approvePolicy(ctx context.Context, who *actor, collab, hash string) (bool, error) {
	c, err := r.collabFor(who, collab)
	if err != nil {
		return false, err
	}
	a := act{action: policy.ActionPolicyApprove, collab: c}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return false, err
	}
	var activated bool
	var src []byte
	refs := []audit.DataRef{}
	if len(hash) == 64 {
		refs = append(refs, audit.DataRef{Name: "policy/" + collab, Digest: hash})
	}
	err = r.commit(ctx, who, a, d, refs, "", func(tx *store.Tx) error {
		var dropped []string
		if err := updateCollab(tx, collab, func(c *collabRecord) error {
			var err error
			activated, dropped, err = c.Policy.Approve(who.partner(), c.Members, hash)
			if errors.Is(err, policy.ErrUnknownProposal) {
				return notFound("a pending proposal with that hash")
			}
			if err != nil {
				return problem(http.StatusForbidden, api.ProblemDenied, err.Error())
			}
			return nil
		}); err != nil {
			return err
		}
		if activated {
			stored, err := policySources.Get(tx.Txn, store.In{Collab: collab, ID: hash})
			if err != nil {
				return err
			}
			src = *stored
		}
		return dropSources(tx, collab, dropped)
	})
	if err != nil || !activated {
		return activated, err
	}
	m, err := r.policy.ParseModule(ctx, src)
	if err != nil {
		return true, err
	}
	return true, r.policy.SetCollaborationPolicy(ctx, collab, m)
}

// loadPolicies activates, at start, every collaboration's approved module.
func (r *Room) loadPolicies(ctx context.Context) error {
	return r.db.View(func(txn *badger.Txn) error {
		return collabs.Scan(r.txn(txn), func(c *collabRecord) error {
			if c.Policy.Active == "" {
				return nil
			}
			src, err := policySources.Get(r.txn(txn), store.In{Collab: c.ID, ID: c.Policy.Active})
			if err != nil {
				return err
			}
			m, err := r.policy.ParseModule(ctx, *src)
			if err != nil {
				return err
			}
			return r.policy.SetCollaborationPolicy(ctx, c.ID, m)
		})
	})
}
