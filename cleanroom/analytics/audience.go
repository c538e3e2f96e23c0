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
	b := p.newBlock(true)
	for lo := 0; lo < t.Len(); lo += blockRows {
		if lo%checkEvery == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		b.at(t, lo, min(lo+blockRows, t.Len()))
		clear(b.slots)
		p.filter(b, 1)
		for j, s := range b.slots {
			if s == 0 {
				rows = append(rows, b.rows[member][j])
			}
		}
	}
	slices.Sort(rows)
	return rows, nil
}
