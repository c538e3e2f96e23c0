package policy

import (
	"errors"
	"fmt"
	"slices"
)

// Errors of the approval flow.
var (
	// ErrNotMember: only members propose and approve.
	ErrNotMember = errors.New("only members of the collaboration may propose or approve its policy")
	// ErrUnknownProposal: the hash names no pending proposal; the caller
	// should list the proposals and approve one of them by its exact hash.
	ErrUnknownProposal = errors.New("no pending proposal has that hash")
)

// Proposals is a collaboration's policy state: the active module's hash and
// the modules proposed but not yet approved by every member. The room keeps
// it (as JSON) with the collaboration, and the modules' sources apart: a
// collaboration's record is read on every request to it, and sources are up
// to 64 KiB each.
type Proposals struct {
	Active  string               `json:"active,omitempty"` // SHA-256 of the active module
	Pending map[string]*Proposal `json:"pending,omitempty"`
}

// Proposal is a module waiting for approvals.
type Proposal struct {
	Proposer  string   `json:"proposer"`
	Approvals []string `json:"approvals"` // sorted member ids
}

// Propose records m, proposed by member, as pending. Proposing is also
// approving: the proposer's approval is recorded with it (a collaboration
// has at least two members, so a proposal never activates on its own). A
// member has one proposal pending at a time: a new one replaces its
// previous. dropped are the proposals that are no longer pending.
func (p *Proposals) Propose(member string, members []string, m *Module) (dropped []string, err error) {
	if !slices.Contains(members, member) {
		return nil, ErrNotMember
	}
	if p.Pending == nil {
		p.Pending = map[string]*Proposal{}
	}
	for h, prop := range p.Pending {
		if prop.Proposer == member && h != m.Hash {
			delete(p.Pending, h)
			dropped = append(dropped, h)
		}
	}
	if _, ok := p.Pending[m.Hash]; !ok {
		p.Pending[m.Hash] = &Proposal{Proposer: member}
	}
	_, more, err := p.Approve(member, members, m.Hash)
	slices.Sort(dropped)
	return append(dropped, more...), err
}

// Approve records member's approval of the module with this exact hash and
// reports whether that made it active: it is active once every current
// member has approved it. Activating a module discards the other pending
// proposals, which were made against the old policy; dropped are they and
// the module it replaces.
func (p *Proposals) Approve(member string, members []string, hash string) (activated bool, dropped []string, err error) {
	if !slices.Contains(members, member) {
		return false, nil, ErrNotMember
	}
	prop, ok := p.Pending[hash]
	if !ok {
		return false, nil, fmt.Errorf("%w (%.12s…)", ErrUnknownProposal, hash)
	}
	if !slices.Contains(prop.Approvals, member) {
		prop.Approvals = append(prop.Approvals, member)
		slices.Sort(prop.Approvals)
	}
	for _, m := range members {
		if !slices.Contains(prop.Approvals, m) {
			return false, nil, nil
		}
	}
	for h := range p.Pending {
		if h != hash {
			dropped = append(dropped, h)
		}
	}
	if p.Active != "" && p.Active != hash {
		dropped = append(dropped, p.Active)
	}
	slices.Sort(dropped)
	p.Active, p.Pending = hash, nil
	return true, dropped, nil
}
