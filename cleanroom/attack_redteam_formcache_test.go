package cleanroom

// What a column holds follows the member's whole list: a number column's
// form is fit over every row (int16s, int32s or float64s), a dictionary
// over every distinct value. Were the column cache to charge a column by
// those bytes, another member would fill the cache, with columns of its
// own whose charges it computes, to just under the budget less the
// victim's column, and read from the latency of a refused query (no
// epsilon) whether the victim's column was evicted, and so whether the
// victim's list holds one person:
//
//   - int32: a person whose revenue needs int32s (40,000 among values
//     under 1,000) would double the victim's column's charge;
//   - dict: a person whose plan no one else in the victim's list has would
//     add 25 + len(plan) bytes to the victim's plan column.
//
// The two lists are neighbours (one person present or not); the
// attacker's list is made-up people only, so nothing comes through the
// overlap, and the only epsilon spent is the match releases' (0.001
// each). The room charges a column by public facts alone (columnCache.
// charge): numbers 8 bytes a row, a dictionary 4 bytes a row and a fixed
// allowance.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAttackRedteamFormCacheCharge(t *testing.T) {
	if testing.Short() || atkRace {
		t.Skip("times queries, which the race detector and -short distort; .ci/run runs it in its timing step")
	}
	for _, variant := range []string{"int32", "dict"} {
		t.Run(variant, func(t *testing.T) { formCacheCharge(t, variant) })
	}
}

func formCacheCharge(t *testing.T, variant string) {
	const (
		budget  = 1 << 20 // ColumnMemory: known, or found with lists of made-up people
		J       = 4000    // the attacker's list: joinRows = min(list sizes)
		base    = 100_000 // the victim's regular customers
		fresh   = 100     // new customers each refresh adds (MinUploadDifference)
		calib   = 10      // trials whose answer the attacker knows, interleaved
		targets = 40
		perDay  = 10
		tPlan   = "enterprise-plus" // the target's plan, in the dict variant: nobody else's
	)
	vcols := []string{"revenue"}
	if variant == "dict" {
		vcols = append(vcols, "plan") // no bounds: decoded alongside, as a dictionary
	}
	// What the victim's joined columns charge without the target, and what
	// the target adds: from the room's code and what the attacker assumes
	// of the victim's values (revenues under 1,000; the four plans).
	victim0, delta := int64(2*J), int64(2*J)
	if variant == "dict" {
		dict := int64(0)
		for _, p := range atkPlans {
			dict += 25 + int64(len(p))
		}
		victim0, delta = 2*J+4*J+dict, 25+int64(len(tPlan))
	}
	clk := &redteamClock{at: time.Now().UTC().Truncate(24 * time.Hour).Add(time.Hour)}
	bounds := map[string][2]float64{atkVictim + ".revenue": {0, 100_000}, atkAttacker + ".v": {0, 100}}
	tr := startRoomAt(t, clk.now, func(c *Config) { c.ColumnMemory = budget })
	s := newAttackScene(t, tr, attackOpts{settings: map[string]any{"epsilon_match": 0.001}, bounds: bounds, noUpload: true})

	// The attacker's list: J made-up people, v = 1 (int16s: 2·J) and a
	// dictionary column pad (4·J + Σ(25 + len)), stored in that order
	// after the join (8·J) and the victim's columns. The pad puts the
	// total at budget − delta/2 without the target: with it, the total is
	// over, and the oldest item of this run (the join) goes; the probe
	// then reloads the join, which evicts the victim's revenue, decoded
	// again (every part of the victim's list).
	padTotal := budget - delta/2 - 8*J - victim0 - 31*J // Σ len over the pad's J distinct values
	pad := func(i int) string {
		n := padTotal / J
		if int64(i) < padTotal%J {
			n++
		}
		p := fmt.Sprintf("pad-%d-", i)
		return p + strings.Repeat("x", int(n)-len(p))
	}
	var junk []string
	for j := range J {
		junk = append(junk, atkJunk("fc", j).email)
	}
	s.uploadRaw(s.attacker, writeRawList(t, junk, []string{"v", "pad"}, func(r int) []string { return []string{"1", pad(r)} }), []string{"v", "pad"})

	type trial struct{ in, calib bool }
	trials := []trial{{true, false}, {false, false}} // warm-up, not scored
	for i := range targets {
		if i%(targets/calib*2) == 0 {
			trials = append(trials, trial{true, true}, trial{false, true})
		}
		trials = append(trials, trial{in: i%2 == 0})
	}
	var c calibration
	evicted := map[bool]int{}
	nextFresh := 500_000
	for i, tl := range trials {
		if i > 0 && i%perDay == 0 {
			clk.advance(24 * time.Hour)
		}
		// The victim refreshes its list: its customers, fresh ones, and
		// the target or not.
		var emails []string
		var values [][]string
		row := func(id int) []string {
			r := []string{strconv.Itoa(int(atkMix(id, 6) % 1000))}
			if variant == "dict" {
				r = append(r, atkValue("plan", id))
			}
			return r
		}
		for k := range base {
			emails, values = append(emails, atkEmail(10_000+k)), append(values, row(10_000+k))
		}
		for range fresh {
			emails, values = append(emails, atkEmail(nextFresh)), append(values, row(nextFresh))
			nextFresh++
		}
		if tl.in {
			r := row(900_000 + i)
			if variant == "dict" {
				r[1] = tPlan
			} else {
				r[0] = "40000"
			}
			emails, values = append(emails, atkEmail(900_000+i)), append(values, r)
		}
		s.uploadRaw(s.victim, writeRawList(t, emails, vcols, func(r int) []string { return values[r] }), vcols)
		if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
			t.Fatalf("trial %d: match: %v", i, err)
		}
		s.refusedROI(t, atkVictim+".revenue") // the join, then the victim's columns
		s.refusedROI(t, atkAttacker+".v")     // v and pad: the cache at budget − delta/2, or over
		if cr, err := tr.room.sharedCollab(s.collab); err == nil && cr.Match != nil {
			if _, ok := tr.room.cache.lookup(joinRef(cr.ID, cr.Match.Run)); !ok {
				evicted[tl.in]++
			}
		}
		probe := s.refusedROI(t, atkVictim+".revenue")
		warm := min(s.refusedROI(t, atkVictim+".revenue"), s.refusedROI(t, atkVictim+".revenue"))
		if i >= 2 {
			c.add(tl.calib, tl.in, float64(probe-warm)/float64(time.Millisecond))
		}
	}
	t.Logf("the join evicted by the fill (room's view): target in the victim's list %d, not %d", evicted[true], evicted[false])
	r := c.score(t, "presence of the target read from the cache charge of the victim's column ("+variant+")")
	bound := timingBound(r.trials)
	t.Logf("%s (bound %.1f%%); the attacker's epsilon spent %g", pct(r.right, r.trials), 100*bound, s.budgetSpent(s.attacker))
	if r.exceeds(bound) {
		t.Errorf("the attacker read %s of the targets' presence from the cache charge of the victim's column (%s), above the bound %.1f%%", pct(r.right, r.trials), variant, 100*bound)
	}
}
