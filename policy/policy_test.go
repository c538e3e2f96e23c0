package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/opencleanroom/cleanroom/internal/depcheck"
)

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func newEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := New(context.Background(), Options{Now: func() time.Time { return testNow }, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestRegoUnitTests runs the bundle's own _test.rego files with OPA's test
// runner, so `go test` covers them too.
func TestRegoUnitTests(t *testing.T) {
	mods := map[string]*ast.Module{}
	err := fs.WalkDir(bundleFS, "rego", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, _ := bundleFS.ReadFile(path)
		m, err := ast.ParseModuleWithOpts(path, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		mods[path] = m
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := tester.NewRunner().SetTimeout(time.Minute).Run(context.Background(), mods)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r := range ch {
		n++
		if !r.Pass() {
			t.Errorf("%s.%s: %v", r.Package, r.Name, r.Error)
			if r.Fail {
				t.Errorf("%s.%s failed", r.Package, r.Name)
			}
		}
	}
	if n < 15 {
		t.Fatalf("only %d Rego tests ran", n)
	}
}

func collab() *Collaboration {
	return &Collaboration{
		ID:       "alliance",
		Members:  []string{"coursely", "fitapp"},
		Settings: Settings{Constraints: Constraints{AllowedDimensions: []string{"coursely.age_band", "coursely.region", "fitapp.spend", "fitapp.revenue", "coursely.email"}}},
		Datasets: map[string]DatasetState{"coursely": {true, true}, "fitapp": {true, true}},
	}
}

var (
	analyst  = Principal{ID: "ana", Role: RoleAnalyst, Partner: "coursely"}
	partner  = Principal{ID: "coursely", Role: RolePartner, Partner: "coursely"}
	auditor  = Principal{ID: "aud", Role: RoleAuditor, Partner: "fitapp"}
	operator = Principal{ID: "op", Role: RoleOperator}
)

func queryInput(q QueryShape) Input {
	return Input{Principal: analyst, Action: "query.run", Collaboration: collab(), Resource: Resource{Query: &q}}
}

func okQuery() QueryShape {
	return QueryShape{Metrics: []string{"count", "sum"}, GroupBy: []string{"coursely.age_band"}, Columns: []string{"fitapp.revenue"}, Epsilon: 0.2}
}

func upload(rows, diff int64) Input {
	return Input{Principal: partner, Action: "dataset.upload", Collaboration: collab(),
		Resource: Resource{Dataset: &DatasetStats{Rows: rows, DifferenceFromPrevious: diff}}}
}

func TestDecide(t *testing.T) {
	e := newEngine(t)
	tests := []struct {
		name   string
		in     func() Input
		reason string // "" means allowed
	}{
		{"query allowed", func() Input { return queryInput(okQuery()) }, ""},
		{"non-member", func() Input {
			in := queryInput(okQuery())
			in.Principal = Principal{ID: "x", Role: RoleAnalyst, Partner: "rival"}
			return in
		}, "only members of the collaboration may act on it"},
		{"auditor reads the audit log", func() Input {
			return Input{Principal: auditor, Action: ActionBudgetRead, Collaboration: collab()}
		}, ""},
		{"auditor never queries", func() Input {
			in := queryInput(okQuery())
			in.Principal = auditor
			return in
		}, "auditors read the audit log but never touch data"},
		{"unknown role", func() Input {
			in := queryInput(okQuery())
			in.Principal.Role = "root"
			return in
		}, "the principal's role is not one the room knows"},
		{"unknown action", func() Input { return Input{Principal: partner, Action: "dataset.download", Collaboration: collab()} },
			"this action is not one the room's policy knows"},
		{"operator registers partners", func() Input { return Input{Principal: operator, Action: "partner.register"} }, ""},
		{"partner cannot register partners", func() Input { return Input{Principal: partner, Action: "partner.register"} },
			"only the room's operator may do this"},
		{"operator never queries", func() Input {
			in := queryInput(okQuery())
			in.Principal = operator
			return in
		}, "the room's operator does not act on collaborations"},
		{"not every dataset matched", func() Input {
			in := queryInput(okQuery())
			in.Collaboration.Datasets["fitapp"] = DatasetState{Uploaded: true}
			return in
		}, "queries wait until every member's list is matched"},
		{"join column grouped", func() Input {
			q := okQuery()
			q.GroupBy = []string{"coursely.email"}
			return queryInput(q)
		}, "the column coursely.email may never be output or filtered on"},
		{"join column filtered", func() Input {
			q := okQuery()
			q.FilterColumns = []string{"fitapp.token"}
			return queryInput(q)
		}, "the column fitapp.token may never be output or filtered on"},
		{"undeclared dimension", func() Input {
			q := okQuery()
			q.GroupBy = []string{"coursely.zip"}
			return queryInput(q)
		}, "grouping or filtering by coursely.zip is not allowed in this collaboration"},
		{"a member's empty list of dimensions", func() Input {
			in := queryInput(okQuery())
			in.Collaboration.Settings.Members = map[string]Constraints{"fitapp": {AllowedDimensions: []string{}}}
			return in
		}, "grouping or filtering by coursely.age_band is not allowed in this collaboration"},
		{"a member's empty list of metrics", func() Input {
			in := queryInput(okQuery())
			in.Collaboration.Settings.Members = map[string]Constraints{"fitapp": {AllowedMetrics: []string{}}}
			return in
		}, "the metric count is not allowed in this collaboration"},
		{"undeclared filter", func() Input {
			q := okQuery()
			q.FilterColumns = []string{"fitapp.zip"}
			return queryInput(q)
		}, "grouping or filtering by fitapp.zip is not allowed in this collaboration"},
		{"lift split by an undeclared dimension", func() Input {
			q := okQuery()
			q.Metrics = append(q.Metrics, "lift")
			q.Columns = append(q.Columns, "fitapp.zip", "fitapp.revenue")
			q.Splits = []string{"fitapp.zip"}
			return queryInput(q)
		}, "splitting lift by fitapp.zip is not allowed in this collaboration: lift's exposed and converted columns must be allowed dimensions"},
		{"epsilon below the floor", func() Input {
			q := okQuery()
			q.Epsilon = 5e-324
			return queryInput(q)
		}, "a query spends at least epsilon 0.01"},
		{"unknown metric", func() Input {
			q := okQuery()
			q.Metrics = []string{"median"}
			return queryInput(q)
		}, "the metric median is not allowed in this collaboration"},
		{"epsilon per query", func() Input {
			q := okQuery()
			q.Epsilon = 0.6
			return queryInput(q)
		}, "the query asks for more epsilon than one query may spend"},
		{"zero epsilon", func() Input {
			q := okQuery()
			q.Epsilon = 0
			return queryInput(q)
		}, "a query must spend some epsilon"},
		{"budget spent", func() Input {
			in := queryInput(okQuery())
			in.Usage.EpsilonSpent = 9.9
			return in
		}, "the collaboration's privacy budget is spent"},
		{"daily limit", func() Input {
			in := queryInput(okQuery())
			in.Usage.QueriesToday = 200
			return in
		}, "the daily query limit is reached"},
		{"revoked", func() Input {
			in := queryInput(okQuery())
			in.Collaboration.Revoked = true
			return in
		}, "a member revoked this collaboration: it no longer touches data"},
		{"expired", func() Input {
			in := queryInput(okQuery())
			in.Collaboration.ExpiresAt = testNow
			return in
		}, "the collaboration has expired"},
		{"not yet expired", func() Input {
			in := queryInput(okQuery())
			in.Collaboration.ExpiresAt = testNow.Add(time.Hour)
			return in
		}, ""},
		{"upload allowed", func() Input { return upload(1000, 0) }, ""},
		{"upload too few distinct", func() Input {
			in := upload(5000, 0)
			in.Resource.Dataset.Distinct = 999
			return in
		}, "the list has fewer distinct identifiers than the collaboration's minimum of 1000"},
		{"upload too large", func() Input { return upload(100_000_001, 0) }, "the list is larger than the collaboration's maximum of 100000000 rows"},
		{"differencing attack", func() Input { return upload(5000, 49) }, "differs from your previous one by fewer than 50 identifiers"},
		{"difference of 50", func() Input { return upload(5000, 50) }, ""},
		{"analyst uploads", func() Input {
			in := upload(5000, 0)
			in.Principal = analyst
			return in
		}, "only a partner itself may do this, not its analysts"},
		{"match before uploads", func() Input {
			in := Input{Principal: partner, Action: "match.run", Collaboration: collab()}
			in.Collaboration.Datasets = map[string]DatasetState{"coursely": {Uploaded: true}}
			return in
		}, "member fitapp has not uploaded its list yet"},
		{"create alone", func() Input {
			c := collab()
			c.Members = []string{"coursely"}
			return Input{Principal: partner, Action: "collaboration.create", Collaboration: c}
		}, "a collaboration needs at least two members"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Decide(context.Background(), tt.in())
			if d.PolicyHash != e.BundleHash() || len(d.PolicyHash) != 64 {
				t.Fatalf("PolicyHash %q, want the bundle hash", d.PolicyHash)
			}
			if tt.reason == "" {
				if !d.Allow || len(d.Reasons) != 0 {
					t.Fatalf("denied: %q", d.Reasons)
				}
				return
			}
			if d.Allow {
				t.Fatal("allowed")
			}
			if !slices.ContainsFunc(d.Reasons, func(r string) bool { return strings.Contains(r, tt.reason) }) {
				t.Fatalf("reasons %q lack %q", d.Reasons, tt.reason)
			}
		})
	}
}

func TestConstraintsStrictestWins(t *testing.T) {
	e := newEngine(t)
	in := queryInput(okQuery())
	in.Collaboration.Settings.MinGroupSize = 5 // looser than the room: ignored
	in.Collaboration.Settings.Members = map[string]Constraints{
		"coursely": {MinGroupSize: 100, EpsilonPerQuery: 0.3},
		"fitapp":   {MinGroupSize: 75, EpsilonPerQuery: 0.25, AllowedDimensions: []string{"coursely.age_band", "coursely.region"}},
	}
	d := e.Decide(context.Background(), in)
	c := d.Constraints
	if !d.Allow || c.MinGroupSize != 100 || c.EpsilonPerQuery != 0.25 || c.EpsilonBudget != 10 || c.MinListSize != 1000 {
		t.Fatalf("decision %+v", d)
	}
	if !slices.Equal(c.AllowedDimensions, []string{"coursely.age_band", "coursely.region"}) {
		t.Fatalf("allowed dimensions %v", c.AllowedDimensions)
	}
	if !slices.Contains(c.NeverOutputColumns, "email") || len(c.AllowedMetrics) != 8 {
		t.Fatalf("constraints %+v", c)
	}
}

func TestRoomDefaults(t *testing.T) {
	small := Constraints{MinGroupSize: 2, EpsilonPerQuery: 1, EpsilonBudget: 100, MinListSize: 10,
		MaxQueriesPerDay: 1000, MinUploadDifference: 5, AllowedMetrics: []string{"count"}}
	e, err := New(context.Background(), Options{Defaults: &small})
	if err != nil {
		t.Fatal(err)
	}
	d := e.Decide(context.Background(), upload(10, 0))
	if !d.Allow || d.Constraints.MinGroupSize != 2 {
		t.Fatalf("decision %+v", d)
	}
}

const goodModule = `package collaboration

deny contains "queries must group by region" if {
	input.action == "query.run"
	not "region" in input.resource.query.group_by
}

constraints := {"min_group_size": 120, "epsilon_per_query": 0.1}
`

func TestCollaborationModule(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	m, err := e.ParseModule(ctx, []byte(goodModule))
	if err != nil {
		t.Fatal(err)
	}
	if m.Hash != HashModule([]byte(goodModule)) {
		t.Fatal("hash mismatch")
	}
	if err := e.SetCollaborationPolicy(ctx, "alliance", m); err != nil {
		t.Fatal(err)
	}
	d := e.Decide(ctx, queryInput(okQuery()))
	if d.Allow || !slices.Contains(d.Reasons, "queries must group by region") {
		t.Fatalf("module's denial missing: %+v", d)
	}
	if d.PolicyHash != m.Hash || d.BundleHash != e.BundleHash() {
		t.Fatalf("decision carries %s, want the module's hash", d.PolicyHash)
	}
	if d.Constraints.MinGroupSize != 120 || d.Constraints.EpsilonPerQuery != 0.1 {
		t.Fatalf("module's constraints not applied: %+v", d.Constraints)
	}
	// Other collaborations keep the default.
	other := queryInput(okQuery())
	other.Collaboration.ID = "other"
	if d := e.Decide(ctx, other); !d.Allow || d.PolicyHash != e.BundleHash() {
		t.Fatalf("another collaboration affected: %+v", d)
	}
	if err := e.SetCollaborationPolicy(ctx, "alliance", nil); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(ctx, queryInput(okQuery())); !d.Allow {
		t.Fatal("module still active after removal")
	}
}

func TestModuleRefused(t *testing.T) {
	e := newEngine(t)
	tests := []struct {
		name, src string
		line      int
		msg       string
	}{
		{"syntax", "package collaboration\n\ndeny contains \"x\" if {\n\t1 +\n}\n", 5, "unexpected } token"},
		{"wrong package", "package cleanroom\n\ndeny contains \"x\" if true\n", 1, "package must be collaboration"},
		{"http.send", "package collaboration\n\nx := http.send({\"method\": \"get\", \"url\": \"http://127.0.0.1/\"})\n", 3, "http.send"},
		{"mocking a builtin with http.send", "package collaboration\n\ny if {\n\tis_object({}) with is_object as http.send\n}\n", 4, "var http is unsafe"},
		{"opa.runtime", "package collaboration\n\nx := opa.runtime()\n", 3, "opa.runtime"},
		{"clock", "package collaboration\n\nx := time.now_ns()\n", 3, "time.now_ns"},
		{"unsafe var", "package collaboration\n\ndeny contains y if {\n\tx == 1\n}\n", 3, ""},
		{"recursion into the default", "package collaboration\n\nconstraints := data.cleanroom.constraints\n", 0, "recursive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.ParseModule(context.Background(), []byte(tt.src))
			var ce *CompileError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCompile) {
				t.Fatalf("ParseModule = %v, want a CompileError", err)
			}
			if tt.line > 0 && ce.Problems[0].Line != tt.line {
				t.Errorf("line %d, want %d: %v", ce.Problems[0].Line, tt.line, err)
			}
			if ce.Problems[0].Column == 0 && tt.line > 0 {
				t.Errorf("no column: %v", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q lacks %q", err, tt.msg)
			}
		})
	}
}

func TestEvaluationFailuresDeny(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		// timeout is the engine's: long enough that a loaded machine
		// does not turn the runtime error into a timeout.
		timeout     time.Duration
		src, reason string
		undecided   bool // a timeout; an error is a decision
	}{
		"runtime error": {10 * time.Second, "package collaboration\n\ndeny contains \"never\" if {\n\tx := 1 / 0\n\tx > 0\n}\n",
			"the policy could not be evaluated; the action is refused", false},
		"too slow": {50 * time.Millisecond, "package collaboration\n\ndeny contains \"never\" if {\n\tcount([y | some y in numbers.range(1, 100000000)]) < 0\n}\n",
			"the policy took too long to decide; the action is refused", true},
	} {
		t.Run(name, func(t *testing.T) {
			e, err := New(ctx, Options{Timeout: tc.timeout})
			if err != nil {
				t.Fatal(err)
			}
			m, err := e.ParseModule(ctx, []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if err := e.SetCollaborationPolicy(ctx, "alliance", m); err != nil {
				t.Fatal(err)
			}
			d := e.Decide(ctx, queryInput(okQuery()))
			if d.Allow || !slices.Equal(d.Reasons, []string{tc.reason}) || d.PolicyHash != m.Hash || d.Undecided != tc.undecided {
				t.Fatalf("decision %+v", d)
			}
		})
	}
}

func TestApprovalFlow(t *testing.T) {
	e := newEngine(t)
	members := []string{"coursely", "fitapp", "musicly"}
	m1, _ := e.ParseModule(context.Background(), []byte(goodModule))
	m2, _ := e.ParseModule(context.Background(), []byte(goodModule+"\n# v2\n"))
	var p Proposals

	if _, err := p.Propose("rival", members, m1); !errors.Is(err, ErrNotMember) {
		t.Fatalf("non-member proposal: %v", err)
	}
	if _, err := p.Propose("coursely", members, m1); err != nil || p.Active != "" {
		t.Fatalf("propose: %v, active %q", err, p.Active)
	}
	if _, err := p.Propose("fitapp", members, m2); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		member, hash string
		activated    bool
		err          error
	}{
		{"rival", m1.Hash, false, ErrNotMember},
		{"fitapp", "deadbeef", false, ErrUnknownProposal},
		{"fitapp", m1.Hash, false, nil},
		{"fitapp", m1.Hash, false, nil},                  // approving twice counts once
		{"musicly", m1.Hash, true, nil},                  // every member approved that exact hash
		{"coursely", m2.Hash, false, ErrUnknownProposal}, // discarded on activation
	}
	for i, s := range steps {
		activated, _, err := p.Approve(s.member, members, s.hash)
		if activated != s.activated || !errors.Is(err, s.err) {
			t.Fatalf("step %d (%s approves %.8s): %v, %v; want %v, %v", i, s.member, s.hash, activated, err, s.activated, s.err)
		}
	}
	if p.Active != m1.Hash || len(p.Pending) != 0 {
		t.Fatalf("active %q, pending %v", p.Active, p.Pending)
	}
	// A member has one proposal pending: a new one replaces its previous.
	m3, _ := e.ParseModule(context.Background(), []byte(goodModule+"\n# v3\n"))
	m4, _ := e.ParseModule(context.Background(), []byte(goodModule+"\n# v4\n"))
	if dropped, err := p.Propose("fitapp", members, m3); err != nil || len(dropped) != 0 {
		t.Fatalf("propose m3: %v %v", dropped, err)
	}
	if dropped, err := p.Propose("fitapp", members, m4); err != nil || len(dropped) != 1 || dropped[0] != m3.Hash || len(p.Pending) != 1 {
		t.Fatalf("propose m4 over m3: dropped %v, pending %v, %v", dropped, p.Pending, err)
	}
	p.Approve("coursely", members, m4.Hash)
	if activated, dropped, err := p.Approve("musicly", members, m4.Hash); !activated || err != nil || len(dropped) != 1 || dropped[0] != m1.Hash {
		t.Fatalf("activating m4: %v %v %v", activated, dropped, err)
	}
}

// TestConcurrentDecide runs decisions while policies change (run with -race).
func TestConcurrentDecide(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	mods := make([]*Module, 3)
	for i := range mods {
		var err error
		if mods[i], err = e.ParseModule(ctx, []byte(fmt.Sprintf("%s\n# %d\n", goodModule, i))); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if w == 0 {
					if err := e.SetCollaborationPolicy(ctx, "alliance", mods[i%3]); err != nil {
						t.Error(err)
					}
					continue
				}
				in := queryInput(okQuery())
				if w%2 == 0 {
					in.Collaboration.ID = "other"
				}
				d := e.Decide(ctx, in)
				if in.Collaboration.ID == "other" && !d.Allow {
					t.Errorf("default policy denied: %v", d.Reasons)
				}
			}
		})
	}
	wg.Wait()
}

func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, append(depcheck.Leaves, "github.com/dgraph-io/badger")...)
}

// TestModuleCannotDenyRevoke: revoking is decided by the default bundle
// alone, whatever the collaboration's module says.
func TestModuleCannotDenyRevoke(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	src := []byte("package collaboration\n\ndeny contains \"no way out\" if input.action in {\"collaboration.revoke\", \"policy.propose\"}\n")
	m, err := e.ParseModule(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetCollaborationPolicy(ctx, "alliance", m); err != nil {
		t.Fatal(err)
	}
	in := Input{Principal: partner, Action: "collaboration.revoke", Collaboration: collab()}
	if d := e.Decide(ctx, in); !d.Allow || d.PolicyHash != e.BundleHash() {
		t.Errorf("revoke under a module that denies it: %+v", d)
	}
	in.Action = "policy.propose"
	if d := e.Decide(ctx, in); d.Allow || d.PolicyHash != m.Hash {
		t.Errorf("the module's own denial of proposals: %+v", d)
	}
}

// TestActionsKnownToRego: the actions Go asks the policy about are exactly
// those the default bundle knows, both ways.
func TestActionsKnownToRego(t *testing.T) {
	ctx := context.Background()
	var mods []func(*rego.Rego)
	err := fs.WalkDir(bundleFS, "rego", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.rego") {
			return err
		}
		src, err := bundleFS.ReadFile(path)
		mods = append(mods, rego.Module(path, string(src)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rego.New(append(mods, rego.Query("data.cleanroom.known_actions"))...).Eval(ctx)
	if err != nil || len(rs) != 1 {
		t.Fatalf("evaluating known_actions: %v %v", rs, err)
	}
	var inRego []string
	for _, a := range rs[0].Expressions[0].Value.([]any) {
		inRego = append(inRego, a.(string))
	}
	var goActions []string
	for _, a := range Actions() {
		goActions = append(goActions, string(a))
	}
	slices.Sort(inRego)
	slices.Sort(goActions)
	if !slices.Equal(inRego, goActions) {
		t.Fatalf("the Rego knows %v\nGo decides %v", inRego, goActions)
	}
}

// TestDecisionCountsExact: the counts of a decision are the integers the
// policy wrote, up to MaxCount, never read back through a float64 (whose
// conversion to an integer out of range made 2^63-1 into -2^63, a k that
// switched guards off).
func TestDecisionCountsExact(t *testing.T) {
	e := newEngine(t)
	in := queryInput(okQuery())
	in.Collaboration.Settings.MinGroupSize = MaxCount
	in.Collaboration.Settings.MinListSize = MaxCount - 1
	d := e.Decide(context.Background(), in)
	if d.Constraints.MinGroupSize != MaxCount || d.Constraints.MinListSize != MaxCount-1 {
		t.Fatalf("settings k %d and min list %d, the decision's %d and %d", MaxCount, MaxCount-1, d.Constraints.MinGroupSize, d.Constraints.MinListSize)
	}
	if _, err := New(context.Background(), Options{Defaults: &Constraints{MinGroupSize: math.MaxInt64}}); err == nil {
		t.Fatal("a room's default k past MaxCount was taken")
	}
	// A decision whose k is past MaxCount (a module's, say) is an error,
	// not a wrapped-around integer.
	var dv any
	dec := json.NewDecoder(strings.NewReader(`{"allow": true, "reasons": [], "constraints": {"epsilon_per_query": 0.5,
		"epsilon_min_per_query": 0.01, "epsilon_budget": 10, "epsilon_match": 0.1, "delta_per_query": 1e-8, "delta_budget": 1e-6,
		"min_list_size": 1000, "max_list_size": 100000000, "min_upload_difference": 50, "max_queries_per_day": 200,
		"max_matches_per_day": 10, "max_uploads_per_day": 10, "min_group_size": 9223372036854775807}}`))
	dec.UseNumber()
	if err := dec.Decode(&dv); err != nil {
		t.Fatal(err)
	}
	if d, err := decodeDecision(dv); err == nil {
		t.Fatalf("a k of 2^63-1 decoded as %d", d.Constraints.MinGroupSize)
	}
	dv.(map[string]any)["constraints"].(map[string]any)["min_group_size"] = json.Number("50")
	if d, err := decodeDecision(dv); err != nil || d.Constraints.MinGroupSize != 50 {
		t.Fatalf("k of 50 decoded as %d, %v", d.Constraints.MinGroupSize, err)
	}
}
