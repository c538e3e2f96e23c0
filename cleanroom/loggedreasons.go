package cleanroom

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/opencleanroom/cleanroom/policy"
)

// A policy's reasons name the columns a request used ("grouping or
// filtering by member.column is not allowed"), and a refusal's reasons are
// its audit entry's, which every auditor of the collaboration keeps for
// good. A member names its own upload's columns (1 to 63 of a-z 0-9 . _ -),
// so a request that uses columns of its own could write text of its choosing
// (a person's address spelt with dots, a match key in hex) into the other
// members' logs, where the request need not even be allowed. The entry
// therefore names such a column by its place in its member's list,
// member.#N; a column the collaboration's settings name (an allowed
// dimension, a declared domain or bounds), which every member agreed to,
// keeps its name. The caller's own answer keeps the names.

// loggedDecision is d as c's audit entry records it (c may be nil). Every
// member.column of c's datasets is found anywhere in a reason, whatever
// surrounds it (a module's reason may end a sentence on one), the longest
// first, so that a declared column's name keeps a shorter undeclared one
// from matching inside it.
func (c *collabRecord) loggedDecision(d policy.Decision) policy.Decision {
	if c == nil || len(d.Reasons) == 0 {
		return d
	}
	declared := c.Settings.DeclaredColumns()
	type ref struct{ name, logged string }
	var refs []ref
	for _, m := range c.Members {
		ds := c.Datasets[m]
		if ds == nil {
			continue
		}
		for i, col := range ds.Columns {
			name := m + "." + col
			logged := name
			if !declared[name] {
				logged = m + ".#" + strconv.Itoa(i+1)
			}
			refs = append(refs, ref{name, logged})
		}
	}
	slices.SortFunc(refs, func(a, b ref) int { return cmp.Compare(len(b.name), len(a.name)) })
	reasons := make([]string, len(d.Reasons))
	for i, reason := range d.Reasons {
		var b strings.Builder
		for at := 0; at < len(reason); {
			found := false
			for _, r := range refs {
				if strings.HasPrefix(reason[at:], r.name) {
					b.WriteString(r.logged)
					at += len(r.name)
					found = true
					break
				}
			}
			if !found {
				b.WriteByte(reason[at])
				at++
			}
		}
		reasons[i] = b.String()
	}
	d.Reasons = reasons
	return d
}
