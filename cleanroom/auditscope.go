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
//   - every entry of a collaboration P is a member of, whoever made it: the
//     members' actions, the room's on their behalf, and refusals of anyone
//     else's attempt on the collaboration's id (probes by non-members, a
//     refused attempt to create a collaboration under that id);
//   - the room-level entries (those of no collaboration) of P's own
//     principals: P, its analysts and its auditors.
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
	var s audit.Scope
	err := r.db.View(func(txn *badger.Txn) error {
		err := collabs.Scan(r.txn(txn), func(c *collabRecord) error {
			if c.isMember(p) {
				s.Collaborations = append(s.Collaborations, c.ID)
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
	s.Description = fmt.Sprintf("partner %s: collaborations [%s]; room-level entries of principals [%s]",
		p, strings.Join(s.Collaborations, " "), strings.Join(s.Principals, " "))
	return s, nil
}
