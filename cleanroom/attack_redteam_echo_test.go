package cleanroom

// A column "name" that is really an identifier or a value, pasted by a
// member where a column goes. The policy's denial reasons quote the columns
// they refuse ("grouping or filtering by %s is not allowed ..."), and they
// are the audit entry's: were the text to reach the policy, it would be
// kept for good in the append-only log the other member's auditor exports
// and the room's auditors read. Every other refusal's entry carries a fixed
// sentence so that nothing a caller wrote reaches the log (refusal.go;
// TestEveryRefusalAudited); a column goes to the policy only if it is one
// of the member's data (checkColumnName).

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

func TestAttackRedteamEchoColumnValueInAuditLog(t *testing.T) {
	const marker = "secretmarker-42@example.org" // what an analyst pastes where a column goes
	var logs lockedBuffer
	tr := startRoomWith(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	aud := tr.partner("bravo-auditor", policy.RoleAuditor, "bravo")
	states := tr.collab("c1", api.ModeHashed, map[string]any{"allowed_dimensions": []string{"alpha.age_band"}}, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := a.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(0, 1500)), states["alpha"])); err != nil {
		t.Fatal(err)
	}
	if _, err := b.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(500, 2000)), states["bravo"])); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	col := "bravo." + marker
	own := "alpha." + marker
	cases := []struct {
		name string
		do   func() error
	}{
		{"query group_by", func() error {
			_, err := a.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{col}, Epsilon: 0.1})
			return err
		}},
		{"query filter column", func() error {
			_, err := a.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}},
				Filters: []api.Filter{{Column: col, Op: "eq", Value: "x"}}, Epsilon: 0.1})
			return err
		}},
		{"query lift split", func() error {
			_, err := a.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricLift, Exposed: col, Converted: "alpha.age_band"}}, Epsilon: 0.1})
			return err
		}},
		{"model feature", func() error {
			_, _, err := a.TrainModel(ctx, "c1", api.ModelSpec{Version: api.ModelSpecVersion, Features: []string{own}, Label: api.Filter{Column: "alpha.age_band"}})
			return err
		}},
		{"model label", func() error {
			_, _, err := a.TrainModel(ctx, "c1", api.ModelSpec{Version: api.ModelSpecVersion, Features: []string{"alpha.age_band"}, Label: api.Filter{Column: col}})
			return err
		}},
		{"segment filter column", func() error {
			_, err := a.Activate(ctx, "c1", api.SegmentSpec{Version: api.SegmentVersion, Filters: []api.Filter{{Column: col, Op: "eq", Value: "x"}}})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tr.room.audit.Size()
			err := tc.do()
			if err == nil {
				t.Fatal("answered")
			}
			t.Logf("caller's error: %v", err)
			for i := before; i < tr.room.audit.Size(); i++ {
				e := entryAt(t, tr.room, i)
				if b, _ := jsonMarshal(e); bytes.Contains(b, []byte(marker)) {
					t.Errorf("LEAK: audit entry %d (%s by %s) carries the caller's text: %v", i, e.Action, e.Principal, e.Decision.Reasons)
				}
			}
		})
	}
	// What bravo's auditor reads: the export of its collaborations.
	var exp bytes.Buffer
	if err := aud.ExportAuditRange(ctx, &exp, 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(exp.String(), marker); n > 0 {
		t.Errorf("LEAK: bravo's auditor's export carries alpha's pasted identifier %d times", n)
	}
	if strings.Contains(logs.String(), marker) {
		t.Errorf("LEAK: the room's log carries the marker")
	}
}
