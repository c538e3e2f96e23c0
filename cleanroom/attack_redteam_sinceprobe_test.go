package cleanroom

// An auditor names a checkpoint it kept to an export (?since=), and the
// bundle proves the log extends it. Were the checkpoint named by its size,
// and the bundle to carry the room's own checkpoint of that size when the
// room signed one, an auditor could probe every size: the room signs a
// checkpoint at every export, so the sizes it signed at tell where another
// principal's export sits among the entries this auditor may not see. The
// reader names the checkpoint itself, signed by the room, and gets it back
// with its proof, whatever the room stored.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/audit/bundle"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestAttackRedteamSinceProbeHiddenExport: the victim's auditor exports (a
// room-level entry the attacker's auditor does not see) between the
// attacker's status reads; the attacker's auditor then names, for every
// size around it, a checkpoint of that size: one it holds where it holds
// one, else its latest with the size changed (no auditor can sign one).
// Measured: whether the answers to the sizes it holds no checkpoint of
// differ, which would locate the room's checkpoints and so the hidden
// export (bound: they do not).
func TestAttackRedteamSinceProbeHiddenExport(t *testing.T) {
	s := attackRoom(t, attackOpts{})
	s.tr.partner(redteamAuditor, policy.RoleAuditor, atkAttacker)
	s.tr.partner("victim-auditor", policy.RoleAuditor, atkVictim)
	c, err := reconnect(s.tr, redteamAuditor)
	if err != nil {
		t.Fatal(err)
	}
	held := map[int64][]byte{} // the checkpoints the attacker's auditor was given, by size
	keep := func() {
		var buf bytes.Buffer
		if err := c.ExportAuditRange(s.ctx, &buf, 0, 0, nil); err != nil {
			t.Fatal(err)
		}
		h := sparseHeaderOf(t, buf.Bytes())
		cp, err := bundle.ParseUnverified([]byte(h.Checkpoint))
		if err != nil {
			t.Fatal(err)
		}
		held[cp.Size] = []byte(h.Checkpoint)
	}
	for range 3 {
		statusOf(t, s.tr, atkAttacker, s.collab)
	}
	keep()
	hidden := auditEntries(t, s.tr) // the victim's auditor's audit.export
	if _, err := s.exportEntries("victim-auditor"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		statusOf(t, s.tr, atkAttacker, s.collab)
	}
	keep()
	end := auditEntries(t, s.tr)
	var latest []byte
	for size, n := range held {
		if latest == nil || size > mustSize(t, latest) {
			latest = n
		}
	}
	answers := map[string][]int64{} // an answer's shape: the sizes that got it
	for n := hidden - 3; n <= end; n++ {
		note, ok := held[n]
		if !ok {
			note = []byte(strings.Replace(string(latest), fmt.Sprintf("\n%d\n", mustSize(t, latest)), fmt.Sprintf("\n%d\n", n), 1))
		}
		var buf bytes.Buffer
		err := c.ExportAuditRange(s.ctx, &buf, 0, 0, note)
		shape := "refused: " + problemType(err)
		if err == nil {
			h := sparseHeaderOf(t, buf.Bytes())
			shape = fmt.Sprintf("history of %d", len(h.History))
			if !ok {
				t.Errorf("size %d: a checkpoint the room did not sign was taken", n)
			}
		} else if ok {
			t.Errorf("size %d: the auditor's own checkpoint was refused: %v", n, err)
		}
		if !ok {
			answers[shape] = append(answers[shape], n)
		}
	}
	t.Logf("the victim's auditor's export is entry %d; answers to sizes the attacker holds no checkpoint of: %v", hidden, answers)
	if len(answers) > 1 {
		t.Errorf("LEAK: the answers to sizes the attacker's auditor never saw differ (%v): they locate the room's checkpoints, and the hidden export at %d", answers, hidden)
	}
	// The size alone, as the reader once named it, is refused.
	if resp, body := rawRequest(t, s.tr, redteamAuditor, "GET", fmt.Sprintf("/v1/audit/export?since=%d", hidden+1), nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("since as a size: %d %s, want 400", resp.StatusCode, body)
	}
}

func sparseHeaderOf(t *testing.T, b []byte) bundle.SparseHeader {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 16<<20)
	sc.Scan()
	var h bundle.SparseHeader
	if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func mustSize(t *testing.T, note []byte) int64 {
	t.Helper()
	c, err := bundle.ParseUnverified(note)
	if err != nil {
		t.Fatal(err)
	}
	return c.Size
}

func problemType(err error) string {
	var p *api.Problem
	if errors.As(err, &p) {
		return p.Type
	}
	if err == nil {
		return ""
	}
	return "error"
}
