package client

import (
	"fmt"
	"slices"
	"strings"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// Steps a collaboration waits for before its match.
const (
	StepAccept    = "accept"    // a member has not accepted the settings
	StepUpload    = "upload"    // a member has not uploaded its list
	StepReencrypt = "reencrypt" // a member has to re-encrypt another's set (blinded)
	// StepReupload: a member has to upload its list again, because another
	// member's re-encryption of it failed the room's checks (blinded).
	StepReupload = "reupload"
)

// Pending is one step a collaboration waits for before it can be matched:
// who has to act, and how.
type Pending struct {
	Member string `json:"member"` // who has to act
	Step   string `json:"step"`   // StepAccept, StepUpload or StepReencrypt
	// For StepReencrypt: whose set, how many members' keys it carries and
	// how many it needs.
	Owner  string `json:"owner,omitempty"`
	Layers int    `json:"layers,omitempty"`
	Keys   int    `json:"keys,omitempty"`
	// For StepReupload: the member whose re-encryption failed.
	RefusedBy string `json:"refused_by,omitempty"`
}

func (p Pending) String() string {
	switch p.Step {
	case StepAccept:
		return p.Member + " to accept the collaboration"
	case StepUpload:
		return p.Member + " to upload"
	case StepReencrypt:
		return fmt.Sprintf("%s to re-encrypt %s's set (it carries %d of %d keys)", p.Member, p.Owner, p.Layers, p.Keys)
	case StepReupload:
		return fmt.Sprintf("%s to upload its list again (%s's re-encryption of it failed the room's checks)", p.Member, p.RefusedBy)
	}
	return p.Member + " to " + p.Step
}

// Waiting says in one line what a collaboration waits for, e.g.
// "waiting for pulsefit to upload; coursely to accept the collaboration".
func Waiting(pending []Pending) string {
	if len(pending) == 0 {
		return "ready to match"
	}
	parts := make([]string, len(pending))
	for i, p := range pending {
		parts[i] = p.String()
	}
	return "waiting for " + strings.Join(parts, "; ")
}

// PendingSteps lists what the collaboration v waits for before its match:
// the members yet to accept, then those yet to upload, then, in blinded
// mode, each set's next re-encryption (the room relays a set to the other
// members in their order), each in the order of the members. None means
// every set is ready to match.
func PendingSteps(v *api.Collaboration) []Pending {
	var accept, upload, reencrypt []Pending
	for _, m := range v.Members {
		d := v.Datasets[m]
		switch {
		case !v.Accepted[m]:
			accept = append(accept, Pending{Member: m, Step: StepAccept})
		case d == nil:
			upload = append(upload, Pending{Member: m, Step: StepUpload})
		case d.RelayRefused != "":
			upload = append(upload, Pending{Member: m, Step: StepReupload, RefusedBy: d.RelayRefused})
		case !d.Ready && v.Mode == api.ModeBlinded:
			if next := nextMember(v.Members, m, d.Layers); next != "" {
				reencrypt = append(reencrypt, Pending{Member: next, Step: StepReencrypt, Owner: m, Layers: d.Layers, Keys: len(v.Members)})
			}
		}
	}
	return slices.Concat(accept, upload, reencrypt)
}

// nextMember is who re-encrypts owner's set when it carries layers keys:
// the other members, in order.
func nextMember(members []string, owner string, layers int) string {
	var others []string
	for _, m := range members {
		if m != owner {
			others = append(others, m)
		}
	}
	if layers >= 1 && layers-1 < len(others) {
		return others[layers-1]
	}
	return ""
}
