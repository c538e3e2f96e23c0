package main

// Red-team attacks of a member on the Beam engine's path: a room started
// with --engine beam, each query a job of this test binary run as
// cleanroom-beam (TestMain), compared where it matters with the same room's
// local engine. The attacker is alpha (it creates the collaboration, knows
// its own list and columns, and asks the queries); the victim is bravo.
// What the attacker may learn is docs/PRIVACY.md's: a member's success at
// telling whether one person is in the other list is bounded by the noise
// (the attack tests' bound: at most 70% over 40 targets).
//
// Run one at a time, on Prism, from beam/:
//
//	go test -count=1 -run 'TestAttackBeam' -v ./cmd/cleanroom-beam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

const (
	beamAttacker = "alpha"
	beamVictim   = "bravo"
	// beamMembershipBound is the attack tests' bound on a membership
	// attack's accuracy over 40 targets (docs/PRIVACY.md, "Attack tests").
	beamMembershipBound = 0.70
)

var beamBands = []string{"18-24", "25-34", "35-44", "45+"}

// beamScene is a room on loopback whose engine can be switched (the same
// data directory served again), with the attacker and the victim
// registered.
type beamScene struct {
	t      *testing.T
	ctx    context.Context
	dir    string
	exe    string
	rm     *room
	keys   map[string]*crypto.PartnerKey
	c      map[string]*client.Client
	states map[string]map[string]client.StateDir // collab → member → state
}

func (s *beamScene) beamEngine() cleanroom.EngineConfig {
	return cleanroom.EngineConfig{Kind: cleanroom.EngineBeam, Binary: s.exe, Runner: "prism", Shards: 4}
}

func newBeamScene(t *testing.T) *beamScene {
	t.Helper()
	t.Setenv(asBinary, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := &beamScene{t: t, ctx: context.Background(), dir: t.TempDir(), exe: exe, keys: map[string]*crypto.PartnerKey{},
		states: map[string]map[string]client.StateDir{}}
	op, err := cleanroom.Init(s.ctx, cleanroom.Config{Dir: cleanroom.DataDir(s.dir)})
	if err != nil {
		t.Fatal(err)
	}
	s.rm = serveRoom(t, s.dir, s.beamEngine())
	opc, err := client.New(s.ctx, s.rm.url, op, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{beamAttacker, beamVictim} {
		k, err := crypto.GeneratePartnerKey(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.keys[id] = k
		if err := opc.RegisterPrincipal(s.ctx, api.Principal{ID: id, Role: policy.RolePartner, Keys: k.Public()}); err != nil {
			t.Fatal(err)
		}
	}
	s.connect()
	return s
}

func (s *beamScene) connect() {
	s.c = map[string]*client.Client{}
	for id, k := range s.keys {
		c, err := client.New(s.ctx, s.rm.url, k, client.Options{})
		if err != nil {
			s.t.Fatal(err)
		}
		s.c[id] = c
	}
}

// serve serves the same data directory again with engine.
func (s *beamScene) serve(engine cleanroom.EngineConfig) {
	s.rm.stop()
	s.rm = serveRoom(s.t, s.dir, engine)
	s.connect()
}

// offer: the attacker creates collab with settings, the victim accepts.
func (s *beamScene) offer(collab string, settings map[string]any) {
	t := s.t
	t.Helper()
	raw, _ := json.Marshal(settings)
	if _, err := s.c[beamAttacker].CreateCollaboration(s.ctx, api.CreateCollaboration{ID: collab, Mode: api.ModeHashed, Kind: "email",
		Members: []string{beamAttacker, beamVictim}, Settings: raw}); err != nil {
		t.Fatal(err)
	}
	st := map[string]client.StateDir{beamAttacker: client.StateDir(t.TempDir()), beamVictim: client.StateDir(t.TempDir())}
	s.states[collab] = st
	if err := s.c[beamAttacker].DistributeSecret(s.ctx, collab, st[beamAttacker], nil); err != nil {
		t.Fatal(err)
	}
	v, err := s.c[beamVictim].Collaboration(s.ctx, collab)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.c[beamVictim].Accept(s.ctx, collab, v.SettingsDigest); err != nil {
		t.Fatal(err)
	}
	if err := s.c[beamVictim].ReceiveSecret(s.ctx, collab, st[beamVictim], nil); err != nil {
		t.Fatal(err)
	}
}

func (s *beamScene) upload(collab, member, path string, cols []string, rowsPerPart int) {
	s.t.Helper()
	if _, err := s.c[member].UploadCSV(s.ctx, client.UploadSpec{Collab: collab, Input: path, IDColumn: "email", Kind: crypto.KindEmail,
		Columns: cols, State: s.states[collab][member], RowsPerPart: rowsPerPart}); err != nil {
		s.t.Fatalf("%s's upload to %s: %v", member, collab, err)
	}
}

func (s *beamScene) match(collab string) {
	s.t.Helper()
	if _, err := s.c[beamAttacker].Match(s.ctx, collab); err != nil {
		s.t.Fatalf("match %s: %v", collab, err)
	}
}

// attackerCols: a near-unique customer number, a band, a spend, exposure.
var attackerCols = []string{"cust", "band", "spend", "exposed"}

func attackerRow(id int) []string {
	return []string{fmt.Sprintf("c%06d", id), beamBands[id%4], fmt.Sprint(id % 700), fmt.Sprint(id % 3 / 2)}
}

var victimCols = []string{"tier", "revenue", "converted"}

func victimRow(id int) []string {
	return []string{[]string{"gold", "silver", "bronze"}[id/5%3], fmt.Sprint(id % 150), fmt.Sprint(id % 5 / 3)}
}

// beamTargets are 40 people the attacker holds: the victim holds the first
// 20 (in) and not the others (out).
func beamTargets() (in, out []int) {
	for i := range 40 {
		id := 1100 + 37*i
		if i%2 == 0 {
			in = append(in, id)
		} else {
			out = append(out, id)
		}
	}
	return in, out
}

// victimIDs: people 1000-3999 but the out targets (and drop).
func victimIDs(drop ...int) []int {
	_, out := beamTargets()
	var ids []int
	for _, id := range span(1000, 4000) {
		if !slices.Contains(out, id) && !slices.Contains(drop, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func paddedSettings() map[string]any {
	return map[string]any{
		"allowed_dimensions": []string{"alpha.cust", "alpha.band", "bravo.tier"},
		"domains":            map[string][]string{"alpha.band": beamBands},
		"bounds":             map[string][2]float64{"alpha.spend": {0, 500}, "bravo.revenue": {0, 100}},
	}
}

// TestAttackBeamPaddedFilter (idea 1): the single-person membership attack
// done as well as the noise allows, through the Beam engine and through the
// same room's local engine on an identical collaboration. The attacker pads
// a filter on its customer number with 60 people it knows are matched, so
// that the group clears k and the noisy count carries the target's bit, and
// spends its whole share of the budget over 40 targets. Each engine's
// accuracy must stay within the bound (70%), each answer must charge
// exactly the epsilon asked, and both engines must answer with the same
// fields. An accuracy over the bound in a first measurement is measured
// again on a new room and judged pooled, as the room's own attack tests do
// (cleanroom/attack_confirm_test.go): the attack is right about 53% of the
// time, and one measurement of 40 crosses 70% about once in a hundred.
func TestAttackBeamPaddedFilter(t *testing.T) {
	first := paddedFilterRound(t)
	n := first.targets
	bc, lc := first.beam.right, first.local.right
	over := func(right, trials int) bool { return float64(right) > beamMembershipBound*float64(trials) }
	if over(bc, n) || over(lc, n) {
		t.Logf("an engine exceeds %.0f%% in a first measurement; measuring again on a new room", 100*beamMembershipBound)
		second := paddedFilterRound(t)
		bc, lc, n = bc+second.beam.right, lc+second.local.right, n+second.targets
	}
	if over(bc, n) {
		t.Errorf("the Beam engine: membership read in %d of %d targets, beyond the bound %.0f%%", bc, n, 100*beamMembershipBound)
	}
	if over(lc, n) {
		t.Errorf("the local engine: membership read in %d of %d targets, beyond the bound %.0f%%", lc, n, 100*beamMembershipBound)
	}
	// The noise's scale: an engine whose released counts sit much closer
	// to the truth than the other's adds less noise than its charge says.
	if first.beam.rms < first.local.rms/3 {
		t.Errorf("the Beam engine's released counts err by %.1f (rms), the local engine's by %.1f", first.beam.rms, first.local.rms)
	}
	bch, lch := first.beam.charged, first.local.charged
	if len(bch) != len(lch) {
		t.Errorf("answers charged: beam %d, local %d", len(bch), len(lch))
	}
	for i := range min(len(bch), len(lch)) {
		if math.Abs(bch[i]-lch[i]) > 1e-9 {
			t.Errorf("query %d charged %v on beam, %v locally", i, bch[i], lch[i])
			break
		}
	}
}

// paddedAttack is what one engine's padded-filter attack achieved.
type paddedAttack struct {
	right, answered int
	charged         []float64
	rms             float64
}

// paddedRound is one measurement of the padded-filter attack, on a new
// room, through both engines.
type paddedRound struct {
	targets     int
	beam, local paddedAttack
}

func paddedFilterRound(t *testing.T) paddedRound {
	s := newBeamScene(t)
	attacker := writeList(t, span(0, 3000), attackerCols, attackerRow)
	victim := writeList(t, victimIDs(), victimCols, victimRow)
	for _, collab := range []string{"onbeam", "onlocal"} {
		s.offer(collab, paddedSettings())
		s.upload(collab, beamVictim, victim, victimCols, 1000)
		s.upload(collab, beamAttacker, attacker, attackerCols, 1000)
		s.match(collab)
	}
	in, out := beamTargets()
	targets := append(append([]int{}, in...), out...)
	var pad []string
	for id := 2999; len(pad) < 60; id-- {
		if !slices.Contains(targets, id) {
			pad = append(pad, fmt.Sprintf("c%06d", id))
		}
	}
	run := func(collab string) paddedAttack {
		var a paddedAttack
		var sq float64
		b, err := s.c[beamAttacker].Budget(s.ctx, collab)
		if err != nil {
			t.Fatal(err)
		}
		left := b.MemberShare - b.MemberSpent[beamAttacker]
		eps := math.Floor(left/float64(len(targets))*1e6) / 1e6
		for i, id := range targets {
			isIn := i < len(in)
			before, err := s.c[beamAttacker].Budget(s.ctx, collab)
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.c[beamAttacker].Query(s.ctx, collab, api.QuerySpec{Version: api.QueryVersion, Epsilon: eps,
				Metrics: []api.Metric{{Kind: api.MetricCount}},
				Filters: []api.Filter{{Column: "alpha.cust", Op: "in", Values: append([]string{fmt.Sprintf("c%06d", id)}, pad...)}}})
			guess := false
			if err != nil {
				t.Logf("%s: target %d: %v", collab, id, err)
			} else {
				a.charged = append(a.charged, res.Budget.Spent-before.Spent)
				if res.Epsilon != eps {
					t.Errorf("%s: an answer reports epsilon %v for %v asked", collab, res.Epsilon, eps)
				}
			}
			if err == nil && len(res.Rows) == 1 {
				a.answered++
				n, _ := toFloat(res.Rows[0][0])
				guess = n > 60.5
				truth := 60.0
				if isIn {
					truth = 61
				}
				sq += (n - truth) * (n - truth)
			}
			if guess == isIn {
				a.right++
			}
		}
		a.rms = math.Sqrt(sq / float64(max(a.answered, 1)))
		t.Logf("%s: epsilon %.6f a query; released counts' error around the truth: rms %.1f (Laplace's sd %.1f, less where k withheld the lowest)",
			collab, eps, a.rms, math.Sqrt2/eps)
		return a
	}
	r := paddedRound{targets: len(targets), beam: run("onbeam")}
	s.serve(cleanroom.EngineConfig{})
	r.local = run("onlocal")
	n := r.targets
	t.Logf("membership by a padded filter over %d targets: beam %d/%d correct (%.1f%%, %d answered), local %d/%d (%.1f%%, %d answered); bound %.0f%%",
		n, r.beam.right, n, 100*float64(r.beam.right)/float64(n), r.beam.answered, r.local.right, n, 100*float64(r.local.right)/float64(n), r.local.answered, 100*beamMembershipBound)
	return r
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return math.NaN(), false
}

// TestAttackBeamParity (idea 1): with noise off (the exact answers the
// engines' rules make), the same room answers the same queries identically
// on Beam and locally when the victim's list has what the local engine's
// rules are for: a person listed twice with different values in different
// upload parts (the first kept), values beyond the declared bounds and
// values that are not numbers (clamped; the bound nearest zero), values
// outside a declared domain (in no group), and groups drawn from the data.
// Any difference is a rule one engine applies and the other does not.
func TestAttackBeamParity(t *testing.T) {
	s := newBeamScene(t)
	settings := map[string]any{
		"noise_off":          true,
		"allowed_dimensions": []string{"alpha.band", "alpha.cust", "bravo.tier", "bravo.plan", "alpha.exposed", "bravo.converted"},
		"domains":            map[string][]string{"alpha.band": beamBands, "bravo.plan": {"basic", "pro"}},
		"bounds":             map[string][2]float64{"alpha.spend": {0, 500}, "bravo.revenue": {0, 100}},
	}
	s.offer("exact", settings)
	// The attacker lists people 1000-1199 three times (a member's repeated
	// identifiers: one person, one row).
	attacker := writeList(t, append(span(0, 3000), append(span(1000, 1200), span(1000, 1200)...)...), attackerCols, attackerRow)
	// The victim: people 1000-3999, then 1000-1199 again with other values
	// (in later parts: the first occurrence must win), revenue beyond its
	// bounds, not a number, and plans outside the declared domain.
	ids := append(span(1000, 4000), span(1000, 1200)...)
	seen := map[int]bool{}
	cols := []string{"tier", "revenue", "converted", "plan"}
	victim := writeList(t, ids, cols, func(id int) []string {
		again := seen[id]
		seen[id] = true
		rev := fmt.Sprint(id % 150)
		switch {
		case again:
			rev = "100"
		case id%11 == 0:
			rev = "-40"
		case id%13 == 0:
			rev = "n/a"
		case id%17 == 0:
			rev = "1e12"
		}
		plan := []string{"basic", "pro", "legacy"}[id%3]
		conv := fmt.Sprint(id % 5 / 3)
		if again {
			plan, conv = "pro", "1"
		}
		return []string{[]string{"gold", "silver", "bronze"}[id/5%3], rev, conv, plan}
	})
	s.upload("exact", beamVictim, victim, cols, 700)
	s.upload("exact", beamAttacker, attacker, attackerCols, 1000)
	s.match("exact")
	q := func(m []api.Metric, groupBy []string, f []api.Filter) api.QuerySpec {
		return api.QuerySpec{Version: api.QueryVersion, Metrics: m, GroupBy: groupBy, Filters: f, Epsilon: 0.5}
	}
	// 60 people listed three times by the attacker and twice by the
	// victim: 60 people, whose revenue is their first row's.
	var sixty []string
	wantAvg := 0.0
	for id := 1000; id < 1060; id++ {
		sixty = append(sixty, fmt.Sprintf("c%06d", id))
		rev := math.Min(math.Max(float64(id%150), 0), 100)
		switch {
		case id%11 == 0:
			rev = 0
		case id%13 == 0:
			rev = 0
		case id%17 == 0:
			rev = 100
		}
		wantAvg += rev / 60
	}
	specs := []api.QuerySpec{
		q([]api.Metric{{Kind: api.MetricCount}, {Kind: api.MetricSum, Column: "bravo.revenue"}, {Kind: api.MetricAvg, Column: "bravo.revenue"}}, []string{"bravo.plan"}, nil),
		q([]api.Metric{{Kind: api.MetricSum, Column: "bravo.revenue"}, {Kind: api.MetricAvg, Column: "alpha.spend"}}, []string{"bravo.tier", "alpha.band"}, nil),
		q([]api.Metric{{Kind: api.MetricLift, Exposed: "alpha.exposed", Converted: "bravo.converted"}}, []string{"bravo.plan"}, nil),
		q([]api.Metric{{Kind: api.MetricROI, Revenue: []string{"bravo.revenue", "alpha.spend"}, Cost: &api.Cost{Value: 30}}}, []string{"bravo.tier"}, nil),
		q([]api.Metric{{Kind: api.MetricMatchRate, Member: beamVictim}}, []string{"bravo.plan"}, nil),
		q([]api.Metric{{Kind: api.MetricCount}}, []string{"bravo.tier"}, []api.Filter{{Column: "bravo.plan", Op: "eq", Value: "pro"}}),
		q([]api.Metric{{Kind: api.MetricCount}, {Kind: api.MetricAvg, Column: "bravo.revenue"}}, nil, []api.Filter{{Column: "alpha.cust", Op: "in", Values: sixty}}),
	}
	answer := func() []string {
		var out []string
		for _, sp := range specs {
			res, err := s.c[beamAttacker].Query(s.ctx, "exact", sp)
			if err != nil {
				out = append(out, "error: "+problemText(err))
				continue
			}
			res.Budget = api.BudgetInfo{}
			b, _ := json.Marshal(res)
			out = append(out, string(b))
		}
		return out
	}
	onBeam := answer()
	want := fmt.Sprintf(`"rows":[[60,%v]]`, math.Round(wantAvg*1e4)/1e4)
	t.Logf("60 repeated people on beam: %s", onBeam[len(specs)-1])
	if !strings.Contains(onBeam[len(specs)-1], want) {
		t.Errorf("60 people listed 3 and 2 times, first rows' values: beam answers %s, want %s", onBeam[len(specs)-1], want)
	}
	s.serve(cleanroom.EngineConfig{})
	local := answer()
	diff := 0
	for i := range specs {
		if onBeam[i] != local[i] {
			diff++
			t.Errorf("query %d differs\n beam  %s\n local %s", i, onBeam[i], local[i])
		}
	}
	t.Logf("%d of %d exact queries differ between the engines", diff, len(specs))
}

// problemText is an error as a member sees it: the problem's status,
// title and detail (not its request id).
func problemText(err error) string {
	var p *api.Problem
	if errors.As(err, &p) {
		return fmt.Sprintf("%d %s: %s %v", p.Status, p.Title, p.Detail, p.Reasons)
	}
	return err.Error()
}

// TestAttackBeamErrorsAndFields (ideas 2, 3 and 4): two collaborations in
// the same Beam room that differ only in whether the victim holds one
// target person. The attacker asks each the same battery of queries (valid
// ones of every kind, crafted ones aimed at the target, ones the room or
// the job must refuse) and compares, per query, what it sees apart from
// noisy numbers: error or answer, status and message, columns, partitions,
// whether withheld is told, the epsilon and delta charged. Any difference
// is an oracle of membership outside the noise. Its crafted list puts the
// target alone in a group of its own values that are hardest for the job
// (a value of 256 bytes of JSON's escaped characters, a separator of lift
// partitions), so that a job failing on the target's group would show.
// Then the engine's directory: nothing group- or world-readable, and no
// job directory left behind.
func TestAttackBeamErrorsAndFields(t *testing.T) {
	s := newBeamScene(t)
	const target = 1500
	settings := map[string]any{
		"allowed_dimensions": []string{"alpha.cust", "alpha.band", "alpha.odd", "bravo.tier", "alpha.exposed", "bravo.converted"},
		"domains":            map[string][]string{"alpha.band": beamBands},
		"bounds":             map[string][2]float64{"alpha.spend": {0, 500}, "bravo.revenue": {0, 100}},
	}
	// The attacker's crafted column: the target's value is the one to
	// make a job choke; a few others share odd values.
	odd := strings.Repeat("\"\\\u2028<\x01", 256)[:250] + "\u00e9"
	cols := append(append([]string{}, attackerCols...), "odd")
	attacker := writeList(t, span(0, 3000), cols, func(id int) []string {
		v := "plain"
		switch {
		case id == target:
			v = odd
		case id%97 == 0:
			v = "a\u0000b"
		}
		return append(attackerRow(id), v)
	})
	for _, w := range []struct {
		collab string
		drop   []int
	}{{"with", nil}, {"without", []int{target}}} {
		s.offer(w.collab, settings)
		s.upload(w.collab, beamVictim, writeList(t, victimIDs(w.drop...), victimCols, victimRow), victimCols, 1000)
		s.upload(w.collab, beamAttacker, attacker, cols, 1000)
		s.match(w.collab)
	}
	isolate := []api.Filter{{Column: "alpha.cust", Op: "eq", Value: fmt.Sprintf("c%06d", target)}}
	q := func(eps float64, m []api.Metric, groupBy []string, f []api.Filter) api.QuerySpec {
		return api.QuerySpec{Version: api.QueryVersion, Metrics: m, GroupBy: groupBy, Filters: f, Epsilon: eps}
	}
	count := []api.Metric{{Kind: api.MetricCount}}
	specs := []api.QuerySpec{
		q(0.05, count, nil, isolate),
		q(0.05, count, []string{"alpha.band"}, isolate),
		q(0.05, count, []string{"alpha.cust"}, isolate),
		q(0.05, count, []string{"alpha.odd"}, nil),
		q(0.05, count, []string{"alpha.odd", "bravo.tier"}, nil),
		q(0.05, count, []string{"alpha.cust"}, nil),
		q(0.05, []api.Metric{{Kind: api.MetricSum, Column: "bravo.revenue"}, {Kind: api.MetricAvg, Column: "bravo.revenue"}}, []string{"alpha.odd"}, nil),
		q(0.05, []api.Metric{{Kind: api.MetricSum, Column: "bravo.revenue"}, {Kind: api.MetricAvg, Column: "bravo.revenue"}}, nil, isolate),
		q(0.05, []api.Metric{{Kind: api.MetricLift, Exposed: "alpha.exposed", Converted: "bravo.converted"}}, []string{"alpha.odd"}, nil),
		q(0.05, []api.Metric{{Kind: api.MetricLift, Exposed: "alpha.exposed", Converted: "bravo.converted"}}, nil, isolate),
		q(0.05, []api.Metric{{Kind: api.MetricROI, Revenue: []string{"bravo.revenue"}, Cost: &api.Cost{Column: "alpha.spend"}}}, nil, isolate),
		q(0.05, []api.Metric{{Kind: api.MetricROI, Revenue: []string{"bravo.revenue"}, Cost: &api.Cost{Value: 10}}}, []string{"alpha.odd"}, nil),
		q(0.05, []api.Metric{{Kind: api.MetricMatchRate, Member: beamAttacker}}, []string{"alpha.odd"}, nil),
		q(0.05, []api.Metric{{Kind: api.MetricMatchRate, Member: beamAttacker}}, []string{"alpha.cust"}, isolate),
		q(0.05, []api.Metric{{Kind: api.MetricMatchRate, Member: beamVictim}}, []string{"bravo.tier"}, nil),
		q(0.05, count, []string{"bravo.tier"}, []api.Filter{{Column: "alpha.spend", Op: "ge", Value: fmt.Sprint(target % 700)}}),
		q(0.05, count, []string{"bravo.tier"}, []api.Filter{{Column: "alpha.odd", Op: "in", Values: []string{odd, "a\u0000b"}}}),
		// Refused by the room or the job: the message must not depend on
		// the data.
		q(0.0001, count, nil, isolate),
		q(0.05, []api.Metric{{Kind: api.MetricSum, Column: "alpha.cust"}}, nil, isolate),
		q(0.05, count, nil, []api.Filter{{Column: "alpha.spend", Op: "ge", Value: "900"}}),
		q(0.05, count, []string{"bravo.revenue"}, nil),
		{Version: api.QueryVersion, Epsilon: 0.05, KMeans: &api.KMeans{}},
		q(0.05, []api.Metric{{Kind: api.MetricMatchRate, Member: beamVictim}}, []string{"alpha.band"}, nil),
	}
	type view struct {
		Err        string
		Columns    []string
		Partitions string
		Withheld   bool
		Epsilon    float64
		Delta      float64
		Noise      bool
		Charged    float64
		Rows       int
	}
	see := func(collab string, sp api.QuerySpec) (view, time.Duration) {
		before, err := s.c[beamAttacker].Budget(s.ctx, collab)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res, err := s.c[beamAttacker].Query(s.ctx, collab, sp)
		took := time.Since(start)
		if err != nil {
			return view{Err: problemText(err)}, took
		}
		return view{Columns: res.Columns, Partitions: res.Partitions, Withheld: res.Withheld != nil, Epsilon: res.Epsilon,
			Delta: res.Delta, Noise: res.Noise, Charged: math.Round((res.Budget.Spent-before.Spent)*1e6) / 1e6, Rows: len(res.Rows)}, took
	}
	differ, rowsDiffer, failed := 0, 0, 0
	var dWith, dWithout time.Duration
	for i, sp := range specs {
		a, ta := see("with", sp)
		b, tb := see("without", sp)
		dWith, dWithout = dWith+ta, dWithout+tb
		if strings.Contains(a.Err, "job failed") {
			failed++
		}
		if a.Rows != b.Rows {
			rowsDiffer++ // noisy: reported, not an oracle by itself
			t.Logf("query %d: %d rows with the target, %d without (noisy counts against k)", i, a.Rows, b.Rows)
		}
		a.Rows, b.Rows = 0, 0
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			differ++
			t.Errorf("query %d: with the target %s\n                 without    %s", i, ja, jb)
		}
		if a.Err != "" && (strings.Contains(a.Err, "c001500") || strings.Contains(a.Err, "gold") || strings.Contains(a.Err, "silver")) {
			t.Errorf("query %d: an error names a data value: %s", i, a.Err)
		}
		t.Logf("query %d: %s", i, ja)
	}
	t.Logf("%d of %d queries differ in what the attacker sees apart from noisy values (rows count differs in %d; %d jobs failed); time with the target %v, without %v",
		differ, len(specs), rowsDiffer, failed, dWith.Round(time.Millisecond), dWithout.Round(time.Millisecond))

	// The engine's directory: the operator's alone, no job left behind.
	engine := filepath.Join(s.dir, "engine")
	var loose, jobs []string
	filepath.WalkDir(engine, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err == nil && info.Mode().Perm()&0o077 != 0 {
			loose = append(loose, fmt.Sprintf("%s %v", strings.TrimPrefix(p, s.dir), info.Mode().Perm()))
		}
		if filepath.Base(filepath.Dir(filepath.Dir(p))) == "jobs" { // jobs/<collaboration>/query-*
			jobs = append(jobs, strings.TrimPrefix(p, s.dir))
		}
		return nil
	})
	if len(loose) > 0 {
		t.Errorf("the engine's directory has files others may read: %v", loose)
	}
	t.Logf("job directories left under %s: %d %v", engine, len(jobs), jobs)
	if len(jobs) > failed*2 {
		t.Errorf("%d job directories left after %d failed jobs: %v", len(jobs), failed, jobs)
	}
}

// TestAttackBeamExportRetention (idea 3): the export a Beam room writes for
// its jobs is a copy of every member's tokens and attribute columns.
// SECURITY.md ("Retention"): the room deletes a member's replaced upload as
// soon as nothing can read it again. The victim replaces its upload and the
// collaboration matches again: the old export (the replaced upload's
// tokens and values) must be gone as soon as the upload is committed, since
// no query reads a match whose dataset was replaced; the next query
// exports the new match.
func TestAttackBeamExportRetention(t *testing.T) {
	s := newBeamScene(t)
	s.offer("r", paddedSettings())
	s.upload("r", beamVictim, writeList(t, victimIDs(), victimCols, victimRow), victimCols, 1000)
	s.upload("r", beamAttacker, writeList(t, span(0, 3000), attackerCols, attackerRow), attackerCols, 1000)
	s.match("r")
	spec := api.QuerySpec{Version: api.QueryVersion, Epsilon: 0.1, Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{"alpha.band"}}
	if _, err := s.c[beamAttacker].Query(s.ctx, "r", spec); err != nil {
		t.Fatal(err)
	}
	exports := func() []string {
		var out []string
		m, _ := filepath.Glob(filepath.Join(s.dir, "engine", "exports", "*", "run-*"))
		for _, p := range m {
			out = append(out, strings.TrimPrefix(p, s.dir))
		}
		return out
	}
	first := exports()
	if len(first) != 1 {
		t.Fatalf("exports after the first query: %v", first)
	}
	// The victim replaces its list (100 people more, 100 fewer), and the
	// collaboration matches again.
	s.upload("r", beamVictim, writeList(t, victimIDs(span(1000, 1100)...), victimCols, victimRow), victimCols, 1000)
	afterUpload := exports()
	s.match("r")
	afterMatch := exports()
	t.Logf("exports: after the first query %v; after the victim's new upload %v; after the new match %v", first, afterUpload, afterMatch)
	if len(afterUpload) > 0 {
		t.Errorf("exports are still on disk after the victim replaced its upload: %v", afterUpload)
	}
	if slices.Contains(afterMatch, first[0]) {
		t.Errorf("the export of the victim's replaced upload %s is still on disk after the new upload and match (nothing can read it again)", first[0])
	}
	if _, err := s.c[beamAttacker].Query(s.ctx, "r", spec); err != nil {
		t.Fatal(err)
	}
	if next := exports(); len(next) != 1 || next[0] == first[0] {
		t.Errorf("exports after the next query: %v, want the new match's alone", next)
	}
}
