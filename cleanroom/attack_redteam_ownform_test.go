package cleanroom

// A member's own column, held in the join in 2, 4 or 8 bytes a row: were
// the form set by the values of the rows that matched, the attacker would
// give each target a value only a float64 holds, in a column of its own
// (everyone else: small integers), match once, and read from the latency
// of queries over that column (and from the form) whether the target's row
// is in the join, that is, whether the victim holds the target. The form
// follows every value of the member's list (decodePartAt), matched or not.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

const (
	ownFormTargets = 30     // 30 target columns + 2 reference columns: the upload's 32
	ownFormRows    = 60_000 // matched people besides the targets
	ownFormRounds  = 3      // a day: 30 x 3 + 2 x 4 = 98 queries, a member's share (100) of a day's 200
	ownFormDays    = 4      // 392 queries at epsilon 0.01: 3.92 of the member's share of 5
)

func TestAttackRedteamOwnColumnFormMembership(t *testing.T) {
	if testing.Short() || atkRace {
		t.Skip("times queries, which the race detector and -short distort; .ci/run runs it in its timing step")
	}
	right, n := ownColumnForm(t)
	bound := timingBound(n)
	t.Logf("membership read from the form of the attacker's own column: %s (bound %.1f%%)", pct(right, n), 100*bound)
	if float64(right)/float64(n) > bound {
		t.Errorf("the attacker read %s of the targets' membership, above the bound %.1f%%", pct(right, n), 100*bound)
	}
}

func ownColumnForm(t *testing.T) (right, n int) {
	cols := []string{"base", "flt"}
	bounds := map[string][2]float64{atkAttacker + ".base": {0, 100}, atkAttacker + ".flt": {0, 100}}
	for k := range ownFormTargets {
		c := fmt.Sprintf("t%02d", k)
		cols = append(cols, c)
		bounds[atkAttacker+"."+c] = [2]float64{0, 100}
	}
	// The attack runs over ownFormDays days of a member's share of the
	// daily queries (a collaboration lasts weeks); the room's daily limit
	// is raised to as many days' worth so that the test need not move the
	// clocks of the room and of the clients' tokens.
	tr := startRoomWith(t, func(c *Config) {
		d := policy.DefaultConstraints()
		d.MaxQueriesPerDay *= ownFormDays
		c.Defaults = &d
	})
	s := newAttackScene(t, tr, attackOpts{bounds: bounds, noUpload: true})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	s.ctx = ctx
	rng := rand.New(rand.NewPCG(7, 11))
	// People: [0, ownFormRows) in both lists; targets 1_000_000+k, half in
	// the victim's list.
	in := make([]bool, ownFormTargets)
	for k := range in {
		in[k] = rng.IntN(2) == 0
	}
	var victim []string
	for i := range ownFormRows {
		victim = append(victim, atkEmail(i))
	}
	for k := range ownFormTargets {
		if in[k] {
			victim = append(victim, atkEmail(1_000_000+k))
		}
	}
	s.uploadRaw(s.victim, writeRawList(t, victim, []string{"x"}, func(i int) []string { return []string{strconv.Itoa(i % 7)} }), []string{"x"})
	attacker := slices.Clone(victim[:ownFormRows])
	for k := range ownFormTargets {
		attacker = append(attacker, atkEmail(1_000_000+k))
	}
	s.uploadRaw(s.attacker, writeRawList(t, attacker, cols, func(i int) []string {
		v := strconv.Itoa(i % 100)
		row := []string{v, v + ".123456789012"}
		for k := range ownFormTargets {
			if i == ownFormRows+k {
				row = append(row, "1.23456789012")
			} else {
				row = append(row, v)
			}
		}
		return row
	}), cols)
	if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
		t.Fatalf("match: %v", err)
	}
	ask := func(col string) time.Duration {
		var ms []api.Metric
		for range 8 {
			ms = append(ms, api.Metric{Kind: api.MetricROI, Revenue: slices.Repeat([]string{atkAttacker + "." + col}, 8), Cost: &api.Cost{Value: 1}})
		}
		began := time.Now()
		if _, err := s.query(s.attacker, api.QuerySpec{Metrics: ms, Epsilon: 0.01}); err != nil {
			t.Fatalf("query of %s: %v", col, err)
		}
		return time.Since(began)
	}
	ask("base") // the first query decodes every column of the join
	// Each round asks every target column once, in a fresh order, with a
	// query of each reference column among them.
	times := map[string][]time.Duration{}
	for range ownFormDays {
		for r := range ownFormRounds + 1 {
			order := []string{"base", "flt"}
			if r < ownFormRounds {
				order = append(order, cols[2:]...)
			}
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			for _, c := range order {
				times[c] = append(times[c], ask(c))
			}
		}
	}
	// The least latency of a column: load on the machine only adds.
	low := func(ds []time.Duration) time.Duration { return slices.Min(ds) }
	mb, mf := low(times["base"]), low(times["flt"])
	mid := (mb + mf) / 2
	t.Logf("reference minima: int16 %v, float64 %v; epsilon spent %.2f", mb, mf, s.budgetSpent(s.attacker))
	// The forms themselves: one for every target, in the victim's list or
	// not.
	c, err := s.tr.room.sharedCollab(s.collab)
	if err != nil || c.Match == nil {
		t.Fatalf("the collaboration's match: %v", err)
	}
	forms := map[bool]map[float64]int{true: {}, false: {}}
	for k := range ownFormTargets {
		it, ok := s.tr.room.cache.lookup(joinedKey(c, c.Datasets[atkAttacker].Upload, 2+k))
		if !ok || it.col == nil || it.col.Len() == 0 {
			t.Fatalf("target %d's column is not in the room's cache", k)
		}
		forms[in[k]][float64(it.col.Bytes())/float64(it.col.Len())]++
	}
	t.Logf("bytes a row of the targets' columns: in the victim's list %v, not %v", forms[true], forms[false])
	where := map[bool]string{true: "in", false: "outside"}
	for _, side := range []bool{true, false} {
		for form := range forms[side] {
			if _, ok := forms[!side][form]; !ok {
				t.Errorf("targets %s the victim's list have their column held in %g bytes a row, and none %s it does", where[side], form, where[!side])
			}
		}
	}
	for k := range ownFormTargets {
		m := low(times[fmt.Sprintf("t%02d", k)])
		guess := (m >= mid) == (mf > mb)
		if guess == in[k] {
			right++
		}
	}
	return right, ownFormTargets
}
