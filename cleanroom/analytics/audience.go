package analytics

import (
	"context"
	"slices"
)

// Audience returns the rows, in member's own list, of the matched people
// that every filter keeps, ascending: an activation's audience. It is an
// exact answer, not a statistic: the room releases it only where every
// member consented (see docs/PRIVACY.md).
func Audience(ctx context.Context, t *Table, filters []Filter, member int) ([]uint32, error) {
	p := &Plan{Table: t, Filters: filters}
	var rows []uint32
	for i := range t.Len() {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if p.kept(i) {
			rows = append(rows, t.Rows[member][i])
		}
	}
	slices.Sort(rows)
	return rows, nil
}
