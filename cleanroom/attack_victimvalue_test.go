package cleanroom

// A differential probe in two worlds that differ only in the victim's list
// (TestAttackErrorOracles varies the attacker's): in
// world "in" the victim holds the target (id 1500), whose customer_no is a
// value no other row of the victim's list holds; in world "out" that row is
// someone else (id 9999, in nobody else's list). The attacker's list is the
// default [0, 2000), so the overlap differs by the target. The attacker
// sends a battery of queries, models and activations that read the
// victim's dictionaries (the unique value, group_by without a domain,
// match rates that read whole columns), reads every view and its own
// auditor's export, then the victim replaces its list, and the room is
// restarted (opening sweeps), and everything is read again. Bound: 0
// differences (outcomes, view shapes, entry shapes, tree size).

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

func TestAttackVictimUniqueValue(t *testing.T) {
	v, a := atkVictim+".", atkAttacker+"."
	const target, other = 1500, 9999
	vcols := append(slices.Clone(atkVictimCols), "customer_no")
	settings := map[string]any{
		"allowed_dimensions": []string{a + "customer_no", a + "age_band", v + "plan", v + "region", v + "converted", v + "customer_no", v + "salary"},
		"domains":            map[string][]string{v + "plan": atkPlans, a + "age_band": {"18-24", "25-34", "35-44", "45-54"}},
		"activation":         map[string]any{"members": []string{atkAttacker}},
	}
	bounds := map[string][2]float64{v + "salary": {0, 250_000}, v + "revenue": {0, 1000}, v + "score": {0, 100}}
	world := func(id int) *attackScene {
		var rows []atkRow
		for _, p := range atkVictimIDs {
			if p == target {
				p = id
			}
			rows = append(rows, atkRow{atkEmail(p), p})
		}
		s := attackRoom(t, attackOpts{settings: settings, bounds: bounds, victimRows: rows, victimCols: vcols})
		s.tr.partner(redteamAuditor, policy.RoleAuditor, atkAttacker)
		return s
	}
	in, out := world(target), world(other)
	tv := atkValue("customer_no", target)

	count := []api.Metric{{Kind: api.MetricCount}}
	q := func(ms []api.Metric, g []string, f []api.Filter) api.QuerySpec {
		return api.QuerySpec{Version: api.QueryVersion, Metrics: ms, GroupBy: g, Filters: f, Epsilon: 0.01}
	}
	queries := []api.QuerySpec{
		q(count, nil, []api.Filter{{Column: v + "customer_no", Op: "eq", Value: tv}}),
		q(count, nil, []api.Filter{{Column: v + "customer_no", Op: "ne", Value: tv}}),
		q(count, nil, []api.Filter{{Column: v + "customer_no", Op: "in", Values: []string{tv, "zzz"}}}),
		q(count, nil, []api.Filter{{Column: v + "customer_no", Op: "xx", Value: tv}}),
		q(count, nil, []api.Filter{{Column: v + "customer_no", Op: "ge", Value: tv}}),
		q(count, []string{v + "customer_no"}, nil),
		q(count, []string{v + "customer_no", v + "plan"}, nil),
		q(count, []string{v + "customer_no", a + "customer_no"}, nil),
		q([]api.Metric{{Kind: api.MetricMatchRate, Member: atkVictim}}, nil, []api.Filter{{Column: v + "customer_no", Op: "eq", Value: tv}}),
		q([]api.Metric{{Kind: api.MetricMatchRate, Member: atkVictim}}, []string{v + "customer_no"}, nil),
		q([]api.Metric{{Kind: api.MetricMatchRate, Member: atkVictim}}, []string{v + "plan"}, []api.Filter{{Column: v + "customer_no", Op: "in", Values: []string{tv}}}),
		q([]api.Metric{{Kind: api.MetricSum, Column: v + "salary"}}, nil, []api.Filter{{Column: v + "customer_no", Op: "eq", Value: tv}}),
		q([]api.Metric{{Kind: api.MetricLift, Exposed: v + "customer_no", Converted: v + "converted"}}, nil, nil),
		q([]api.Metric{{Kind: api.MetricSum, Column: v + "customer_no"}}, nil, nil),
		{Version: api.QueryVersion, KMeans: &api.KMeans{K: 1, Columns: []string{v + "salary"}, Iterations: 1}, Filters: []api.Filter{{Column: v + "customer_no", Op: "eq", Value: tv}}, Epsilon: 0.01},
	}
	models := []api.ModelSpec{
		{Label: api.Filter{Column: v + "customer_no", Op: "eq", Value: tv}, Features: []string{a + "age_band"}},
		{Label: api.Filter{Column: v + "customer_no"}, Features: []string{a + "age_band"}},
		{Label: api.Filter{Column: v + "customer_no", Op: "ge", Value: "1"}, Features: []string{a + "age_band"}},
	}
	segments := []api.SegmentSpec{
		{Version: api.SegmentVersion, Filters: []api.Filter{{Column: v + "customer_no", Op: "xx", Value: tv}}},
		{Version: api.SegmentVersion, Filters: []api.Filter{{Column: v + "customer_no", Op: "eq", Value: tv}}},
	}
	type req struct{ path, body string }
	var reqs []req
	for _, s := range queries {
		b, _ := json.Marshal(s)
		reqs = append(reqs, req{"/queries", string(b)})
	}
	for _, s := range models {
		s.Version, s.Epsilon, s.Trees, s.Depth = api.ModelSpecVersion, 0.01, 1, 1
		b, _ := json.Marshal(s)
		reqs = append(reqs, req{"/models", string(b)})
	}
	for _, s := range segments {
		b, _ := json.Marshal(s)
		reqs = append(reqs, req{"/activations", string(b)})
	}
	views := []string{"", "/budget", "/budget/history", "/tasks"}
	read := func(s *attackScene, stage string, battery bool) map[string]string {
		got := map[string]string{}
		if battery {
			for i, r := range reqs {
				status, body := atkRaw(t, s.tr, atkAttacker, "POST", "/v1/collaborations/"+s.collab+r.path, "application/json", []byte(r.body))
				o := outcomeOf(status, body)
				if r.path == "/activations" {
					o += fmt.Sprintf(" len=%d", len(body)) // an activation is exact
				}
				got[fmt.Sprintf("%s req %d %s", stage, i, r.path)] = o
			}
		}
		for _, vw := range views {
			status, body := atkRaw(t, s.tr, atkAttacker, "GET", "/v1/collaborations/"+s.collab+vw, "", nil)
			var j any
			_ = json.Unmarshal(body, &j)
			got[stage+" GET"+vw] = fmt.Sprintf("%d %s", status, viewShape(j))
		}
		entries, size, err := s.exportLog(redteamAuditor)
		if err != nil {
			t.Fatalf("export: %v", err)
		}
		got[stage+" export size/entries"] = fmt.Sprintf("%d %d", size, len(entries))
		var descs []string // sorted: concurrent part uploads land in either order
		for _, e := range entries {
			e.Time = time.Time{}
			raw, _ := json.Marshal(e)
			var refs []string
			for _, d := range e.Data {
				refs = append(refs, fmt.Sprintf("%s(%d digest, %d rows, %d bytes)", strings.TrimRight(d.Name, "0123456789abcdef/"), len(d.Digest), d.Rows, d.Bytes))
			}
			descs = append(descs, fmt.Sprintf("%s %s allow=%v reasons=%v eps=%d refs=%v len=%d",
				e.Action, e.Principal, e.Decision.Allow, e.Decision.Reasons, e.EpsilonMicro, refs, len(raw)))
		}
		slices.Sort(descs)
		for i, d := range descs {
			got[fmt.Sprintf("%s entry %03d", stage, i)] = d
		}
		return got
	}
	var got [2]map[string]string
	for w, s := range []*attackScene{in, out} {
		got[w] = read(s, "A after match:", true)
		// The attacker matches again (older join deleted), the victim
		// replaces its list (dropping person 2999 in both worlds), and the
		// room restarts (opening sweeps).
		if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
			t.Fatal(err)
		}
		var rows []atkRow
		keep := span(1000, 2940)
		for _, p := range keep {
			if p == target && w == 1 {
				p = other
			}
			rows = append(rows, atkRow{atkEmail(p), p})
		}
		if err := s.upload(s.victim, rows, vcols); err != nil {
			t.Fatal(err)
		}
		maps.Copy(got[w], read(s, "B after victim's replacement:", true))
		before := auditEntries(t, s.tr)
		s.tr.restart()
		got[w]["C entries written by the opening"] = fmt.Sprint(auditEntries(t, s.tr) - before)
		if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
			// the client is bound to the old url
			c, err2 := reconnect(s.tr, atkAttacker)
			if err2 != nil {
				t.Fatal(err, err2)
			}
			if _, err := c.Match(s.ctx, s.collab); err != nil {
				t.Fatal(err)
			}
		}
		maps.Copy(got[w], read(s, "D after restart and match:", true))
	}
	differ := worldsDiffer(t, got)
	keys := slices.Sorted(maps.Keys(got[0]))
	for _, k := range keys {
		if strings.Contains(k, " req ") {
			t.Logf("%s => %s", k, got[0][k])
		}
	}
	t.Logf("outcomes that tell the target's presence: %s, bound 0", pct(differ, len(keys)))
}
