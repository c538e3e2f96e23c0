package cleanroom

import (
	"context"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestCachedRecordsFollowChanges: the status and budget routes read the
// collaboration and its ledger through the room's caches; every change a
// member makes is seen by the next read, never a decoded record of before.
func TestCachedRecordsFollowChanges(t *testing.T) {
	tr, a, b, _ := readyPair(t, api.ModeHashed, map[string]any{"noise_off": true})
	ctx := context.Background()
	charlie := tr.partner("charlie", policy.RolePartner, "")
	if _, err := a.CreateCollaboration(ctx, api.CreateCollaboration{ID: "c2", Mode: api.ModeHashed, Kind: "email",
		Members: []string{"alpha", "charlie"}}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second read is served from the cache
		v, err := a.Collaboration(ctx, "c2")
		if err != nil || v.Accepted["charlie"] {
			t.Fatalf("before charlie accepts: %v, accepted %v", err, v.Accepted)
		}
	}
	acceptAsShown(t, charlie, "c2")
	if v, err := a.Collaboration(ctx, "c2"); err != nil || !v.Accepted["charlie"] {
		t.Fatalf("after charlie accepted: %v, accepted %v", err, v.Accepted)
	}

	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	before, err := a.Budget(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Budget(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	q := api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}}
	if _, err := a.Query(ctx, "c1", q); err != nil {
		t.Fatal(err)
	}
	after, err := b.Budget(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if after.QueriesToday != before.QueriesToday+1 {
		t.Errorf("the budget after a query: %+v; before it: %+v", after, before)
	}

	if err := b.Revoke(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if v, err := a.Collaboration(ctx, "c1"); err != nil || !v.Revoked {
		t.Fatalf("after bravo revoked: %v, revoked %v", err, v != nil && v.Revoked)
	}
}

// TestCachedRecordsCheckedInTests: the rooms the tests run check that no
// reader modifies a record the caches share. A reader that did (here, one
// that raises a partner to operator) would change what every later request
// of that principal is allowed: the next read must stop the test.
func TestCachedRecordsCheckedInTests(t *testing.T) {
	tr := startRoom(t)
	tr.partner("alpha", policy.RolePartner, "")
	p, err := tr.room.principal("alpha")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := tr.room.principal("alpha"); err != nil || again != p {
		t.Fatalf("the second read of an unchanged principal was not the cached record (%v)", err)
	}
	p.Role = policy.RoleOperator // what a reader must never do
	defer func() {
		p.Role = policy.RolePartner
		if s, _ := recover().(string); !strings.Contains(s, "modified by a reader") {
			t.Errorf("a modified shared principal: recovered %q, want the check's panic", s)
		}
	}()
	tr.room.principal("alpha")
}
