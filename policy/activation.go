package policy

import (
	"fmt"
	"slices"
)

// Activation is the settings' consent to activation: which members may
// receive an audience (their own customers in the overlap who fall in a
// segment, by their row numbers), the smallest audience the room returns,
// and how many activations each such member may make a day and in all.
// Without it no member receives an audience. Zero limits take the room's
// (DefaultActivation); Check refuses limits looser than the room's.
//
// An audience is exact, not differentially private: it tells the member
// which of its own customers are also the other members' customers (and,
// through the segment's filters, something of their attributes). That is
// what every member consents to by accepting settings that hold this block.
type Activation struct {
	Members     []string `json:"members"`
	MinAudience int64    `json:"min_audience,omitempty"`
	MaxPerDay   int      `json:"max_per_day,omitempty"`
	MaxTotal    int      `json:"max_total,omitempty"`
}

// DefaultActivation is the room's activation limits: audiences of at least
// 1,000 people (the size clean rooms commonly require of an audience list),
// five activations a member a day and fifty in all.
func DefaultActivation() Activation {
	return Activation{MinAudience: 1000, MaxPerDay: 5, MaxTotal: 50}
}

// ActivationLimits returns the settings' activation block with the room's
// defaults in place of its zero limits, and false if the settings allow no
// activation.
func (s Settings) ActivationLimits() (Activation, bool) {
	if s.Activation == nil {
		return Activation{}, false
	}
	a, d := *s.Activation, DefaultActivation()
	if a.MinAudience == 0 {
		a.MinAudience = d.MinAudience
	}
	if a.MaxPerDay == 0 {
		a.MaxPerDay = d.MaxPerDay
	}
	if a.MaxTotal == 0 {
		a.MaxTotal = d.MaxTotal
	}
	return a, true
}

// check refuses an activation block that names no member, names someone
// who is not a member, or is looser than the room's limits.
func (a *Activation) check(members []string) error {
	if len(a.Members) == 0 {
		return fmt.Errorf("settings: activation.members: name the members that may receive an audience")
	}
	for i, m := range a.Members {
		if !slices.Contains(members, m) || slices.Contains(a.Members[:i], m) {
			return fmt.Errorf("settings: activation.members: %q is not a member of the collaboration, or is named twice", m)
		}
	}
	d := DefaultActivation()
	switch {
	case a.MinAudience < 0 || a.MaxPerDay < 0 || a.MaxTotal < 0:
		return fmt.Errorf("settings: activation: limits must not be negative")
	case a.MinAudience != 0 && a.MinAudience < d.MinAudience:
		return fmt.Errorf("settings: activation.min_audience: %d is looser than the room's %d", a.MinAudience, d.MinAudience)
	case a.MaxPerDay > d.MaxPerDay:
		return fmt.Errorf("settings: activation.max_per_day: %d is looser than the room's %d", a.MaxPerDay, d.MaxPerDay)
	case a.MaxTotal > d.MaxTotal:
		return fmt.Errorf("settings: activation.max_total: %d is looser than the room's %d", a.MaxTotal, d.MaxTotal)
	}
	return nil
}

// ActivationShape is what policy needs to know of an activation request:
// the columns its segment filters on, which are dimensions like a query's
// filters and held to the same rules.
type ActivationShape struct {
	FilterColumns []string `json:"filter_columns,omitempty"`
	Dimensions    []string `json:"dimensions,omitempty"`
}

// ModelShape is what policy needs to know of a model to train: its label's
// column, its features (columns of one member, held to the dimensions'
// rules: a tree's path is a conjunction of filters on them) and its
// epsilon, which is charged like a query's.
type ModelShape struct {
	Label      string   `json:"label"`
	Features   []string `json:"features"`
	Dimensions []string `json:"dimensions,omitempty"`
	Epsilon    float64  `json:"epsilon"`
}
