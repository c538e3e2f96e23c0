package cleanroom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/policy"
)

// A collaboration's status (GET /v1/collaborations/{id}) is what its
// members ask most often and what changes least: the same view, rendered
// and encoded again for every request, would cost more than the rest of
// the handler. The room keeps each collaboration's answer encoded, beside
// the records it was rendered from: the collaboration record, each
// member's principal record (their keys) and the constraints policy
// decided. The record caches (store.Cache) return the same decoded record
// for as long as its stored bytes are unchanged, and a new one as soon as
// they change, so a request that reads the same records, by identity, and
// is decided the same constraints gets the same answer; any other request
// renders it anew. Every request still reads the stored records, is
// decided by policy and is recorded before it is answered.

// encodedJSON is a value already encoded as JSON, ending in a newline (as
// writeJSON writes one); the wrapper writes it as it is.
type encodedJSON []byte

// MarshalJSON implements json.Marshaler, for callers that embed the value
// in another.
func (e encodedJSON) MarshalJSON() ([]byte, error) { return e[:len(e)-1], nil }

// statusViews holds the latest status answer of each collaboration.
type statusViews struct {
	mu sync.RWMutex
	m  map[string]*statusView // by collaboration id
}

// maxStatusViews bounds statusViews: when full, it starts over (a room
// serves far fewer collaborations at once).
const maxStatusViews = 1024

// statusView is one collaboration's answer and what it was rendered from.
type statusView struct {
	collab  *collabRecord
	members []*principalRecord // in the order of collab.Members
	k       policy.Constraints
	body    encodedJSON
}

// lookup returns the answer rendered from exactly these records and
// constraints, or nil.
func (s *statusViews) lookup(c *collabRecord, members []*principalRecord, k *policy.Constraints) encodedJSON {
	s.mu.RLock()
	v := s.m[c.ID]
	s.mu.RUnlock()
	if v == nil || v.collab != c || !slices.Equal(v.members, members) || !sameConstraints(&v.k, k) {
		return nil
	}
	return v.body
}

// sameConstraints reports whether a and b are equal, field by field
// (TestSameConstraintsComparesEveryField keeps it to every field).
func sameConstraints(a, b *policy.Constraints) bool {
	return a.MinGroupSize == b.MinGroupSize && a.EpsilonPerQuery == b.EpsilonPerQuery &&
		a.EpsilonMinPerQuery == b.EpsilonMinPerQuery && a.EpsilonBudget == b.EpsilonBudget &&
		a.EpsilonMatch == b.EpsilonMatch && a.DeltaPerQuery == b.DeltaPerQuery && a.DeltaBudget == b.DeltaBudget &&
		a.MinListSize == b.MinListSize && a.MaxListSize == b.MaxListSize && a.MinUploadDifference == b.MinUploadDifference &&
		a.MaxQueriesPerDay == b.MaxQueriesPerDay && a.MaxMatchesPerDay == b.MaxMatchesPerDay &&
		a.MaxUploadsPerDay == b.MaxUploadsPerDay && slices.Equal(a.AllowedDimensions, b.AllowedDimensions) &&
		slices.Equal(a.AllowedMetrics, b.AllowedMetrics) && slices.Equal(a.NeverOutputColumns, b.NeverOutputColumns)
}

func (s *statusViews) store(v *statusView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) >= maxStatusViews {
		s.m = map[string]*statusView{}
	}
	s.m[v.collab.ID] = v
}

// collaboration returns where a collaboration stands, as who, a member,
// sees it: its status answer, decided and recorded as a read.
func (r *Room) collaboration(ctx context.Context, who *actor, id string) (encodedJSON, error) {
	var members []*principalRecord
	c, err := r.memberCollab(who, id, func(id string) (c *collabRecord, err error) {
		c, members, err = r.collabWithMembers(id)
		return c, err
	})
	if err != nil {
		return nil, err
	}
	a := act{action: policy.ActionCollaborationRead, collab: c}
	d, err := r.authorize(ctx, who, a)
	if err == nil {
		err = r.commit(ctx, who, a, d, nil, "", nil)
	}
	if err != nil {
		return nil, err
	}
	if body := r.statusViews.lookup(c, members, &d.Constraints); body != nil {
		return body, nil
	}
	v, err := r.view(c, d.Constraints)
	if err != nil {
		return nil, err
	}
	// The members' keys as read with the collaboration, so that the
	// answer is exactly that of the records it is kept for.
	for i, m := range c.Members {
		v.Keys[m] = slices.Clone(members[i].Keys)
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("cleanroom: encoding a collaboration's status: %w", err)
	}
	body = append(body, '\n')
	r.statusViews.store(&statusView{collab: c, members: members, k: d.Constraints, body: body})
	return body, nil
}

// errMemberMissing is a member whose principal record is not stored: the
// room's state is inconsistent.
var errMemberMissing = errors.New("cleanroom: a collaboration's member is not a registered principal")

// collabWithMembers reads collaboration id and its members' principal
// records in one transaction, through the record caches: the records are
// shared and must not be modified.
func (r *Room) collabWithMembers(id string) (*collabRecord, []*principalRecord, error) {
	var c *collabRecord
	var members []*principalRecord
	err := r.db.View(func(txn *badger.Txn) (err error) {
		t := r.txn(txn)
		if c, err = collabs.GetShared(t, r.records.collabs, id); err != nil {
			return err
		}
		members = make([]*principalRecord, len(c.Members))
		for i, m := range c.Members {
			switch p, err := principals.GetShared(t, r.records.principals, m); {
			case errors.Is(err, store.ErrNotFound):
				return errMemberMissing
			case err != nil:
				return err
			default:
				members[i] = p
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, notFound("collaboration")
	}
	if err != nil {
		return nil, nil, err
	}
	return c, members, nil
}
