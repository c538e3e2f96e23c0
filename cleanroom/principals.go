package cleanroom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

var roles = map[string]bool{policy.RolePartner: true, policy.RoleAnalyst: true, policy.RoleAuditor: true, policy.RoleRoomAuditor: true, policy.RoleOperator: true}

// registerPrincipal registers a partner, analyst, auditor or room auditor
// by its public JWK set (operator only). A room auditor works for no
// partner: registering one is how the operator grants the whole audit log.
func (r *Room) registerPrincipal(ctx context.Context, who *actor, p api.Principal) error {
	a := act{action: policy.ActionPartnerRegister}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return err
	}
	if !crypto.ValidPartnerName(p.ID) || p.ID == OperatorID || p.ID == "room" || p.ID == "anonymous" {
		return badRequest("a principal id is 1-63 of a-z 0-9 . _ - and not a reserved name")
	}
	if !roles[p.Role] || p.Role == policy.RoleOperator {
		return badRequest("role must be partner, analyst, auditor or room-auditor")
	}
	if (p.Role == policy.RolePartner || p.Role == policy.RoleRoomAuditor) != (p.Partner == "") {
		return badRequest("analysts and auditors name the partner they work for; partners and room auditors name none")
	}
	raw, err := json.Marshal(p.Keys)
	if err != nil {
		return badRequest("keys must be a JWK set")
	}
	if _, err := crypto.ParsePublicKeys(raw); err != nil {
		return badRequest("keys must be a public JWK set with one Ed25519 signing key and one X25519 key")
	}
	rec := principalRecord{ID: p.ID, Role: p.Role, Partner: p.Partner, Keys: raw, Added: r.now().UTC()}
	sum := sha256.Sum256(raw)
	refs := []audit.DataRef{{Name: principals.Key(p.ID), Digest: hex.EncodeToString(sum[:]), Bytes: int64(len(raw))}}
	err = r.commit(ctx, who, a, d, refs, "", func(tx *store.Tx) error {
		if p.Partner != "" {
			if partner, err := principals.Get(tx.Txn, p.Partner); err != nil || partner.Role != policy.RolePartner {
				return badRequest("the partner an analyst or auditor works for must be registered first")
			}
		}
		switch exists, err := principals.Exists(tx.Txn, p.ID); {
		case err != nil:
			return err
		case exists:
			return conflict("a principal with this id is already registered")
		}
		return principals.Put(tx, p.ID, &rec)
	})
	if err != nil {
		return err
	}
	// Registered whatever the warming says: a record that cannot be read
	// now is read (and refused, if it must be) when a token names it.
	r.admitIssuer(p.ID)
	return nil
}

// loadIssuers admits every registered principal as an issuer when the room
// opens (admitIssuer).
func (r *Room) loadIssuers(context.Context) error {
	var ids []string
	err := r.db.View(func(txn *badger.Txn) error {
		return principals.Scan(r.txn(txn), func(p *principalRecord) error {
			ids = append(ids, p.ID)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("cleanroom: reading the registered principals: %w", err)
	}
	for _, id := range ids {
		if err := r.admitIssuer(id); err != nil {
			return err
		}
	}
	return nil
}

// admitIssuer reads a registered principal: its record into the record
// cache, its keys, parsed, into keys, and its id into the issuers. A
// token's first check for the principal then costs what every later one
// does, and what a check for an id nobody registered costs (verifyToken):
// the time of a refusal tells neither which ids are registered nor when
// one was.
func (r *Room) admitIssuer(id string) error {
	r.issuers.Store(id, struct{}{})
	p, err := r.principal(id)
	if err != nil {
		return fmt.Errorf("cleanroom: reading principal %s: %w", id, err)
	}
	r.tokenKey(p) // a key that does not parse is refused as it is read
	return nil
}

// self returns the caller's own registration: its id, role and partner.
func (r *Room) self(ctx context.Context, who *actor) (*api.Principal, error) {
	a := act{action: policy.ActionPrincipalSelf}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if err := r.commit(ctx, who, a, d, nil, "", nil); err != nil {
		return nil, err
	}
	return &api.Principal{ID: who.ID, Role: who.Role, Partner: who.Partner, Keys: who.Keys}, nil
}

// requestKey returns the caller's own request key (api.RequestKey), under
// which the log digests the request ids of its entries.
func (r *Room) requestKey(ctx context.Context, who *actor) (*api.RequestKey, error) {
	a := act{action: policy.ActionPrincipalSelf}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	key, err := r.audit.RequestKey(who.ID)
	if err != nil {
		return nil, err
	}
	if err := r.commit(ctx, who, a, d, nil, "", nil); err != nil {
		return nil, err
	}
	return &api.RequestKey{Principal: who.ID, Key: key}, nil
}

// principal returns a registered principal. The record is shared with
// every other request (Room.records): it must not be modified.
func (r *Room) principal(id string) (*principalRecord, error) {
	var p *principalRecord
	err := r.db.View(func(txn *badger.Txn) (err error) {
		p, err = principals.GetShared(r.txn(txn), r.records.principals, id)
		return
	})
	return p, err
}

// publicKeys returns a principal's parsed public keys.
func (r *Room) publicKeys(p *principalRecord) (*crypto.PublicKeys, error) {
	k, err := r.tokenKey(p)
	if err != nil {
		return nil, err
	}
	return k.keys, nil
}

// tokenKey returns a principal's signing key, parsed once for the keys
// its record holds: a record whose keys changed is parsed again.
func (r *Room) tokenKey(p *principalRecord) (*tokenKey, error) {
	if k, ok := r.keys.Load(p.ID); ok && bytes.Equal(k.(*tokenKey).raw, p.Keys) {
		return k.(*tokenKey), nil
	}
	k, err := newTokenKey(bytes.Clone(p.Keys))
	if err != nil {
		return nil, err
	}
	r.keys.Store(p.ID, k)
	return k, nil
}

// principals lists the registered principals (operator only).
func (r *Room) principals(ctx context.Context, who *actor) ([]api.Principal, error) {
	a := act{action: policy.ActionRoomRead}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if err := r.commit(ctx, who, a, d, nil, "", nil); err != nil {
		return nil, err
	}
	var out []api.Principal
	err = r.db.View(func(txn *badger.Txn) error {
		return principals.Scan(r.txn(txn), func(p *principalRecord) error {
			out = append(out, api.Principal{ID: p.ID, Role: p.Role, Partner: p.Partner, Keys: p.Keys})
			return nil
		})
	})
	return out, err
}
