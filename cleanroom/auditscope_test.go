package cleanroom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/policy"
)

// exported is a verified bundle: its report and its entries by index.
type exported struct {
	rep     *audit.Report
	entries map[int64]audit.Entry
	order   []int64
}

// exportAs exports the audit log as c would and verifies it offline with
// the room's published verifier key.
func exportAs(t *testing.T, tr *testRoom, c *client.Client) exported {
	t.Helper()
	var buf bytes.Buffer
	if err := c.ExportAuditRange(context.Background(), &buf, 0, 0, nil); err != nil {
		t.Fatalf("%s: export: %v", c.Principal(), err)
	}
	v, err := note.NewVerifier(tr.room.Info().VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	x := exported{entries: map[int64]audit.Entry{}}
	x.rep, err = audit.VerifyEntries(&buf, v, nil, func(i int64, e audit.Entry) error {
		x.entries[i] = e
		x.order = append(x.order, i)
		return nil
	})
	if err != nil {
		t.Fatalf("%s: verify: %v", c.Principal(), err)
	}
	return x
}

// TestAuditorScope: an auditor receives exactly the entries that concern
// its partner (its collaborations', its principals' room-level ones), each
// proved against the room's signed checkpoint, and none of a collaboration
// its partner is not in, even one its partner's principals acted on. A
// room auditor and the operator receive the whole log.
func TestAuditorScope(t *testing.T) {
	tr, alpha, bravo, _ := readyPair(t, api.ModeHashed, map[string]any{"noise_off": true})
	ctx := context.Background()
	charlie := tr.partner("charlie", policy.RolePartner, "")
	tr.partner("delta", policy.RolePartner, "")
	tr.collab("c2", api.ModeHashed, nil, bravo, charlie)
	ana := tr.partner("ana", policy.RoleAnalyst, "alpha")
	audA := tr.partner("aud-alpha", policy.RoleAuditor, "alpha")
	audC := tr.partner("aud-charlie", policy.RoleAuditor, "charlie")
	audD := tr.partner("aud-delta", policy.RoleAuditor, "delta")
	reg := tr.partner("regulator", policy.RoleRoomAuditor, "")

	if _, err := alpha.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := ana.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}}); err != nil {
		t.Fatal(err)
	}
	// Charlie probes c1, which it is not in; ana tries an operator's read.
	wantProblem(t, errOf(charlie.Collaboration(ctx, "c1")), api.ProblemDenied)
	if resp, _ := rawRequest(t, tr, "ana", "GET", "/v1/principals", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an analyst listed the principals: %s", resp.Status)
	}
	wantProblem(t, errOf(reg.Collaboration(ctx, "c1")), api.ProblemDenied)

	full := exportAs(t, tr, reg)
	if full.rep.Format != audit.BundleFormat || full.rep.Entries != full.rep.TreeSize {
		t.Fatalf("room auditor: %+v, want the whole log", full.rep)
	}
	if op := exportAs(t, tr, tr.op); op.rep.Format != audit.BundleFormat {
		t.Fatalf("operator: %+v, want the whole log", op.rep)
	}

	tests := []struct {
		auditor    *client.Client
		collabs    []string
		principals []string
		mustSee    func(audit.Entry) bool // one entry it must find
	}{
		{audA, []string{"c1"}, []string{"alpha", "ana", "aud-alpha"}, func(e audit.Entry) bool {
			return e.Collaboration == "c1" && e.Principal == "charlie" && !e.Decision.Allow // the probe of its collaboration
		}},
		{audC, []string{"c2"}, []string{"charlie", "aud-charlie"}, func(e audit.Entry) bool {
			return e.Collaboration == "c2" && e.Action == "collaboration.create"
		}},
		{audD, nil, []string{"delta", "aud-delta"}, func(e audit.Entry) bool {
			return e.Principal == "aud-delta" && e.Action == "audit.export"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.auditor.Principal(), func(t *testing.T) {
			got := exportAs(t, tr, tt.auditor)
			if got.rep.Format != audit.SparseBundleFormat {
				t.Fatalf("format %s, want a sparse bundle", got.rep.Format)
			}
			// Exactly the entries of the full log that concern the
			// partner, up to the checkpoint this export was proved against.
			var want []int64
			for _, i := range full.order {
				e := full.entries[i]
				if i >= got.rep.TreeSize {
					break
				}
				if (e.Collaboration != "" && slices.Contains(tt.collabs, e.Collaboration)) ||
					(e.Collaboration == "" && slices.Contains(tt.principals, e.Principal)) {
					want = append(want, i)
				}
			}
			var mine []int64
			for _, i := range got.order {
				if i < full.rep.TreeSize {
					mine = append(mine, i)
				}
				if e := got.entries[i]; e.Collaboration != "" && !slices.Contains(tt.collabs, e.Collaboration) {
					t.Errorf("entry %d of collaboration %s, which the partner is not in", i, e.Collaboration)
				}
			}
			if !slices.Equal(mine, want) {
				t.Errorf("entries %v\nwant %v", mine, want)
			}
			if !slices.ContainsFunc(slices.Collect(maps.Values(got.entries)), tt.mustSee) {
				t.Error("an entry that concerns the partner is missing")
			}
		})
	}
}

// TestRoomAuditorRegistration: a room auditor works for no partner.
func TestRoomAuditorRegistration(t *testing.T) {
	tr := startRoom(t)
	tr.partner("alpha", policy.RolePartner, "")
	k := tr.keys["alpha"]
	err := tr.op.RegisterPrincipal(context.Background(), api.Principal{ID: "reg", Role: policy.RoleRoomAuditor, Partner: "alpha", Keys: k.Public()})
	wantProblem(t, err, api.ProblemBadRequest)
	err = tr.op.RegisterPrincipal(context.Background(), api.Principal{ID: "aud", Role: policy.RoleAuditor, Keys: k.Public()})
	wantProblem(t, err, api.ProblemBadRequest)
}

func errOf[T any](_ T, err error) error { return err }

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestKeyedResultDigests: an auditor who reads a query's and a match's
// result digests cannot find the results by trying candidates, as it could
// against a plain SHA-256; a member, with the collaboration's digest key,
// matches what it received to the log.
func TestKeyedResultDigests(t *testing.T) {
	tr, alpha, bravo, _ := readyPair(t, api.ModeHashed, map[string]any{"noise_off": true})
	ctx := context.Background()
	ana := tr.partner("ana", policy.RoleAnalyst, "alpha")
	aud := tr.partner("aud", policy.RoleAuditor, "alpha")
	charlie := tr.partner("charlie", policy.RolePartner, "")
	m, err := bravo.Match(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	q, err := ana.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Rows) != 1 || q.Noise {
		t.Fatalf("query result %+v", q)
	}
	count := q.Rows[0][len(q.Rows[0])-1].(float64)

	x := exportAs(t, tr, aud)
	var matchDigest, queryDigest string
	for _, i := range x.order {
		e := x.entries[i]
		switch {
		case e.Action == "match.run" && e.Decision.Allow:
			matchDigest = e.ResultDigest
		case e.Action == "query.run" && e.Decision.Allow:
			queryDigest = e.ResultDigest
		}
	}
	if matchDigest == "" || queryDigest == "" {
		t.Fatal("the auditor's bundle lacks the match's or the query's result digest")
	}

	// The auditor knows everything about the answer but the count, and
	// tries every count up to ten times the lists' size.
	candidate := func(n int) []byte {
		c := *q
		c.Rows = [][]any{slices.Clone(q.Rows[0])}
		c.Rows[0][len(c.Rows[0])-1] = float64(n)
		b, err := api.ResultBody(&c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if truth, _ := api.ResultBody(q); !bytes.Equal(candidate(int(count)), truth) {
		t.Fatal("the enumeration would not find the answer even with the key")
	}
	for n := range 30_000 {
		b := candidate(n)
		if sha256Hex(b) == queryDigest {
			t.Fatalf("the logged digest is a plain SHA-256: the count %d is recovered", n)
		}
	}
	wantProblem(t, errOf(aud.DigestKey(ctx, "c1")), api.ProblemDenied)
	if e := lastEntry(t, tr.room); e.Principal != "aud" || e.Decision.Allow {
		t.Errorf("the refused digest key is not audited: %+v", e)
	}
	wantProblem(t, errOf(charlie.DigestKey(ctx, "c1")), api.ProblemDenied)

	// Members check what they received.
	for _, who := range []*client.Client{alpha, ana, bravo} {
		key, err := who.DigestKey(ctx, "c1")
		if err != nil {
			t.Fatalf("%s: %v", who.Principal(), err)
		}
		if err := client.CheckResult(key, queryDigest, q); err != nil {
			t.Errorf("%s: query result: %v", who.Principal(), err)
		}
		if err := client.CheckResult(key, matchDigest, m); err != nil {
			t.Errorf("%s: match result: %v", who.Principal(), err)
		}
		forged := *q
		forged.Rows = [][]any{slices.Clone(q.Rows[0])}
		forged.Rows[0][len(forged.Rows[0])-1] = count + 1
		if err := client.CheckResult(key, queryDigest, &forged); !errors.Is(err, api.ErrDigestMismatch) {
			t.Errorf("%s: a changed count checks: %v", who.Principal(), err)
		}
		if err := client.CheckResult(key, matchDigest, q); !errors.Is(err, api.ErrDigestMismatch) {
			t.Errorf("%s: the query result checks against the match's digest: %v", who.Principal(), err)
		}
	}

	// The key is the collaboration's, kept across restarts; a spec digest
	// under it checks too.
	before, _ := alpha.DigestKey(ctx, "c1")
	tr.restart()
	alpha, err = reconnect(tr, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	after, err := alpha.DigestKey(ctx, "c1")
	if err != nil || !bytes.Equal(before.Key, after.Key) {
		t.Fatalf("the digest key changed across a restart: %v", err)
	}
	spec := api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.1}
	sd, err := tr.room.specDigest(ctx, "c1", &spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.CheckSpec(after, sd, &spec); err != nil {
		t.Errorf("spec digest: %v", err)
	}
	spec.Epsilon = 0.2
	if err := client.CheckSpec(after, sd, &spec); !errors.Is(err, api.ErrDigestMismatch) {
		t.Errorf("another spec checks: %v", err)
	}
	other, err := tr.room.digestKey("c2")
	if err != nil || bytes.Equal(other, after.Key) {
		t.Fatalf("two collaborations share a digest key (%v)", err)
	}
}

// TestChargeReconciles: the budget reconciles from the audit log alone:
// every match release and query records its charge in its entry, and an
// auditor's bundle sums to what the ledger says was spent; each query's
// spec digest checks against the spec its member sent.
func TestChargeReconciles(t *testing.T) {
	tr, a, b, _ := readyPair(t, api.ModeHashed, map[string]any{"allowed_dimensions": []string{"alpha.age_band"}})
	aud := tr.partner("aud", policy.RoleAuditor, "bravo")
	ctx := context.Background()
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	specs := []api.QuerySpec{
		{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.25},
		{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{"alpha.age_band"}, Epsilon: 0.123456},
		{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.01},
	}
	for i, q := range specs {
		c := a
		if i%2 == 1 {
			c = b
		}
		if _, err := c.Query(ctx, "c1", q); err != nil {
			t.Fatal(err)
		}
	}
	// A refused query charges nothing.
	if _, err := a.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.9}); err == nil {
		t.Fatal("a query over the per-query epsilon was answered")
	}
	bud, err := b.Budget(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	x := exportAs(t, tr, aud)
	var entries []audit.Entry
	for _, i := range x.order {
		entries = append(entries, x.entries[i])
	}
	got := audit.ReconcileBudget(entries)
	if want := int64(math.Round(bud.Spent * 1e6)); got["c1"] != want || want != 100_000+250_000+123_456+10_000 {
		t.Fatalf("the log reconciles to %v micro-epsilon, the ledger says %g spent", got, bud.Spent)
	}
	key, err := a.DigestKey(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, e := range entries {
		if e.Action == "query.run" && e.Decision.Allow {
			if err := client.CheckSpec(key, e.SpecDigest, &specs[checked]); err != nil {
				t.Errorf("spec digest of query %d: %v", checked, err)
			}
			checked++
		}
	}
	if checked != len(specs) {
		t.Fatalf("%d charged queries in the auditor's bundle, want %d", checked, len(specs))
	}
}

func TestCollabPredates(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	indexed := &collabRecord{Created: at, CreatedEntry: 7}
	timed := &collabRecord{Created: at}
	for _, tc := range []struct {
		name string
		c    *collabRecord
		t    time.Time
		want bool
	}{
		{"indexed: Since decides", indexed, at.Add(-time.Hour), false},
		{"time only, before", timed, at.Add(-time.Nanosecond), true},
		{"time only, at", timed, at, false},
		{"room-level", nil, at.Add(-time.Hour), false},
	} {
		if got := tc.c.predates(audit.Entry{Time: tc.t}); got != tc.want {
			t.Errorf("%s: predates = %v, want %v", tc.name, got, tc.want)
		}
	}
}
