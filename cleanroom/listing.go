package cleanroom

import (
	"context"
	"errors"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/policy"
)

// collaborations lists the collaborations that concern the caller: those its
// partner is a member of, and every one for a room-wide auditor.
func (r *Room) collaborations(ctx context.Context, who *actor) ([]api.CollaborationSummary, error) {
	a := act{action: policy.ActionCollaborationList}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if err := r.commit(ctx, who, a, d, nil, "", nil); err != nil {
		return nil, err
	}
	out := []api.CollaborationSummary{}
	err = r.db.View(func(txn *badger.Txn) error {
		return collabs.Scan(r.txn(txn), func(c *collabRecord) error {
			if who.Role == policy.RoleRoomAuditor || c.isMember(who.partner()) {
				out = append(out, api.CollaborationSummary{ID: c.ID, Mode: c.Mode, Kind: c.Kind, Members: c.Members,
					CreatedBy: c.CreatedBy, Accepted: c.Accepted, Revoked: c.Revoked, NoiseOff: c.Settings.NoiseOff, Matched: c.Match != nil})
			}
			return nil
		})
	})
	return out, err
}

// budgetHistory returns the charges to a collaboration's privacy budget, as
// its audit log records them: the ledger over time, each charge under the
// member it was made for, and under its principal only for the caller's
// own member.
func (r *Room) budgetHistory(ctx context.Context, who *actor, collab string) ([]api.BudgetEvent, error) {
	c, _, err := r.readCollab(ctx, who, collab, policy.ActionBudgetRead)
	if err != nil {
		return nil, err
	}
	out := []api.BudgetEvent{}
	var spent int64
	members := map[string]string{} // principal → the member it acts for
	// From the creating entry: what named the id before cost nothing, and
	// its number is none of the members' business, in time either.
	s := audit.Scope{Collaborations: []string{collab}, Since: map[string]int64{collab: c.CreatedEntry}}
	err = r.audit.Entries(ctx, s, func(_ int64, e audit.Entry) error {
		if !e.Decision.Allow || e.EpsilonMicro <= 0 {
			return nil
		}
		m, ok := members[e.Principal]
		if !ok {
			switch p, err := r.principal(e.Principal); {
			case err == nil:
				m = p.partner()
			case !errors.Is(err, store.ErrNotFound): // the room's own actions: no member
				return err
			}
			members[e.Principal] = m
		}
		ev := api.BudgetEvent{At: e.Time, Member: m, Action: e.Action,
			Epsilon: float64(e.EpsilonMicro) / unitsPerEpsilon}
		if m == who.partner() {
			ev.Principal = e.Principal
		}
		spent += e.EpsilonMicro
		ev.Spent = float64(spent) / unitsPerEpsilon
		out = append(out, ev)
		return nil
	})
	slices.SortStableFunc(out, func(a, b api.BudgetEvent) int { return a.At.Compare(b.At) })
	return out, err
}
