package cleanroom

// Red-team attacks on the match run and what follows it, when the true
// overlap is one target or nobody.
//
// The attacker's list is one target and 1,000 made-up identifiers, so the
// join of its match is one row (the victim holds the target) or empty. It
// times its own requests: the match itself, the requests it makes right
// after (status, budget), and the next match, which deletes the join
// before it (retention.go, forget). Each target's runs are compared with
// controls: the same steps with lists of made-up identifiers only, whose
// joins are surely empty, run just after, so that the room's drift (the
// machine is shared) cancels.
//
// Each join part is a synced Badger commit, a millisecond or more on this
// machine's disk, made before the room stamps the run's time (released as
// api.MatchResult.At, to the nanosecond) and its audit entry's (in the
// attacker's own auditor's export). A join stored in as many parts as it
// needs would be one part for a join of one row and none for an empty one,
// and those timestamps, read against the moment the attacker sent the
// match, would tell the two apart: 88–90% of 40 targets, from either time. The
// match stores as many parts as the largest join the lists' sizes allow
// (joinParts), empty ones included, so the number of commits is the same
// whatever matched (TestJoinPartsPadded, at the part boundary too).
// TestAttackMatchRunTiming holds the attacker to chance plus three
// deviations (73.7%) with the release's time, the entry's, the match's own
// latency, the next match's (which deletes the join) and the status and
// budget reads right after a match.
//
// TestAttackMatchViewsDiffer: nothing the attacker reads after a match
// (status, budget, budget history, its collaborations, its own auditor's
// export: tree size, entries, their data references, rows, bytes and
// lengths) differs between a join of one row and an empty one, after the
// match or after the next, which deletes it: 0 of 62.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/policy"
)

// matchTimingScene is a victim's list of victimSize people, ids from
// 10,000, and an attacker that re-uploads and matches lists of one target
// and made-up people.
type matchTimingScene struct {
	s      *attackScene
	clk    *offsetClock
	runs   int
	perDay int
}

// offsetClock is the room's clock: real time, which a test moves forward
// by whole days, so that an attacker's probes run over several days, past
// the daily limits, as they would in life, while the room's timestamps
// keep the resolution of a real clock.
type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *offsetClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// offset is how far the room's clock is ahead of the attacker's.
func (c *offsetClock) offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.off
}

// newMatchTimingScene offers settings the victim has every reason to
// accept, being stricter than the room's defaults: each match release
// costs epsilon_match = 0.001.
func newMatchTimingScene(t *testing.T, victimSize int) *matchTimingScene {
	clk := &offsetClock{}
	s := newAttackScene(t, startRoomAt(t, clk.now, nil), attackOpts{settings: map[string]any{"epsilon_match": 0.001}, noUpload: true})
	s.ctx = context.Background()
	ids := make([]int, victimSize)
	for i := range ids {
		ids[i] = 10_000 + i
	}
	s.uploadRaw(s.victim, writeAttackList(t, atkRows(ids), atkVictimCols), atkVictimCols)
	s.tr.partner(redteamAuditor, policy.RoleAuditor, atkAttacker)
	return &matchTimingScene{s: s, clk: clk, perDay: 10}
}

// list uploads the attacker's list: target (if >= 0) and 1,000 made-up
// people tagged tag, moving to the next day when the day's uploads and
// match runs are spent.
func (m *matchTimingScene) list(t *testing.T, tag string, target int) {
	if m.runs > 0 && m.runs%m.perDay == 0 {
		m.clk.advance(24 * time.Hour)
	}
	m.runs++
	var rows []atkRow
	if target >= 0 {
		rows = append(rows, atkRow{atkEmail(target), target})
	}
	for j := range 1000 {
		rows = append(rows, atkJunk(tag, j))
	}
	if err := m.s.upload(m.s.attacker, rows, atkAttackerCols); err != nil {
		t.Fatalf("upload %s: %v", tag, err)
	}
}

// timed returns how long f took.
func timed(t *testing.T, what string, f func() error) time.Duration {
	began := time.Now()
	err := f()
	d := time.Since(began)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return d
}

// calibration holds a timing attack's statistic for each probe by what
// the attacker knows of it: calibration probes of people it knows are in
// the victim's list or not, and targets, in it or not in truth.
type calibration struct{ calP, calA, present, absent []float64 }

func (c *calibration) add(calib, in bool, v float64) {
	switch {
	case calib && in:
		c.calP = append(c.calP, v)
	case calib:
		c.calA = append(c.calA, v)
	case in:
		c.present = append(c.present, v)
	default:
		c.absent = append(c.absent, v)
	}
}

// score is scoreVerdict of c.
func (c *calibration) score(t *testing.T, name string) attackRate {
	t.Helper()
	return scoreVerdict(t, name, c.calP, c.calA, c.present, c.absent)
}

// scoreVerdict scores the 40 targets' statistics against the midpoint of
// the calibration probes' medians (the attacker's guess, "present" on the
// side of it where the present probes' median lies), and reports the
// oracle's accuracy (the midpoint of the targets' own medians) besides. It
// returns the guesses with the calibrated threshold.
func scoreVerdict(t *testing.T, name string, calP, calA, present, absent []float64) attackRate {
	t.Helper()
	median := func(x []float64) float64 {
		s := slices.Clone(x)
		slices.Sort(s)
		return s[len(s)/2]
	}
	score := func(mid float64, up bool) int {
		right := 0
		for _, v := range present {
			right += b2i((v >= mid) == up)
		}
		for _, v := range absent {
			right += b2i((v < mid) == up)
		}
		return right
	}
	cp, ca, mp, ma := median(calP), median(calA), median(present), median(absent)
	right, oracle := score((cp+ca)/2, cp > ca), score((mp+ma)/2, mp > ma)
	n := len(present) + len(absent)
	t.Logf("%s: present median %.3f, absent median %.3f; calibration medians %.3f and %.3f; calibrated threshold: %s, oracle midpoint: %s (bound %.1f%%)",
		name, mp, ma, cp, ca, pct(right, n), pct(oracle, n), 100*timingBound(n))
	return attackRate{name: name, right: right, trials: n}
}

// matchRep is one repetition of a probe: the attacker's three lists in
// turn (with the target, a first control, a second control) and, for
// each, what it measured.
type matchRep [3]struct {
	match, release, status, budget time.Duration
	entry                          time.Duration // to the match.run entry's time, from the auditor's export
	sent                           time.Time     // when it sent the match, on the room's clock
}

// matchStatistic is one of what the attacker reads from a probe's
// repetitions.
type matchStatistic struct {
	name string
	what string // what it compares, for the log
	of   func(reps []matchRep) float64
}

// slower is the share of pairs, one of list a's runs and one of list b's
// (each of bs), in which a's measure f is the larger (ties count half):
// the Mann-Whitney statistic. When a's and b's runs cost the room the same,
// they are exchangeable and it is about one half, however the machine's
// load varies between probes; one more synced commit in a's runs pushes it
// towards one.
func slower(reps []matchRep, f func(r matchRep, k int) time.Duration, a int, bs ...int) float64 {
	var won, pairs float64
	for _, ra := range reps {
		for _, rb := range reps {
			for _, b := range bs {
				x, y := f(ra, a), f(rb, b)
				switch {
				case x > y:
					won++
				case x == y:
					won += 0.5
				}
				pairs++
			}
		}
	}
	return won / pairs
}

// TestAttackMatchRunTiming: the victim's list is 2,000 people; the
// settings the attacker offered charge epsilon_match = 0.001 a release
// (stricter than the room's defaults, so the victim has every reason to
// accept). For each of 40 targets (20 in the victim's list), six
// times, the attacker uploads three lists in turn and matches each: the
// target and 1,000 made-up identifiers (the join is one row or empty),
// then twice 1,001 made-up identifiers (controls, whose joins are empty;
// the first control's match deletes the target's join, the second's an
// empty one). After each match it reads the collaboration's status and
// its budget. It measures, for each match, its latency, and the interval
// from sending the request to the release's time (api.MatchResult.At,
// which the room stamps when the intersection, and the join's writes, are
// done), and the latency of the two reads.
//
// Each statistic below compares, over a target's repetitions, one list's
// runs with another's by the share of pairs in which the first is the
// slower (the Mann-Whitney statistic: about one half when the room does
// the same work for both, whatever the machine's load); its guess, the
// side of a threshold fixed beforehand from calibration probes of people
// whose presence the attacker knows (the midpoint of their medians). Each
// must stay within chance plus three deviations (73.7% over 40): the 36
// match releases charged for a target allow e^0.036/(1+e^0.036) ≈ 50.9%,
// and the reads nothing.
//
// The release's time and the audit entry's are the room's clock, read
// against the attacker's: a constant offset between the two clocks
// cancels, since every statistic compares runs of the same target. The
// room's timestamps are what make the difference: the whole match's
// latency carries three more synced commits after the intersection (the
// run's entry, the deletion's entry and its batch), whose noise hides the
// join's one.
//
// ATTACK_DUMP=file writes every run's measures to file (of the first
// measurement, if a second confirms an excess), one line a run:
// probe id, present, calibration, repetition, list, then the match's
// latency, the release's interval, the status's and the budget's
// latencies, in nanoseconds.
func TestAttackMatchRunTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("times about 1,000 match runs")
	}
	if atkRace {
		t.Skip("times match runs: run without the race detector")
	}
	holdToBound(t, "tells whether the victim holds the one target", timingBound(40), func(round int) []attackRate {
		return matchRunTiming(t, round)
	})
}

// matchRunTiming runs the attack on a new scene and returns each
// statistic's guesses.
func matchRunTiming(t *testing.T, round int) []attackRate {
	const victimSize, reps = 2000, 6
	m := newMatchTimingScene(t, victimSize)
	s := m.s
	var dump *os.File
	if path := os.Getenv("ATTACK_DUMP"); path != "" && round == 0 {
		var err error
		if dump, err = os.Create(path); err != nil {
			t.Fatal(err)
		}
		defer dump.Close()
	}
	before := s.budgetSpent(s.attacker)
	probes := timingProbes(40, victimSize/23, 500_000, 93)
	measured := make([][]matchRep, len(probes))
	for i, p := range probes {
		for r := range reps {
			var rep matchRep
			for k, target := range []int{p.id, -1, -1} {
				m.list(t, fmt.Sprintf("mt%d-%d-%d", i, r, k), target)
				time.Sleep(10 * time.Millisecond) // let the upload's writes settle
				off := m.clk.offset()
				sent := time.Now()
				res, err := s.attacker.Match(s.ctx, s.collab)
				rep[k].match = time.Since(sent)
				if err != nil {
					t.Fatalf("match: %v", err)
				}
				rep[k].sent = sent.Add(off)
				rep[k].release = res.At.Sub(rep[k].sent)
				rep[k].status = timed(t, "status", func() error { _, err := s.attacker.Collaboration(s.ctx, s.collab); return err })
				rep[k].budget = timed(t, "budget", func() error { _, err := s.attacker.Budget(s.ctx, s.collab); return err })
				if dump != nil {
					fmt.Fprintf(dump, "%d %v %v %d %d %d %d %d %d\n", p.id, p.in, p.calib, r, k,
						rep[k].match.Nanoseconds(), rep[k].release.Nanoseconds(), rep[k].status.Nanoseconds(), rep[k].budget.Nanoseconds())
				}
			}
			measured[i] = append(measured[i], rep)
		}
	}
	t.Logf("%d match runs over %d days, budget spent %g -> %g", m.runs, (m.runs+m.perDay-1)/m.perDay, before, s.budgetSpent(s.attacker))
	// The attacker's own auditor exports the log once, at the end: each
	// match run's entry carries the room's time of its commit.
	entries, err := s.exportEntries(redteamAuditor)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	var times []time.Time
	for _, e := range entries {
		if e.Action == string(policy.ActionMatchRun) && e.Principal == atkAttacker && e.Decision.Allow {
			times = append(times, e.Time)
		}
	}
	if len(times) != m.runs {
		t.Fatalf("the export holds %d match runs of the attacker's %d", len(times), m.runs)
	}
	j := 0
	for i := range measured {
		for r := range measured[i] {
			for k := range measured[i][r] {
				measured[i][r][k].entry = times[j].Sub(measured[i][r][k].sent)
				j++
			}
		}
	}

	match := func(r matchRep, k int) time.Duration { return r[k].match }
	release := func(r matchRep, k int) time.Duration { return r[k].release }
	entry := func(r matchRep, k int) time.Duration { return r[k].entry }
	status := func(r matchRep, k int) time.Duration { return r[k].status }
	budget := func(r matchRep, k int) time.Duration { return r[k].budget }
	stats := []matchStatistic{
		{"release time", "from sending the match to the release's time, with the target against both controls (the next match deletes the join after the release's time)",
			func(reps []matchRep) float64 { return slower(reps, release, 0, 1, 2) }},
		{"audit entry time", "from sending the match to its audit entry's time, read in the attacker's auditor's export, with the target against both controls",
			func(reps []matchRep) float64 { return slower(reps, entry, 0, 1, 2) }},
		{"match latency", "the match's latency, with the target against the second control",
			func(reps []matchRep) float64 { return slower(reps, match, 0, 2) }},
		{"next match latency", "the latency of the match that deletes the target's join (the first control's) against the second control's",
			func(reps []matchRep) float64 { return slower(reps, match, 1, 2) }},
		{"status after the match", "the status read after the match with the target against after the second control",
			func(reps []matchRep) float64 { return slower(reps, status, 0, 2) }},
		{"budget after the match", "the budget read after the match with the target against after the second control",
			func(reps []matchRep) float64 { return slower(reps, budget, 0, 2) }},
	}
	var rates []attackRate
	for _, st := range stats {
		var c calibration
		for i, p := range probes {
			if i < 2 {
				continue // warming up
			}
			c.add(p.calib, p.in, st.of(measured[i]))
		}
		t.Logf("%s: %s", st.name, st.what)
		rates = append(rates, c.score(t, st.name))
	}
	return rates
}

// viewShape is what a differential probe compares of a JSON view: its
// structure, every number (list sizes, counts, charges: equal in both
// worlds unless they depend on the overlap), and each string's length with
// times folded, since ids, digests and times differ from room to room
// whatever the data. Match rates are noisy and left out.
func viewShape(v any) string {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		b.WriteString("{")
		for _, k := range keys {
			if k == "match_rate" {
				b.WriteString(k + ":noisy,")
				continue
			}
			b.WriteString(k + ":" + viewShape(v[k]) + ",")
		}
		return b.String() + "}"
	case []any:
		var b strings.Builder
		b.WriteString("[")
		for _, e := range v {
			b.WriteString(viewShape(e) + ",")
		}
		return b.String() + "]"
	case string:
		if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return "time" // RFC 3339 drops a time's trailing zeros
		}
		return fmt.Sprintf("s%d", len(v))
	default:
		return fmt.Sprint(v)
	}
}

// TestAttackMatchViewsDiffer: a differential probe of everything the
// attacker reads after its match runs, in two worlds that differ only in
// whether the victim holds the one target of the attacker's list (the
// target and 999 made-up identifiers): the views (status, budget, budget
// history, the list of collaborations) after a first match and after a
// second one, which deletes the first's join, and its own auditor's
// export (the tree size, and each entry's action, principal, decision,
// data references with their rows and bytes, charge and encoded length).
// A join's existence, its size or its deletion must show in none of them:
// the bound is 0 differences.
func TestAttackMatchViewsDiffer(t *testing.T) {
	world := func(id int) *attackScene {
		rows := []atkRow{{atkEmail(id), id}}
		for j := range 999 {
			rows = append(rows, atkJunk("views", j))
		}
		s := attackRoom(t, attackOpts{attackerRows: rows})
		s.tr.partner(redteamAuditor, policy.RoleAuditor, atkAttacker)
		return s
	}
	in, out := world(1500), world(5500) // 1500: the victim's; 5500: nobody's
	views := []string{"", "/budget", "/budget/history"}
	read := func(s *attackScene, stage string) map[string]string {
		got := map[string]string{}
		for _, v := range views {
			status, body := atkRaw(t, s.tr, atkAttacker, "GET", "/v1/collaborations/"+s.collab+v, "", nil)
			var j any
			_ = json.Unmarshal(body, &j)
			got[stage+" GET collaboration"+v] = fmt.Sprintf("%d %s", status, viewShape(j))
		}
		status, body := atkRaw(t, s.tr, atkAttacker, "GET", "/v1/collaborations", "", nil)
		var j any
		_ = json.Unmarshal(body, &j)
		got[stage+" GET collaborations"] = fmt.Sprintf("%d %s", status, viewShape(j))
		entries, size, err := s.exportLog(redteamAuditor)
		if err != nil {
			t.Fatalf("export: %v", err)
		}
		got[stage+" export: tree size and entries"] = fmt.Sprintf("%d %d", size, len(entries))
		for i, e := range entries {
			e.Time = time.Time{} // its encoding's length varies
			raw, _ := json.Marshal(e)
			var refs []string
			for _, d := range e.Data {
				refs = append(refs, fmt.Sprintf("%s(%d digest, %d rows, %d bytes)", strings.TrimRight(d.Name, "0123456789abcdef/"), len(d.Digest), d.Rows, d.Bytes))
			}
			got[fmt.Sprintf("%s export entry %d", stage, i)] = fmt.Sprintf("%s %s allow=%v reasons=%v eps=%d refs=%v len=%d",
				e.Action, e.Principal, e.Decision.Allow, e.Decision.Reasons, e.EpsilonMicro, refs, len(raw))
		}
		return got
	}
	var got [2]map[string]string
	for w, s := range []*attackScene{in, out} {
		got[w] = read(s, "after the first match:")
		// A second list and match: the first join is deleted.
		rows := []atkRow{}
		for j := range 1000 {
			rows = append(rows, atkJunk("views2", j))
		}
		if err := s.upload(s.attacker, rows, atkAttackerCols); err != nil {
			t.Fatal(err)
		}
		if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
			t.Fatal(err)
		}
		maps.Copy(got[w], read(s, "after the second match:"))
	}
	differ := worldsDiffer(t, got)
	t.Logf("views that tell the target's presence: %s, bound 0", pct(differ, len(got[0])))
}

// worldsDiffer reports, and counts, each of what an attacker saw (by name)
// that differs between world 0, where the target is in the victim's list,
// and world 1, where it is not.
func worldsDiffer(t *testing.T, got [2]map[string]string) int {
	t.Helper()
	differ := 0
	for _, k := range slices.Sorted(maps.Keys(got[0])) {
		if got[0][k] != got[1][k] {
			differ++
			t.Errorf("%s: target in the victim's list: %s; not: %s", k, got[0][k], got[1][k])
		}
	}
	for k := range got[1] {
		if _, ok := got[0][k]; !ok {
			differ++
			t.Errorf("%s: only when the target is not in the victim's list: %s", k, got[1][k])
		}
	}
	return differ
}

// TestJoinPartsPadded: a match stores as many join parts, each a synced
// commit, whatever its join's size up to the largest the lists allow, at
// the part boundary too (a join of k parts' worth of matches and of one
// fewer or one more).
func TestJoinPartsPadded(t *testing.T) {
	tr := startRoom(t)
	for _, c := range []struct{ least, matches int64 }{
		{1, 0}, {1, 1}, {2000, 0}, {2000, 1}, {2000, 2000},
		{2 * joinPartSize, 0}, {2 * joinPartSize, joinPartSize - 1}, {2 * joinPartSize, joinPartSize},
		{2 * joinPartSize, joinPartSize + 1}, {2 * joinPartSize, 2*joinPartSize - 1}, {2 * joinPartSize, 2 * joinPartSize},
		{2*joinPartSize + 1, 2 * joinPartSize}, {2*joinPartSize + 1, 2*joinPartSize + 1},
	} {
		col := &collabRecord{ID: fmt.Sprintf("pad-%d-%d", c.least, c.matches), Members: []string{"a", "b"},
			Datasets: map[string]*datasetRecord{"a": {Rows: c.least}, "b": {Rows: c.least + 7}}}
		jw := &joinWriter{r: tr.room, parts: store.Join(col.ID, 1), h: sha256.New()}
		for i := range c.matches {
			if err := jw.add([]uint32{uint32(i), uint32(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := jw.finish(joinParts(col)); err != nil {
			t.Fatal(err)
		}
		want := int((c.least + joinPartSize - 1) / joinPartSize)
		if jw.written != want {
			t.Errorf("lists of %d and more rows, %d matches: %d parts, want %d", c.least, c.matches, jw.written, want)
		}
		col.Match = &matchRecord{Run: 1, Parts: jw.written}
		var n int64
		if err := tr.room.readJoin(col, func([]uint32) { n++ }); err != nil || n != c.matches {
			t.Errorf("lists of %d rows: read %d matches of %d back, %v", c.least, n, c.matches, err)
		}
	}
}
