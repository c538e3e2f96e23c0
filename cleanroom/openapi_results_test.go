package cleanroom

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/api/openapitest"
)

// The later stages of TestOpenAPIClientFlow: what the members learn, the
// collaboration's own policy, and what auditors export.

// matchAndQuery: alpha matches, beta asks a grouped query, and the budget
// and its history account for both; the digest key goes to members only.
func (f *apiFlow) matchAndQuery(bands []string) {
	t, ctx := f.t, f.ctx
	m, err := f.as["alpha"].RunMatchWithResponse(ctx, "c1")
	check(f, "match", m, err, http.StatusOK)
	if r := m.JSON200; len(r.MatchRate) != 2 || !r.Noise || r.Matched != nil || r.Budget == nil {
		t.Errorf("match: %+v", r)
	}

	var count, rate openapitest.QuerySpec_Metrics_Item
	if err := count.FromMetricKind(api.MetricCount); err != nil {
		t.Fatal(err)
	}
	member := "alpha"
	if err := rate.FromMetric(openapitest.Metric{Kind: api.MetricMatchRate, Member: &member}); err != nil {
		t.Fatal(err)
	}
	metrics := []openapitest.QuerySpec_Metrics_Item{count, rate}
	groupBy := []string{"alpha.band"}
	spec := openapitest.QuerySpec{Version: api.QueryVersion, Metrics: &metrics, GroupBy: &groupBy, Epsilon: 0.5}
	q, err := f.as["beta"].RunQueryWithResponse(ctx, "c1", spec)
	check(f, "query", q, err, http.StatusOK)
	res := q.JSON200
	if res.Partitions != api.PartitionsDeclared || !slices.Equal(res.Columns, []string{"alpha.band", "count", "match_rate(alpha)"}) ||
		res.Withheld == nil || len(res.Rows)+*res.Withheld != len(bands) {
		t.Errorf("query: %+v", res)
	}
	for _, row := range res.Rows {
		if len(row) != 3 || row[0] == nil {
			t.Fatalf("a row of %d cells", len(row))
		}
		band, err := row[0].AsQueryResultRows0()
		if err != nil || !slices.Contains(bands, band) {
			t.Errorf("a row's group %q (%v)", band, err)
		}
		if n, err := row[1].AsQueryResultRows1(); err != nil || n < float64(res.MinGroupSize) {
			t.Errorf("a row's count %v (%v) is below k = %d", n, err, res.MinGroupSize)
		}
	}
	spec.Version = "cleanroom.dev/query/v0"
	bad, err := f.as["beta"].RunQueryWithResponse(ctx, "c1", spec)
	check(f, "a query of another version", bad, err, http.StatusBadRequest)
	refused(t, "a query of another version", bad.ApplicationproblemJSON400, api.ProblemBadRequest)

	budget, err := f.as["alpha"].GetBudgetWithResponse(ctx, "c1")
	check(f, "budget", budget, err, http.StatusOK)
	history, err := f.as["alpha"].GetBudgetHistoryWithResponse(ctx, "c1")
	check(f, "budget history", history, err, http.StatusOK)
	events := *history.JSON200
	if len(events) != 2 || math.Abs(events[1].Spent-budget.JSON200.Spent) > 1e-9 || math.Abs(budget.JSON200.Spent-(m.JSON200.Epsilon+res.Epsilon)) > 1e-9 {
		t.Errorf("budget %+v after %+v", budget.JSON200, events)
	}

	key, err := f.as["beta"].GetDigestKeyWithResponse(ctx, "c1")
	check(f, "digest key", key, err, http.StatusOK)
	if k := key.JSON200; len(k.Key) != api.DigestKeySize || k.Id != api.DigestKeyID(k.Key) {
		t.Errorf("a digest key of %d bytes named %s", len(k.Key), k.Id)
	}
	auditor, err := f.as["alpha-audit"].GetDigestKeyWithResponse(ctx, "c1")
	check(f, "an auditor asks for the digest key", auditor, err, http.StatusForbidden)
	refused(t, "an auditor asks for the digest key", auditor.ApplicationproblemJSON403, api.ProblemDenied)
}

// policyModule: alpha proposes a module, beta approves it by its hash.
func (f *apiFlow) policyModule() {
	t, ctx := f.t, f.ctx
	module := "package collaboration\n\ndeny contains \"queries must group by region\" if {\n\tinput.action == \"query.run\"\n\tnot \"region\" in input.resource.query.group_by\n}\n"
	p, err := f.as["alpha"].ProposePolicyWithTextBodyWithResponse(ctx, "c1", module)
	check(f, "propose", p, err, http.StatusOK)
	if p.JSON200.Hash != sha256Hex([]byte(module)) || p.JSON200.Active {
		t.Errorf("proposed %+v", p.JSON200)
	}
	broken, err := f.as["alpha"].ProposePolicyWithTextBodyWithResponse(ctx, "c1", "package collaboration\n\ndeny contains \"x\" if {\n\t1 +\n}\n")
	check(f, "propose a module that does not compile", broken, err, http.StatusBadRequest)
	if pr := broken.ApplicationproblemJSON400; pr == nil || pr.Reasons == nil || len(*pr.Reasons) == 0 {
		t.Errorf("a module that does not compile, refused without the compiler's reasons: %+v", pr)
	}
	unknown, err := f.as["beta"].ApprovePolicyWithResponse(ctx, "c1", strings.Repeat("ab", 32))
	check(f, "approve an unknown module", unknown, err, http.StatusNotFound)
	a, err := f.as["beta"].ApprovePolicyWithResponse(ctx, "c1", p.JSON200.Hash)
	check(f, "approve", a, err, http.StatusOK)
	if !a.JSON200.Active {
		t.Error("a module every member approved is not active")
	}
	c, err := f.as["beta"].GetCollaborationWithResponse(ctx, "c1")
	check(f, "read", c, err, http.StatusOK)
	if pol := c.JSON200.Policy; pol == nil || pol.Active == nil || *pol.Active != p.JSON200.Hash {
		t.Errorf("policy after approval: %+v", pol)
	}
}

// audit: the auditor gets a checkpoint and its partner's sparse bundle,
// the operator the whole log; a partner gets neither.
func (f *apiFlow) audit() {
	t, ctx := f.t, f.ctx
	cp, err := f.as["alpha-audit"].GetAuditCheckpointWithResponse(ctx)
	check(f, "checkpoint", cp, err, http.StatusOK)
	info, err := f.anon.GetRoomWithResponse(ctx, nil)
	check(f, "room", info, err, http.StatusOK)
	if firstLine(cp.Body) != info.JSON200.AuditOrigin {
		t.Errorf("a checkpoint of origin %q, the room says %q", firstLine(cp.Body), info.JSON200.AuditOrigin)
	}
	for who, format := range map[string]string{OperatorID: audit.BundleFormat, "alpha-audit": audit.SparseBundleFormat} {
		b, err := f.as[who].ExportAuditWithResponse(ctx, &openapitest.ExportAuditParams{})
		check(f, who+" exports", b, err, http.StatusOK)
		var h struct{ Format string }
		if err := json.Unmarshal([]byte(firstLine(b.Body)), &h); err != nil || h.Format != format {
			t.Errorf("%s's bundle: format %q (%v), want %s", who, h.Format, err, format)
		}
	}
	from := int64(-1)
	neg, err := f.as[OperatorID].ExportAuditWithResponse(ctx, &openapitest.ExportAuditParams{From: &from})
	check(f, "export from -1", neg, err, http.StatusBadRequest)
	partner, err := f.as["alpha"].ExportAuditWithResponse(ctx, &openapitest.ExportAuditParams{})
	check(f, "a partner exports", partner, err, http.StatusForbidden)
	refused(t, "a partner exports", partner.ApplicationproblemJSON403, api.ProblemDenied)
}
