package policy

import (
	"context"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

// cacheInputs are inputs that differ from one another in one part each,
// every one of which the policy reads.
func cacheInputs() map[string]Input {
	expiring := collab()
	expiring.ExpiresAt = testNow.Add(time.Second)
	narrow := collab()
	narrow.Settings.Constraints.AllowedDimensions = []string{"coursely.region"}
	strict := collab()
	strict.Settings.Constraints.MinGroupSize = 500
	unmatched := collab()
	unmatched.Datasets["fitapp"] = DatasetState{Uploaded: true}
	revoked := collab()
	revoked.Revoked = true
	spent := Input{Principal: analyst, Action: ActionQueryRun, Collaboration: collab(), Resource: Resource{Query: new(okQuery())},
		Usage: Usage{EpsilonSpent: 9.9}}
	return map[string]Input{
		"read":             {Principal: partner, Action: ActionCollaborationRead, Collaboration: collab()},
		"budget read":      {Principal: partner, Action: ActionBudgetRead, Collaboration: collab()},
		"auditor read":     {Principal: auditor, Action: ActionBudgetRead, Collaboration: collab()},
		"query":            queryInput(okQuery()),
		"query, narrow":    {Principal: analyst, Action: ActionQueryRun, Collaboration: narrow, Resource: Resource{Query: new(okQuery())}},
		"query, strict k":  {Principal: analyst, Action: ActionQueryRun, Collaboration: strict, Resource: Resource{Query: new(okQuery())}},
		"query, unmatched": {Principal: analyst, Action: ActionQueryRun, Collaboration: unmatched, Resource: Resource{Query: new(okQuery())}},
		"query, revoked":   {Principal: analyst, Action: ActionQueryRun, Collaboration: revoked, Resource: Resource{Query: new(okQuery())}},
		"query, expiring":  {Principal: analyst, Action: ActionQueryRun, Collaboration: expiring, Resource: Resource{Query: new(okQuery())}},
		"query, spent":     spent,
		"non-member":       {Principal: Principal{ID: "x", Role: RoleAnalyst, Partner: "rival"}, Action: ActionQueryRun, Collaboration: collab(), Resource: Resource{Query: new(okQuery())}},
		"upload":           upload(10, 0),
		"operator":         {Principal: operator, Action: "partner.register"},
		"partner register": {Principal: partner, Action: "partner.register"},
	}
}

// TestDecisionCacheAnswersAsEvaluation: every decision answered from the
// cache is the one an evaluation gives, at each of several clock readings
// (a collaboration expires between two of them), and the answers do not
// share memory with the cache.
func TestDecisionCacheAnswersAsEvaluation(t *testing.T) {
	ctx := context.Background()
	var now atomic.Int64
	now.Store(testNow.Unix())
	clock := func() time.Time { return time.Unix(now.Load(), 0) }
	cached, err := New(ctx, Options{Now: clock, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := New(ctx, Options{Now: clock, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fresh.noDecisionCache = true
	if !cached.prepared[cached.bundleHash].pure {
		t.Fatal("the default bundle is not found pure: its decisions are never cached")
	}
	inputs := cacheInputs()
	allowed, denied := 0, 0
	for _, step := range []int64{0, 0, 1, 2, 2} {
		now.Store(testNow.Unix() + step)
		for name, in := range inputs {
			want := fresh.Decide(ctx, in)
			got := cached.Decide(ctx, in)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("at +%ds, %s: cached %+v, evaluated %+v", step, name, got, want)
			}
			if got.Allow {
				allowed++
			} else {
				denied++
			}
			// A caller changing what it was given changes nothing for the
			// next caller.
			got.Reasons = append(got.Reasons[:0:0], "changed")
			if len(got.Constraints.AllowedDimensions) > 0 {
				got.Constraints.AllowedDimensions[0] = "changed"
			}
		}
	}
	if allowed == 0 || denied == 0 {
		t.Fatalf("%d allowed, %d denied: the inputs do not exercise both", allowed, denied)
	}
	if d := cached.Decide(ctx, inputs["query, expiring"]); d.Allow {
		t.Fatal("an expired collaboration's query was allowed from the cache")
	}
	if len(cached.decisions.m) == 0 {
		t.Fatal("nothing was cached")
	}
}

// TestDecisionCacheNeverAnswersAChangedPolicy: a decision remembered under
// one policy is never the answer once another is active, nor after it is
// removed.
func TestDecisionCacheNeverAnswersAChangedPolicy(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	in := queryInput(okQuery()) // groups by age band: the module denies it
	steps := []struct {
		name   string
		module string // "" removes the module
		allow  bool
	}{
		{"default", "", true},
		{"module", goodModule, false},
		{"removed", "", true},
		{"module again", goodModule, false},
		{"another module", "package collaboration\n\nconstraints := {\"min_group_size\": 120}\n", true},
		{"removed again", "", true},
	}
	for _, s := range steps {
		want := e.BundleHash()
		var m *Module
		if s.module != "" {
			var err error
			if m, err = e.ParseModule(ctx, []byte(s.module)); err != nil {
				t.Fatal(err)
			}
			want = m.Hash
		}
		if err := e.SetCollaborationPolicy(ctx, "alliance", m); err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second from the cache
			d := e.Decide(ctx, in)
			if d.Allow != s.allow || d.PolicyHash != want {
				t.Fatalf("%s: allow %v under %s, want %v under %s", s.name, d.Allow, d.PolicyHash, s.allow, want)
			}
			if s.module == goodModule && d.Constraints.MinGroupSize != 120 {
				t.Fatalf("%s: constraints %+v", s.name, d.Constraints)
			}
		}
	}
}

// TestDecisionCacheSkipsImpurePolicies: a policy naming a built-in whose
// result depends on more than its arguments is evaluated every time.
func TestDecisionCacheSkipsImpurePolicies(t *testing.T) {
	ctx := context.Background()
	for name, src := range map[string]string{
		"jwt verification reads the clock":  "package collaboration\n\ndeny contains \"bad token\" if {\n\tnot io.jwt.decode_verify(\"a.b.c\", {\"secret\": \"s\"})[0]\n\tinput.action == \"none\"\n}\n",
		"x509 verification reads the clock": "package collaboration\n\ndeny contains \"bad chain\" if {\n\tinput.action == \"none\"\n\tnot crypto.x509.parse_and_verify_certificates(\"\")[0]\n}\n",
		"schemas may be fetched":            "package collaboration\n\ndeny contains \"bad\" if {\n\tinput.action == \"none\"\n\tnot json.verify_schema({})[0]\n}\n",
		"SigV4a signatures are random":      "package collaboration\n\ndeny contains \"bad\" if {\n\tinput.action == \"none\"\n\tproviders.aws.sign_req({\"method\": \"get\", \"url\": \"https://x\"}, {\"aws_access_key\": \"a\", \"aws_secret_access_key\": \"s\", \"aws_service\": \"s3\", \"aws_region\": \"r\"}, 0)\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			e := newEngine(t)
			m, err := e.ParseModule(ctx, []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			if err := e.SetCollaborationPolicy(ctx, "alliance", m); err != nil {
				t.Fatal(err)
			}
			if e.prepared[m.Hash].pure {
				t.Fatal("found pure")
			}
			for range 2 {
				if d := e.Decide(ctx, queryInput(okQuery())); !d.Allow || d.PolicyHash != m.Hash {
					t.Fatalf("decision %+v", d)
				}
			}
			if n := len(e.decisions.m); n != 0 {
				t.Fatalf("%d decisions cached", n)
			}
			// Another collaboration, under the pure default bundle, is cached.
			other := queryInput(okQuery())
			other.Collaboration.ID = "other"
			e.Decide(ctx, other)
			if len(e.decisions.m) != 1 {
				t.Fatalf("%d decisions cached under the default bundle, want 1", len(e.decisions.m))
			}
		})
	}
}

// TestDecisionKeyCoversInput changes each field of a full Input in turn,
// and each part of the decision's context (policy, clock), and checks that
// the decision's key changes: a field the key left out would let a
// decision made for one input answer another.
func TestDecisionKeyCoversInput(t *testing.T) {
	e := newEngine(t)
	ctx := context.Background()
	full := func() Input {
		c := collab()
		c.ExpiresAt = testNow.Add(time.Hour)
		c.PolicyHash = "p"
		c.Settings.Members = map[string]Constraints{"coursely": {MinGroupSize: 60, AllowedMetrics: []string{"count"}}}
		c.Settings.Domains = map[string][]string{"coursely.region": {"north"}}
		c.Settings.Bounds = map[string][2]float64{"fitapp.spend": {0, 100}}
		c.Settings.Activation = &Activation{}
		return Input{
			Principal: Principal{ID: "ana", Role: RoleAnalyst, Partner: "coursely"}, Action: ActionQueryRun, Collaboration: c,
			Resource: Resource{Dataset: &DatasetStats{Rows: 1}, Query: new(okQuery()), Model: &ModelShape{Label: "l", Features: []string{"f"}, Dimensions: []string{"d"}, Epsilon: 1},
				Activation: &ActivationShape{FilterColumns: []string{"f"}, Dimensions: []string{"d"}}},
			Usage: Usage{EpsilonSpent: 1, DeltaSpent: 1, QueriesToday: 1, MatchesToday: 1, UploadsToday: 1, ActivationsToday: 1, Activations: 1},
		}
	}
	keyOf := func(in Input, hash string, now time.Time) string {
		t.Helper()
		var state string
		if in.Collaboration != nil {
			var err error
			if _, state, err = e.collabState(ctx, in.Collaboration, hash, e.prepared[e.bundleHash]); err != nil {
				t.Fatal(err)
			}
		}
		k, err := e.key(in, hash, now, state)
		if err != nil {
			t.Fatal(err)
		}
		return string(k)
	}
	base := keyOf(full(), e.bundleHash, testNow)
	if keyOf(full(), e.bundleHash, testNow) != base {
		t.Fatal("the key of one input differs between two calls")
	}
	if keyOf(full(), "another policy", testNow) == base {
		t.Error("the policy is not in the key")
	}
	if keyOf(full(), e.bundleHash, testNow.Add(time.Second)) == base {
		t.Error("the clock's second is not in the key")
	}
	if keyOf(Input{Principal: analyst, Action: ActionQueryRun}, e.bundleHash, testNow) == keyOf(Input{Principal: analyst, Action: ActionQueryRun, Collaboration: &Collaboration{}}, e.bundleHash, testNow) {
		t.Error("an empty collaboration has the key of none")
	}
	noExpiry := full()
	noExpiry.Collaboration.ExpiresAt = time.Time{}
	epoch := full()
	epoch.Collaboration.ExpiresAt = time.Unix(0, 0)
	if keyOf(noExpiry, e.bundleHash, testNow) == keyOf(epoch, e.bundleHash, testNow) {
		t.Error("no expiry has the key of an expiry at 0")
	}
	// Every leaf of the input, reached by its path of field names.
	n := 0
	var walk func(path string, get func(*Input) reflect.Value, typ reflect.Type)
	walk = func(path string, get func(*Input) reflect.Value, typ reflect.Type) {
		if typ == reflect.TypeFor[time.Time]() {
			n++
			in := full()
			v := get(&in)
			v.Set(reflect.ValueOf(v.Interface().(time.Time).Add(time.Hour)))
			if keyOf(in, e.bundleHash, testNow) == base {
				t.Errorf("changing %s leaves the key as it was", path)
			}
			return
		}
		switch typ.Kind() {
		case reflect.Struct:
			for i := range typ.NumField() {
				f := typ.Field(i)
				walk(path+"."+f.Name, func(in *Input) reflect.Value { return get(in).Field(i) }, f.Type)
			}
			return
		case reflect.Pointer:
			walk(path, func(in *Input) reflect.Value { return get(in).Elem() }, typ.Elem())
			return
		}
		n++
		in := full()
		v := get(&in)
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Int, reflect.Int64:
			v.SetInt(v.Int() + 1)
		case reflect.Float64:
			v.SetFloat(v.Float() + 0.5)
		case reflect.Slice:
			v.Set(reflect.Append(v, reflect.New(typ.Elem()).Elem()))
		case reflect.Map:
			v.SetMapIndex(reflect.ValueOf("another"), reflect.New(typ.Elem()).Elem())
		case reflect.Array:
			v.Index(0).Set(reflect.New(typ.Elem()).Elem())
		default:
			t.Fatalf("%s: a %s: teach this test to change it", path, typ)
		}
		if keyOf(in, e.bundleHash, testNow) == base {
			t.Errorf("changing %s leaves the key as it was", path)
		}
	}
	walk("Input", func(in *Input) reflect.Value { return reflect.ValueOf(in).Elem() }, reflect.TypeFor[Input]())
	if n < 40 {
		t.Fatalf("only %d fields changed", n)
	}
}
