package cleanroom

// The room's column cache evicts its oldest items once what it charges for
// them passes its budget. Were a joined column charged by its rows (the
// exact overlap times 2, 4 or 8 bytes; the join table likewise), a member
// would fill the cache to exactly its budget with a dictionary column of
// its own list (whose bytes it computes from its own values), match one
// target and made-up people, and read from the latency of a refused query
// (no epsilon) whether the victim's joined column was evicted (the overlap
// was 1) or not (0). The cache charges what depends on a join by the
// largest join the lists allow (joinRows), never by the overlap.

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAttackRedteamCacheSizeMembership(t *testing.T) {
	if testing.Short() || atkRace {
		t.Skip("times queries, which the race detector and -short distort; .ci/run runs it in its timing step")
	}
	const budget = 1 << 20                             // the room's ColumnMemory, which the attacker knows (or calibrates with lists of made-up people)
	const victimSize, junk, perDay = 100_000, 3800, 10 // values of at most 256 bytes: 3,801 rows hold the budget
	clk := &redteamClock{at: time.Now().UTC().Truncate(24 * time.Hour).Add(time.Hour)}
	bounds := map[string][2]float64{atkVictim + ".revenue": {0, 1000}, atkAttacker + ".v": {0, 100}}
	tr := startRoomAt(t, clk.now, func(c *Config) { c.ColumnMemory = budget })
	s := newAttackScene(t, tr, attackOpts{settings: map[string]any{"epsilon_match": 0.001}, bounds: bounds, noUpload: true})
	emails := make([]string, victimSize)
	for i := range emails {
		emails[i] = atkEmail(10_000 + i)
	}
	s.uploadRawParts(s.victim, writeRawList(t, emails, []string{"revenue"}, func(i int) []string {
		return []string{atkValue("revenue", 10_000+i)}
	}), []string{"revenue"}, 50_000)

	refused := func(col string) time.Duration { return s.refusedROI(t, col) }
	// The pad column's dictionary: every row a distinct value, their
	// bytes (25 a value plus its length) summing to the budget exactly.
	rowsN := 1 + junk
	total := budget - 25*rowsN - rtCacheSlack
	pad := func(tag string, i int) string {
		n := total / rowsN
		if i < total%rowsN {
			n++
		}
		p := fmt.Sprintf("%s-%d-", tag, i)
		return p + strings.Repeat("x", n-len(p))
	}
	probes := timingProbes(20, 1237, 200_000, 17)
	var c calibration
	charged := map[bool][]int64{} // what the cache charged for the match's items before the probe, by the target's presence
	runs := 0
	for i, p := range probes {
		if runs > 0 && runs%perDay == 0 {
			clk.advance(24 * time.Hour)
		}
		runs++
		tag := fmt.Sprintf("cs%d", i)
		list := []string{atkEmail(p.id)}
		for j := range junk {
			list = append(list, atkJunk(tag, j).email)
		}
		s.uploadRaw(s.attacker, writeRawList(t, list, []string{"v", "pad"}, func(r int) []string {
			return []string{"1", pad(tag, r)}
		}), []string{"v", "pad"})
		if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
			t.Fatalf("probe %d: match: %v", i, err)
		}
		refused(atkVictim + ".revenue") // the victim's joined column: 0 or a few bytes
		refused(atkAttacker + ".v")     // the attacker's columns, pad the last: the cache at its budget, or over
		charged[p.in] = append(charged[p.in], runCharge(t, tr, s.collab))
		probe := refused(atkVictim + ".revenue") // cold if the victim's column was evicted
		warm := min(refused(atkVictim+".revenue"), refused(atkVictim+".revenue"))
		signal := float64(probe-warm) / float64(time.Millisecond)
		if i < 2 {
			continue
		}
		c.add(p.calib, p.in, signal)
	}
	// What the cache charges is the same whether the target matched.
	for _, in := range []bool{true, false} {
		for _, b := range charged[in] {
			if !slices.Contains(charged[!in], b) {
				t.Errorf("the cache charged %d bytes with the target in the victim's list %v only", b, in)
				break
			}
		}
	}
	r := c.score(t, "membership read from the column cache's eviction")
	bound := timingBound(r.trials)
	t.Logf("%s (bound %.1f%%)", pct(r.right, r.trials), 100*bound)
	if r.exceeds(bound) {
		t.Errorf("the attacker read %s of the targets' membership from the cache's eviction, above the bound %.1f%%", pct(r.right, r.trials), 100*bound)
	}
}

// rtCacheSlack leaves the cache this many bytes below its budget (10,000:
// a control, within chance whatever the cache charges).
const rtCacheSlack = 0

// runCharge is what the cache charges for the items of collab's latest
// match (its join, and the columns in its order): items of earlier runs
// stay until something evicts them.
func runCharge(t *testing.T, tr *testRoom, collab string) int64 {
	t.Helper()
	c, err := tr.room.sharedCollab(collab)
	if err != nil || c.Match == nil {
		t.Fatalf("collaboration %s: no match (%v)", collab, err)
	}
	ref := joinRef(c.ID, c.Match.Run)
	cache := &tr.room.cache
	cache.mu.Lock()
	defer cache.mu.Unlock()
	var n int64
	for key, it := range cache.items {
		if key == ref || strings.Contains(key, ref+"/") {
			n += it.size
		}
	}
	return n
}
