package cleanroom

import (
	"regexp"
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

// referenceToken matches a column reference as reasons write it: member
// and column names are of the same alphabet, joined by a dot.
var referenceToken = regexp.MustCompile(`[a-z0-9._-]+`)

// loggedDecision is d as c's audit entry records it (c may be nil).
func (c *collabRecord) loggedDecision(d policy.Decision) policy.Decision {
	if c == nil || len(d.Reasons) == 0 {
		return d
	}
	declared := c.Settings.DeclaredColumns()
	reasons := make([]string, len(d.Reasons))
	for i, reason := range d.Reasons {
		reasons[i] = referenceToken.ReplaceAllStringFunc(reason, func(ref string) string {
			for _, m := range c.Members {
				name, ok := strings.CutPrefix(ref, m+".")
				ds := c.Datasets[m]
				if !ok || ds == nil || declared[ref] {
					continue
				}
				if at := slices.Index(ds.Columns, name); at >= 0 {
					return m + ".#" + strconv.Itoa(at+1)
				}
			}
			return ref
		})
	}
	d.Reasons = reasons
	return d
}
