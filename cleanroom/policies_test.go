package cleanroom

import (
	"context"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

const strictModule = `package collaboration

constraints := {"min_group_size": 400}

deny contains "queries may not group by spend" if {
	input.action == "query.run"
	some d in input.resource.query.group_by
	endswith(d, ".spend")
}
`

// TestPolicyApproval: a member's module takes effect only when every
// member approved its exact hash, then tightens k and adds its denial; it
// survives a restart; a module that does not compile is refused with its
// problems.
func TestPolicyApproval(t *testing.T) {
	settings := map[string]any{"noise_off": true, "allowed_dimensions": []string{"alpha.age_band", "alpha.spend"}}
	tr, a, b, _ := readyPair(t, api.ModeHashed, settings)
	ctx := context.Background()
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	bySpend := api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{"alpha.spend"}}
	byAge := api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{"alpha.age_band"}}
	if _, err := a.Query(ctx, "c1", bySpend); err != nil {
		t.Fatalf("before the module: %v", err)
	}

	_, err := a.ProposePolicy(ctx, "c1", []byte("package collaboration\n\ndeny contains \"x\" if {\n"))
	if p := wantProblem(t, err, api.ProblemBadRequest); len(p.Reasons) == 0 {
		t.Error("a module that does not compile was refused without its problems")
	}
	prop, err := a.ProposePolicy(ctx, "c1", []byte(strictModule))
	if err != nil || prop.Active {
		t.Fatalf("propose: %+v %v", prop, err)
	}
	if _, err := a.Query(ctx, "c1", bySpend); err != nil {
		t.Fatalf("a proposal took effect before every member approved: %v", err)
	}
	if _, err := b.ApprovePolicy(ctx, "c1", strings.Repeat("0", 64)); err == nil {
		t.Fatal("approved an unknown hash")
	}
	if got, err := b.ApprovePolicy(ctx, "c1", prop.Hash); err != nil || !got.Active {
		t.Fatalf("approve: %+v %v", got, err)
	}
	check := func() {
		t.Helper()
		_, err := a.Query(ctx, "c1", bySpend)
		if p := wantProblem(t, err, api.ProblemDenied); !strings.Contains(strings.Join(p.Reasons, "|"), "queries may not group by spend") {
			t.Errorf("reasons %v", p.Reasons)
		}
		if e := lastEntry(t, tr.room); e.Decision.PolicyHash != prop.Hash {
			t.Errorf("the decision records policy %s, want the module's %s", e.Decision.PolicyHash, prop.Hash)
		}
		q, err := a.Query(ctx, "c1", byAge)
		if err != nil {
			t.Fatal(err)
		}
		if q.MinGroup != 400 {
			t.Errorf("k = %d, want the module's 400", q.MinGroup)
		}
	}
	check()
	// A restarted room loads the approved module again.
	tr.restart()
	if a, err = reconnect(tr, "alpha"); err != nil {
		t.Fatal(err)
	}
	check()
}
