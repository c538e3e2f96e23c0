package cleanroom

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestPolicyChangeDecidedAtOnce: the policy engine remembers decisions
// (policy/decisioncache.go), and a request decided after the
// collaboration's policy changed is decided by the new policy, even within
// the second an earlier decision of the same input was remembered in (the
// room's clock stands still here), and its entry records the new policy.
func TestPolicyChangeDecidedAtOnce(t *testing.T) {
	frozen := time.Now()
	tr := startRoomWith(t, func(c *Config) { c.Now = func() time.Time { return frozen } })
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	tr.collab("c1", api.ModeHashed, nil, a, b)
	ctx := context.Background()
	const reason = "alpha may not read the budget"
	steps := []struct {
		name, module string // "" keeps the policy in force
		alphaReads   bool
	}{
		{"default bundle", "", true},
		{"a module denying alpha", "package collaboration\n\ndeny contains \"" + reason + "\" if {\n\tinput.action == \"budget.read\"\n\tinput.principal.partner == \"alpha\"\n}\n", false},
		{"a module allowing alpha again", "package collaboration\n\nconstraints := {\"min_group_size\": 100}\n", true},
	}
	for _, s := range steps {
		want := tr.room.policy.BundleHash()
		if s.module != "" {
			prop, err := a.ProposePolicy(ctx, "c1", []byte(s.module))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := b.ApprovePolicy(ctx, "c1", prop.Hash); err != nil || !got.Active {
				t.Fatalf("%s: approve: %+v %v", s.name, got, err)
			}
			want = prop.Hash
		}
		for range 3 { // the same input, in the same second
			_, err := a.Budget(ctx, "c1")
			if s.alphaReads && err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if !s.alphaReads {
				if p := wantProblem(t, err, api.ProblemDenied); !slices.Contains(p.Reasons, reason) {
					t.Fatalf("%s: reasons %v", s.name, p.Reasons)
				}
			}
			if e := lastEntry(t, tr.room); e.Decision.PolicyHash != want || e.Principal != "alpha" {
				t.Fatalf("%s: the entry records %s's decision under %s, want alpha's under %s", s.name, e.Principal, e.Decision.PolicyHash, want)
			}
			if _, err := b.Budget(ctx, "c1"); err != nil {
				t.Fatalf("%s: bravo: %v", s.name, err)
			}
		}
	}
}
