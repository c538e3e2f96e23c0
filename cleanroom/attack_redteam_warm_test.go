package cleanroom

// Red-team attacks on the latency of warm queries and models (after the
// first query after a match has decoded the other member's columns), when
// the attacker's list is one target and 1,000 made-up identifiers, so that
// the overlap is the target or nobody. Each target's runs are paired with
// a control run of 1,001 made-up identifiers just after, so that the
// shared machine's drift cancels; the guess is the side of a threshold
// fixed from calibration probes of people whose presence the attacker
// knows; the bound is chance plus three deviations (73.7% over 40).
//
// TestAttackMatchRateDenominatorTiming: a match rate's denominator
// (analytics/accumulate.go, denominators) walks the member's whole list,
// once per match_rate metric. With group_by columns whose dictionaries
// multiply past what flat arrays hold (analytics/grouping.go, denseLimit:
// 2^20 combinations, e.g. a zip code of 1,100 values and a store of
// 1,000), groups are found through a map. Were each of the member's
// people looked up in the matched people's groups, the lookup's cost would
// follow that map's size: Go answers a lookup in an empty map (nobody
// matched) without hashing, about 1.3 ns, and hashes and probes a map of
// one group (the target matched), about 13 ns; eight match rates over a
// victim's list of 100,000 made that 8.5 ms a query, though both answers
// are empty (a group of one is never released): 40 of 40 targets. The
// denominators are counted in a grouping of the member's list alone and
// read at the matched groups, so their cost follows the member's list:
// 48-52% with the map, and 38-50% grouped by zip alone (flat arrays).
//
// Within chance: groups drawn from the data in flat arrays with a sum,
// lift and roi and their intervals (50%), a filter on the victim's plan
// (42%), k-means of 16 clusters and 20 iterations on the victim's revenue
// (48-52%), and lookalike model training (48-62%; the model file's size
// follows its noisy counts: medians 3,017 and 2,955 bytes, IQR about 600).

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// timingProbe is a probe of one person: whether the victim holds it, and
// whether the attacker knows that (a calibration probe).
type timingProbe struct {
	id    int
	in    bool
	calib bool
}

// timingProbes are targets, half held by the victim (ids 10,000 + 11 +
// step·i) and half not (absent + 11 + 1237·i), in an order salt mixes so
// that they do not alternate, after two probes that warm the room up and
// with a known present and a known absent person every five targets for
// calibration (the room's speed drifts over a run).
func timingProbes(targets, step, absent int, salt uint64) []timingProbe {
	var ts []timingProbe
	for i := range targets / 2 {
		ts = append(ts, timingProbe{10_000 + step*i + 11, true, false}, timingProbe{absent + 1237*i + 11, false, false})
	}
	slices.SortFunc(ts, func(a, b timingProbe) int { return int(atkMix(a.id, salt)%1000) - int(atkMix(b.id, salt)%1000) })
	probes := []timingProbe{{950_000, false, true}, {950_001, false, true}}
	for i, p := range ts {
		if i%5 == 0 {
			probes = append(probes, timingProbe{10_003 + 7*i, true, true}, timingProbe{900_000 + i, false, true})
		}
		probes = append(probes, p)
	}
	return probes
}

// warmScene is a victim's list of victimSize people (ids from 10,000) with
// the columns vcols, and an attacker that re-uploads lists of one target
// and made-up people and matches them, moving the room's clock a day on
// when the day's uploads and matches are spent.
type warmScene struct {
	s          *attackScene
	clk        *offsetClock
	runs       int
	perDay     int
	lastTarget int // of the latest list matched, -1 for a control
}

func newWarmScene(t *testing.T, victimSize int, settings map[string]any, bounds map[string][2]float64, vcols []string, value func(col string, id int) string) *warmScene {
	clk := &offsetClock{}
	s := newAttackScene(t, startRoomAt(t, clk.now, nil), attackOpts{settings: settings, bounds: bounds, noUpload: true})
	s.ctx = context.Background()
	emails := make([]string, victimSize)
	for i := range emails {
		emails[i] = atkEmail(10_000 + i)
	}
	s.uploadRawParts(s.victim, writeRawList(t, emails, vcols, func(i int) []string {
		out := make([]string, len(vcols))
		for j, c := range vcols {
			out[j] = value(c, 10_000+i)
		}
		return out
	}), vcols, 50_000)
	return &warmScene{s: s, clk: clk, perDay: 10}
}

// matchList uploads the attacker's list (target, if >= 0, and 1,000
// made-up people tagged tag; 1,001 without a target) and matches it.
func (w *warmScene) matchList(t *testing.T, tag string, target int) {
	if w.runs > 0 && w.runs%w.perDay == 0 {
		w.clk.advance(24 * time.Hour)
	}
	w.runs++
	w.lastTarget = target
	var rows []atkRow
	if target >= 0 {
		rows = append(rows, atkRow{atkEmail(target), target})
	}
	for j := range 1000 + b2i(target < 0) {
		rows = append(rows, atkJunk(tag, j))
	}
	if err := w.s.upload(w.s.attacker, rows, atkAttackerCols); err != nil {
		t.Fatalf("upload %s: %v", tag, err)
	}
	if _, err := w.s.attacker.Match(w.s.ctx, w.s.collab); err != nil {
		t.Fatalf("match %s: %v", tag, err)
	}
}

// warmMeasure runs the attack: for each probe, reps times, the list with
// the target and a control of made-up people only, each matched, then
// warm(), whose result is dropped (it decodes what the first query after a
// match decodes), then timed() `timed` times. A probe's signal is the
// median over its repetitions of the target's fastest timed query minus
// the control's (fastest: the least disturbed by the shared machine). It
// returns the guesses against a threshold fixed from the calibration
// probes, which must stay within chance plus three deviations
// (holdWarmToBound).
func warmMeasure(t *testing.T, w *warmScene, name string, targets, reps, timed int, warm func() error, query func() error) attackRate {
	probes := timingProbes(targets, 100_000/(targets/2+3), 500_000, 97)
	var calP, calA, present, absent []time.Duration
	var dump *os.File
	if path := os.Getenv("ATTACK_DUMP"); path != "" {
		dump, _ = os.Create(path)
		defer dump.Close()
	}
	for i, p := range probes {
		var signals []time.Duration
		for r := range reps {
			var best [2]time.Duration
			for k, target := range []int{p.id, -1} {
				w.matchList(t, fmt.Sprintf("w%d-%d-%d", i, r, k), target)
				if err := warm(); err != nil {
					t.Fatalf("warm query: %v", err)
				}
				best[k] = time.Hour
				for range timed {
					best[k] = min(best[k], timedQuery(t, query))
				}
			}
			signals = append(signals, best[0]-best[1])
			if dump != nil {
				fmt.Fprintf(dump, "%d %v %v %d %d %d\n", p.id, p.in, p.calib, r, best[0].Nanoseconds(), best[1].Nanoseconds())
			}
		}
		signal, _ := medianIQR(signals)
		switch {
		case i < 2:
		case p.calib && p.in:
			calP = append(calP, signal)
		case p.calib:
			calA = append(calA, signal)
		case p.in:
			present = append(present, signal)
		default:
			absent = append(absent, signal)
		}
	}
	f := func(ds []time.Duration) []float64 {
		out := make([]float64, len(ds))
		for i, d := range ds {
			out[i] = float64(d.Microseconds())
		}
		return out
	}
	t.Logf("%s: signal in µs, the target's list's fastest query minus the control's; %d match runs, budget spent %g", name, w.runs, w.s.budgetSpent(w.s.attacker))
	return scoreVerdict(t, name, f(calP), f(calA), f(present), f(absent))
}

// holdWarmToBound holds a warm timing attack, measure on a new scene, to
// chance plus three deviations over its targets.
func holdWarmToBound(t *testing.T, measure func() attackRate) {
	t.Helper()
	holdToBound(t, "tells whether the victim holds the one target", timingBound(attackTargets()), func(int) []attackRate {
		return []attackRate{measure()}
	})
}

func timedQuery(t *testing.T, q func() error) time.Duration {
	began := time.Now()
	err := q()
	d := time.Since(began)
	if err != nil {
		t.Fatalf("timed query: %v", err)
	}
	return d
}

// zipStoreValue is a person's value of the victim's columns in the match
// rate attack: a zip code of 1,100 and a store of 1,000, whose
// combinations (1.1 million) are more than flat arrays hold.
func zipStoreValue(col string, id int) string {
	switch col {
	case "zip":
		return fmt.Sprintf("z%04d", atkMix(id, 21)%1100)
	case "store":
		return fmt.Sprintf("s%03d", atkMix(id, 22)%1000)
	}
	return atkValue(col, id)
}

// TestAttackMatchRateDenominatorTiming: the victim's list is 100,000 people
// with a zip code (1,100 values), a store (1,000 values) and revenue; the
// settings the attacker offered allow grouping by zip and store (neither
// has a declared domain, so groups are drawn from the data and pass DP
// partition selection) and charge epsilon_match = 0.001 a release. For
// each of 40 targets (20 held by the victim), the attacker matches its
// list of the target and 1,000 made-up people, and a control list of
// 1,001 made-up people, and after each times three queries of eight match
// rates over the victim's list (epsilon 0.01, the floor), after one
// refused query that decodes the same columns. No group of one person is
// released: the answers are empty in both worlds. Its signal is the
// target's list's fastest query minus the control's; its guess, the side
// of a threshold fixed from calibration probes. It must stay within chance
// plus three deviations (73.7% over 40): the 6 queries and 2 matches
// charged a target allow e^0.062/(1+e^0.062) ≈ 51.5%.
//
// Grouped by zip and store, whose combinations (1.1 million) are more than
// flat arrays hold, the denominators find each of the victim's rows' group
// through a map of the matched people's groups: empty, or the target's.
// Grouped by zip alone (flat arrays), the control, the denominators cost
// the same whoever matched.
func TestAttackMatchRateDenominatorTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("times 112 match runs and 336 queries a case")
	}
	if atkRace {
		t.Skip("times queries: run without the race detector")
	}
	t.Run("groups in a map (zip and store)", func(t *testing.T) {
		matchRateTiming(t, []string{atkVictim + ".zip", atkVictim + ".store"})
	})
	t.Run("control: groups in flat arrays (zip)", func(t *testing.T) {
		matchRateTiming(t, []string{atkVictim + ".zip"})
	})
}

func matchRateTiming(t *testing.T, group []string) {
	rate := api.Metric{Kind: api.MetricMatchRate, Member: atkVictim}
	warmQueryTiming(t, "match rates by "+strings.Join(group, ", "),
		api.QuerySpec{Version: api.QueryVersion, GroupBy: group, Epsilon: 0.01, Metrics: slices.Repeat([]api.Metric{rate}, 8)})
}

// warmQueryTiming runs the attack with the timed query spec in a room of
// its own (its budget and the victim's list of 100,000, with zip, store,
// plan, converted and revenue).
func warmQueryTiming(t *testing.T, name string, spec api.QuerySpec) {
	holdWarmToBound(t, func() attackRate { return warmQueryMeasure(t, name, spec) })
}

// warmQueryMeasure runs the attack of warmQueryTiming once.
func warmQueryMeasure(t *testing.T, name string, spec api.QuerySpec) attackRate {
	vcols := []string{"zip", "store", "plan", "converted", "revenue"}
	w := newWarmScene(t, 100_000, map[string]any{"epsilon_match": 0.001, "delta_per_query": 1e-9,
		"allowed_dimensions": []string{atkVictim + ".zip", atkVictim + ".store", atkVictim + ".plan", atkVictim + ".converted"}},
		map[string][2]float64{atkVictim + ".revenue": {0, 1000}}, vcols, zipStoreValue)
	s := w.s
	// Refused after the decode and the projections: the same columns, with
	// an roi without a cost.
	warmSpec := spec
	warmSpec.Metrics = []api.Metric{{Kind: api.MetricROI, Revenue: []string{atkVictim + ".revenue"}}}
	if slices.ContainsFunc(spec.Metrics, func(m api.Metric) bool { return m.Kind == api.MetricMatchRate }) {
		warmSpec.Metrics = append([]api.Metric{{Kind: api.MetricMatchRate, Member: atkVictim}}, warmSpec.Metrics...)
	}
	warm := func() error {
		if _, err := s.attacker.Query(s.ctx, s.collab, warmSpec); err == nil {
			return fmt.Errorf("the roi without a cost was answered")
		}
		return nil
	}
	query := func() error {
		_, err := s.attacker.Query(s.ctx, s.collab, spec)
		return err
	}
	return warmMeasure(t, w, name, attackTargets(), 1, 3, warm, query)
}

// TestAttackWarmQueryTiming: the same attack on other warm queries that
// read the victim's columns: groups drawn from the data (the victim's
// zip, in flat arrays) with a sum, lift and roi with their intervals; a
// filter on the victim's plan; k-means on the victim's revenue (16
// clusters, 20 iterations). Each must stay within chance plus three
// deviations (73.7% over 40).
func TestAttackWarmQueryTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("times 112 match runs and 336 queries a case")
	}
	if atkRace {
		t.Skip("times queries: run without the race detector")
	}
	v := func(c string) string { return atkVictim + "." + c }
	cases := []struct {
		name string
		spec api.QuerySpec
	}{
		{"groups drawn from the data, sums, lift and roi", api.QuerySpec{GroupBy: []string{v("zip")}, Metrics: []api.Metric{
			{Kind: api.MetricSum, Column: v("revenue")}, {Kind: api.MetricLift, Exposed: v("converted"), Converted: v("converted")},
			{Kind: api.MetricROI, Revenue: []string{v("revenue")}, Cost: &api.Cost{Value: 10}}}}},
		{"a filter on the victim's plan", api.QuerySpec{Filters: []api.Filter{{Column: v("plan"), Op: "eq", Value: "team"}},
			Metrics: []api.Metric{{Kind: api.MetricSum, Column: v("revenue")}}}},
		{"k-means on the victim's revenue", api.QuerySpec{KMeans: &api.KMeans{K: 16, Columns: []string{v("revenue")}, Iterations: 20}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.spec.Version, c.spec.Epsilon = api.QueryVersion, 0.01
			warmQueryTiming(t, c.name, c.spec)
		})
	}
}

// attackTargets is 40, or ATTACK_TARGETS for a shorter look.
func attackTargets() int { return envInt("ATTACK_TARGETS", 40) }

// envInt is the environment variable name as a number, or def.
func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		fmt.Sscan(v, &def)
	}
	return def
}

// TestAttackModelTrainTiming: the same attack on lookalike models. The
// attacker's feature is its own age band (a declared domain), the label
// the victim's converted; after each match it trains three models of 32
// trees of depth 4 without a holdout (epsilon 0.01, the floor) and keeps
// the fastest, after one refused training (a feature without a declared
// domain or bounds) that decodes the victim's column. Training routes the
// matched people (the target or nobody) through the trees, and draws the
// noise of every node whatever the counts; the file's shape follows the
// noisy counts. Bound: 73.7% over 40 targets (the 6 models and 2 matches
// charged a target allow ≈ 51.5%).
func TestAttackModelTrainTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("times 112 match runs and 336 models")
	}
	if atkRace {
		t.Skip("times models: run without the race detector")
	}
	holdWarmToBound(t, func() attackRate { return modelTrainMeasure(t) })
}

// modelTrainMeasure runs the attack of TestAttackModelTrainTiming once.
func modelTrainMeasure(t *testing.T) attackRate {
	vcols := []string{"plan", "converted", "revenue"}
	w := newWarmScene(t, 100_000, map[string]any{"epsilon_match": 0.001, "delta_per_query": 1e-9,
		"allowed_dimensions": []string{atkAttacker + ".age_band", atkAttacker + ".customer_no", atkVictim + ".converted"},
		"domains":            map[string][]string{atkAttacker + ".age_band": {"18-24", "25-34", "35-44", "45-54"}}},
		map[string][2]float64{atkVictim + ".revenue": {0, 1000}}, vcols, atkValue)
	s := w.s
	label := api.Filter{Column: atkVictim + ".converted"}
	spec := api.ModelSpec{Version: api.ModelSpecVersion, Label: label, Features: []string{atkAttacker + ".age_band"},
		Trees: 32, Depth: 4, Holdout: new(float64), Epsilon: 0.01}
	bad := spec
	bad.Features = []string{atkAttacker + ".customer_no"}
	var sizes [2][]time.Duration // by list: the model file's size (as a duration, for medianIQR)
	warm := func() error {
		if _, _, err := s.attacker.TrainModel(s.ctx, s.collab, bad); err == nil {
			return fmt.Errorf("a model on a feature without a domain was trained")
		}
		return nil
	}
	query := func() error {
		_, res, err := s.attacker.TrainModel(s.ctx, s.collab, spec)
		if err == nil {
			k := b2i(w.lastTarget < 0)
			sizes[k] = append(sizes[k], time.Duration(len(res.Model)))
		}
		return err
	}
	rate := warmMeasure(t, w, "model training", attackTargets(), 1, 3, warm, query)
	st, it := medianIQR(sizes[0])
	sc, ic := medianIQR(sizes[1])
	t.Logf("model file sizes in bytes (noisy counts' digits): after the target's lists median %d (IQR %d), after the controls' median %d (IQR %d)",
		int64(st), int64(it), int64(sc), int64(ic))
	return rate
}
