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
// it (as JSON) with the collaboration.
type Proposals struct {
	Active       string               `json:"active,omitempty"`        // SHA-256 of the active module
	ActiveSource []byte               `json:"active_source,omitempty"` // its source, to load it again
	Pending      map[string]*Proposal `json:"pending,omitempty"`
}

// Proposal is a module waiting for approvals.
type Proposal struct {
	Source    []byte   `json:"source"`
	Proposer  string   `json:"proposer"`
	Approvals []string `json:"approvals"` // sorted member ids
}

// Propose records m, proposed by member, as pending. Proposing is also
// approving: the proposer's approval is recorded with it (a collaboration
// has at least two members, so a proposal never activates on its own).
func (p *Proposals) Propose(member string, members []string, m *Module) error {
	if !slices.Contains(members, member) {
		return ErrNotMember
	}
	if p.Pending == nil {
		p.Pending = map[string]*Proposal{}
	}
	if _, ok := p.Pending[m.Hash]; !ok {
		p.Pending[m.Hash] = &Proposal{Source: m.Source, Proposer: member}
	}
	_, err := p.Approve(member, members, m.Hash)
	return err
}

// Approve records member's approval of the module with this exact hash and
// reports whether that made it active: it is active once every current
// member has approved it. Activating a module discards the other pending
// proposals, which were made against the old policy.
func (p *Proposals) Approve(member string, members []string, hash string) (activated bool, err error) {
	if !slices.Contains(members, member) {
		return false, ErrNotMember
	}
	prop, ok := p.Pending[hash]
	if !ok {
		return false, fmt.Errorf("%w (%.12s…)", ErrUnknownProposal, hash)
	}
	if !slices.Contains(prop.Approvals, member) {
		prop.Approvals = append(prop.Approvals, member)
		slices.Sort(prop.Approvals)
	}
	for _, m := range members {
		if !slices.Contains(prop.Approvals, m) {
			return false, nil
		}
	}
	p.Active, p.ActiveSource = hash, prop.Source
	p.Pending = nil
	return true, nil
}
