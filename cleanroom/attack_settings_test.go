package cleanroom

// Attacks on what the collaboration's settings promise: filters that give
// the breakdown the allow-list refuses, noise turned off without the
// victim's consent, and never-output columns that a name's form lets
// through.

import (
	"context"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// Bounds of the settings attacks.
const (
	// attackBreakdownBound is how many per-region counts (within ±2 of the
	// truth) the attacker may obtain when breakdowns by region are not
	// allowed: none.
	attackBreakdownBound = 0
	// attackConsentBound is how many people's revenue the attacker may
	// recover by differencing in a collaboration whose noise-off setting
	// the victim never saw: none, because the victim's acceptance of terms
	// it was not shown must fail.
	attackConsentBound = 0
)

// noRegionModule is the victim's collaboration policy: no breakdowns by
// region, both through the allow-list and by a denial of its own.
const noRegionModule = `package collaboration

constraints := {"allowed_dimensions": ["attacker.age_band"]}

deny contains "breakdowns by region are not allowed in this collaboration" if {
	input.action == "query.run"
	some d in input.resource.query.group_by
	endswith(d, ".region")
}
`

// countOf reads the count of an ungrouped query's answer; ok is false if
// it has none (withheld). It is the one place the breakdown attack reads a
// filtered answer.
func countOf(res *api.QueryResult) (float64, bool) {
	return columnOf(res, "count")
}

// columnOf reads the named column of an answer's single row.
func columnOf(res *api.QueryResult, name string) (float64, bool) {
	for i, c := range res.Columns {
		if c != name {
			continue
		}
		for _, row := range res.Rows {
			if i < len(row) {
				if v, ok := row[i].(float64); ok {
					return v, true
				}
			}
		}
	}
	return 0, false
}

// breakdown is the attacker's try for the victim's counts by region: the
// refused group_by first, then one filtered query per value, each repeated
// and averaged. It returns how many values it obtained within ±2.
func (s *attackScene) breakdown(truth map[string]int) int {
	t := s.t
	obtained := 0
	res, err := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{atkVictim + ".region"}, Epsilon: 0.5})
	if err == nil {
		for _, row := range res.Rows {
			region, _ := row[0].(string)
			if n, ok := row[1].(float64); ok && math.Abs(n-float64(truth[region])) <= 2 {
				obtained++
			}
		}
		t.Logf("group_by region answered: %v", res.Rows)
	}
	const repeats = 4
	for _, region := range atkRegions {
		sum, n := 0.0, 0
		for range repeats {
			res, err := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}},
				Filters: []api.Filter{{Column: atkVictim + ".region", Op: "eq", Value: region}}, Epsilon: 0.5})
			if err != nil {
				continue
			}
			if c, ok := countOf(res); ok {
				sum, n = sum+c, n+1
			}
		}
		if n > 0 && math.Abs(sum/float64(n)-float64(truth[region])) <= 2 {
			obtained++
		}
	}
	return obtained
}

// TestAttackFiltersAsBreakdowns: a breakdown by a column the collaboration
// does not allow (by its allowed_dimensions, or by a module both members
// approved) is refused as a group_by; one filtered query per value gives it
// anyway.
func TestAttackFiltersAsBreakdowns(t *testing.T) {
	truth := map[string]int{}
	for id := 1000; id < 2000; id++ {
		truth[atkValue("region", id)]++
	}
	allowList := attackRoom(t, attackOpts{settings: map[string]any{"allowed_dimensions": []string{atkAttacker + ".age_band"}}})
	byAllowList := allowList.breakdown(truth)
	module := attackRoom(t, attackOpts{module: noRegionModule})
	byModule := module.breakdown(truth)
	t.Logf("per-region counts obtained within ±2: %d of 4 under allowed_dimensions, %d of 4 under the approved module, bound %d",
		byAllowList, byModule, attackBreakdownBound)
	if byAllowList+byModule > attackBreakdownBound {
		t.Errorf("%d of 8 per-region counts obtained though breakdowns by region are not allowed, bound %d", byAllowList+byModule, attackBreakdownBound)
	}
}

// sumOf reads the sum of the victim's revenue from an ungrouped answer. It
// is the one place the differencing attack reads an answer.
func sumOf(res *api.QueryResult) (float64, bool) {
	return columnOf(res, "sum("+atkVictim+".revenue)")
}

// TestAttackNoiseOffWithoutConsent: the attacker creates a collaboration
// with noise off; the victim accepts as a user told the terms are the
// defaults; two exact sums, with and without one person, give that
// person's revenue.
func TestAttackNoiseOffWithoutConsent(t *testing.T) {
	bounds := map[string][2]float64{atkVictim + ".revenue": {atkRevenueLo, atkRevenueHi}}
	s := attackRoom(t, attackOpts{settings: map[string]any{"noise_off": true}, told: map[string]any{}, bounds: bounds, mayRefuse: true})
	// A control: told the terms as they are, the victim's acceptance must
	// go through, or a refusal above would prove nothing.
	if err := s.offer("honest", map[string]any{"noise_off": true}, bounds, nil); err != nil {
		t.Fatalf("an acceptance of the terms as they are was refused: %v", err)
	}
	targets, _ := atkTargets(10)
	recovered := 0
	if s.refused != nil {
		t.Logf("the offer was refused: %v", s.refused)
	} else {
		sum := func(filters ...api.Filter) (float64, bool) {
			res, err := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricSum, Column: atkVictim + ".revenue"}}, Filters: filters})
			if err != nil {
				return 0, false
			}
			return sumOf(res)
		}
		all, ok := sum()
		for _, id := range targets {
			f := isolate(id)
			f.Op = "ne"
			without, ok2 := sum(f)
			if !ok || !ok2 {
				continue
			}
			truth, _ := strconv.ParseFloat(atkValue("revenue", id), 64)
			if math.Abs(all-without-truth) < 0.005 {
				recovered++
			}
		}
	}
	t.Logf("noise-off differencing: revenue recovered for %d of %d people, bound %d", recovered, len(targets), attackConsentBound)
	if s.refused == nil {
		t.Errorf("the victim's acceptance of noise off, told the defaults, went through")
	}
	if recovered > attackConsentBound {
		t.Errorf("revenue recovered exactly for %d of %d people, bound %d", recovered, len(targets), attackConsentBound)
	}
}

// TestAttackNeverOutputNaming: a never-output column must be blocked
// whether it is named bare (as the room's defaults name columns) or
// qualified ("member.column"): from queries and from uploads alike.
func TestAttackNeverOutputNaming(t *testing.T) {
	blocked := 0
	// A bare name in the room's defaults, set after the column was
	// uploaded (the operator tightened the defaults), must block queries
	// on member.customer_id.
	cols := append([]string{"customer_id"}, atkVictimCols...)
	s := attackRoom(t, attackOpts{victimCols: cols})
	d := policy.DefaultConstraints()
	d.NeverOutputColumns = append(d.NeverOutputColumns, "customer_id")
	serveWithDefaults(s.tr, &d)
	var err error
	if s.attacker, err = reconnect(s.tr, atkAttacker); err != nil {
		t.Fatal(err)
	}
	_, err = s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.1,
		Filters: []api.Filter{{Column: atkVictim + ".customer_id", Op: "eq", Value: atkValue("customer_id", 1500)}}})
	bareBlocksQuery := err != nil
	blocked += b2i(bareBlocksQuery)

	// A qualified name in the settings must block the upload of the column.
	q := attackRoom(t, attackOpts{settings: map[string]any{"never_output_columns": []string{atkVictim + ".customer_id"}}, noUpload: true})
	err = q.upload(q.victim, atkRows(atkVictimIDs), cols)
	qualifiedBlocksUpload := err != nil
	blocked += b2i(qualifiedBlocksUpload)

	t.Logf("never_output_columns: bare name blocks a query on the column: %v; qualified name blocks its upload: %v; %d of 2 blocked, bound 2",
		bareBlocksQuery, qualifiedBlocksUpload, blocked)
	if blocked < 2 {
		t.Errorf("%d of 2 never-output columns blocked (bare blocks the query: %v, qualified blocks the upload: %v), bound 2",
			blocked, bareBlocksQuery, qualifiedBlocksUpload)
	}
}

// serveWithDefaults stops tr's room and serves its directory again, on a
// new port, with the room's policy defaults d (as an operator restarting
// with a tightened configuration).
func serveWithDefaults(tr *testRoom, d *policy.Constraints) {
	t := tr.t
	tr.stop()
	r, err := Open(context.Background(), Config{Dir: tr.dir, CheckpointInterval: -1, Now: tr.now, Defaults: d,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Serve(ctx, ln); close(done) }()
	tr.room, tr.url = r, "http://"+ln.Addr().String()
	var once sync.Once
	tr.stop = func() { once.Do(func() { cancel(); <-done; r.Close() }) }
	t.Cleanup(tr.stop)
}
