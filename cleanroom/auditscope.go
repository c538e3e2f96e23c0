package cleanroom

import (
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/policy"
)

// Audit scopes. The audit log spans every collaboration in the room, and
// its entries tell who took part in which collaboration, the sizes of their
// lists and matches, and when they queried. An auditor works for one
// partner P and exports only what concerns P (audit.Scope, as a sparse
// bundle with a proof per entry):
//
//   - every entry of a collaboration P is a member of, whoever made it,
//     from the entry that created it: the members' actions, the room's on
//     their behalf, and refusals of anyone else's attempt on the
//     collaboration's id (probes by non-members, a refused attempt to
//     create a collaboration under that id), but another member's
//     activations (below). Refusals of requests that named the id before
//     the collaboration existed stay out, and are not even read (the index
//     is sought from the creating entry, audit.Scope.Since): whoever
//     creates an id would otherwise read who had asked for it, or time how
//     many had;
//   - the room-level entries (those of no collaboration) of P's own
//     principals: P, its analysts and its auditors.
//
// Another member's activations (policy.ActionAudienceActivate), answered
// or refused, are left out. An activation is exact and
// goes to the member the settings name alone (docs/PRIVACY.md); its entry
// says whether the room answered and the audience's size, and P changes
// its own list at will: between two of the other member's activations of
// the same segment, a list with one person more or less makes the second
// one person away from the first exactly when that person is in the other
// list, which the closeness guard refuses. Left out, each activation is
// still one entry of the room's, answered or refused alike, so the tree
// size says no more than that one happened.
//
// P's collaborations are read from the room's collaboration records, whose
// members are fixed when they are created. Other collaborations' entries,
// and other principals' room-level entries (the operator's registrations
// among them), are left out. A room auditor (policy.RoleRoomAuditor), whom
// the operator registers as such, and the operator export the whole log.
//
// Every sparse bundle is proved against the room's signed checkpoints,
// whose tree size tells the auditor how many entries the room holds in
// all: the number of actions in the room, not what they were.

// auditScope returns what the auditor who may export.
func (r *Room) auditScope(who *actor) (audit.Scope, error) {
	p := who.Partner
	if p == "" {
		return audit.Scope{}, fmt.Errorf("cleanroom: auditor %s works for no partner", who.ID)
	}
	s := audit.Scope{Since: map[string]int64{}}
	created := map[string]*collabRecord{}
	// A collaboration is the partner's once it accepted it (or created
	// it). Until then its id, which its creator chose, is no text the
	// partner agreed to keep, and is in every entry of it, the partner's
	// own reads and refusal of the offer too: those are the room
	// auditor's and the operator's to see.
	err := r.db.View(func(txn *badger.Txn) error {
		err := collabs.Scan(r.txn(txn), func(c *collabRecord) error {
			if c.isMember(p) && (c.Accepted[p] || c.CreatedBy == p) {
				s.Collaborations = append(s.Collaborations, c.ID)
				created[c.ID] = c
				s.Since[c.ID] = c.CreatedEntry
			}
			return nil
		})
		if err != nil {
			return err
		}
		return principals.Scan(r.txn(txn), func(pr *principalRecord) error {
			if pr.Role != policy.RoleRoomAuditor && pr.partner() == p {
				s.Principals = append(s.Principals, pr.ID)
			}
			return nil
		})
	})
	if err != nil {
		return audit.Scope{}, fmt.Errorf("cleanroom: reading an auditor's scope: %w", err)
	}
	own := map[string]bool{}
	for _, id := range s.Principals {
		own[id] = true
	}
	s.Keep = func(_ int64, e audit.Entry) bool {
		if created[e.Collaboration].predates(e) {
			return false
		}
		return e.Action != string(policy.ActionAudienceActivate) || own[e.Principal]
	}
	s.Description = fmt.Sprintf("partner %s: collaborations [%s] from their creation but other members' activations; room-level entries of principals [%s]",
		p, strings.Join(s.Collaborations, " "), strings.Join(s.Principals, " "))
	return s, nil
}

// predates reports whether e, an entry of c's id that a scope with Since
// selected, was decided before c was created. Since leaves out the entries
// before c's creating entry; a record without that entry's index (an
// older room's) has only its creation time to go by.
func (c *collabRecord) predates(e audit.Entry) bool {
	return c != nil && c.CreatedEntry == 0 && e.Time.Before(c.Created)
}
