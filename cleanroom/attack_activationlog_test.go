package cleanroom

// The other member's activations, seen from a member that may not receive
// audiences. The victim refreshes a campaign audience now and then (a day's
// limit at a time); between two refreshes the attacker swaps one target in
// or out of its own list and matches again. The victim's next audience
// differs from its first by that target exactly when the victim holds it,
// and then the closeness guard refuses it. What the attacker can read of
// those refreshes: its own auditor's export (the entries and the tree size
// of the checkpoint it is proved against), and the room's metrics if they
// were served where members reach the room.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/audit/bundle"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// attackClock is a test clock the attack advances a day at a time, so that
// the victim's routine (a few activations a day) spans several days.
type attackClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *attackClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *attackClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// exportView exports the audit log as principal who and returns the
// victim's activation entries in it and the size of the tree the bundle is
// proved against.
func (s *attackScene) exportView(t *testing.T, who, victim string) (acts []audit.Entry, size int64) {
	t.Helper()
	c, err := reconnect(s.tr, who)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.ExportAudit(s.ctx, &buf); err != nil {
		t.Fatalf("export: %v", err)
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 16<<20)
	for first := true; sc.Scan(); first = false {
		line := sc.Text()
		if first {
			var h bundle.SparseHeader
			if err := json.Unmarshal([]byte(line), &h); err != nil {
				t.Fatalf("bundle header: %v", err)
			}
			f := strings.Split(h.Checkpoint, "\n")
			if len(f) < 2 {
				t.Fatalf("checkpoint %q", h.Checkpoint)
			}
			if size, err = strconv.ParseInt(f[1], 10, 64); err != nil {
				t.Fatal(err)
			}
			continue
		}
		at := strings.IndexByte(line, '{')
		if strings.HasPrefix(line, "end ") || at < 0 {
			continue
		}
		e, err := audit.ParseEntry([]byte(line[at:]))
		if err != nil {
			t.Fatal(err)
		}
		if e.Action == string(policy.ActionAudienceActivate) && e.Principal == victim {
			acts = append(acts, e)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return acts, size
}

// TestAttackActivationsInAuditExport: the attacker's own auditor exports
// the log after each of the victim's refreshes. The attacker guesses that
// the target is in the victim's list when the victim's latest activation
// entry was refused or names another size than the first, or when the tree
// grew by another number of entries than it usually does across a refresh.
// Membership accuracy over 40 targets stays within the bound (70%): the
// export holds none of the victim's activations, and each adds one entry to
// the tree, answered or refused.
func TestAttackActivationsInAuditExport(t *testing.T) {
	clock := &attackClock{now: time.Now().UTC().Truncate(24 * time.Hour).Add(time.Hour)}
	tr := startRoomAt(t, clock.Now, nil)
	settings := map[string]any{
		// Only the victim may receive audiences: the attacker never does.
		"activation": map[string]any{"members": []string{atkVictim}, "min_audience": 1000, "max_per_day": 5, "max_total": 50},
	}
	s := newAttackScene(t, tr, attackOpts{settings: settings, noUpload: true})
	tr.partner("attacker-auditor", policy.RoleAuditor, atkAttacker)
	s.uploadRaw(s.victim, writeAttackList(t, atkRows(atkVictimIDs), atkVictimCols), atkVictimCols)

	// 20 targets the victim holds ([1000, 3000)) and 20 it does not.
	var targets []int
	isTarget := map[int]bool{}
	for i := range 20 {
		in, out := 1003+25*i, 7+25*i
		targets = append(targets, in, out)
		isTarget[in], isTarget[out] = true, true
	}
	var base []int
	for id := range 2600 { // an overlap of about 1,580 without the targets
		if !isTarget[id] {
			base = append(base, id)
		}
	}
	uploadAndMatch := func(tag string, extra ...int) {
		rows := atkRows(append(append([]int{}, base...), extra...))
		for i := range 60 {
			rows = append(rows, atkJunk(tag, i)) // fresh junk: each list differs from the last by at least 50
		}
		s.uploadRaw(s.attacker, writeAttackList(t, rows, atkAttackerCols), atkAttackerCols)
		if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
			t.Fatalf("match: %v", err)
		}
	}
	answered := 0
	victimRefresh := func() { // the victim's routine: its whole matched audience
		if _, err := s.victim.Activate(s.ctx, s.collab, api.SegmentSpec{Version: api.SegmentVersion}); err == nil {
			answered++
		}
	}

	uploadAndMatch("base")
	_, before := s.exportView(t, "attacker-auditor", atkVictim)
	victimRefresh()
	acts, after := s.exportView(t, "attacker-auditor", atkVictim)
	if answered != 1 {
		t.Fatal("the victim's first audience was refused")
	}
	usual := after - before // what a refresh and an export add to the tree
	baseline := int64(-1)
	if len(acts) > 0 && len(acts[0].Data) > 0 {
		baseline = acts[0].Data[0].Rows
	}

	correct, perDay, seen := 0, 1, len(acts)
	for i, id := range targets {
		if perDay == 5 { // the victim's daily limit: the next refresh is tomorrow
			clock.advance(24 * time.Hour)
			perDay = 0
		}
		uploadAndMatch("probe"+strconv.Itoa(i), id)
		_, before := s.exportView(t, "attacker-auditor", atkVictim)
		victimRefresh()
		perDay++
		acts, after := s.exportView(t, "attacker-auditor", atkVictim)
		guess := after-before != usual
		if len(acts) > seen {
			e := acts[len(acts)-1]
			guess = guess || !e.Decision.Allow || len(e.Data) > 0 && e.Data[0].Rows != baseline
		}
		seen = max(seen, len(acts))
		if guess == (id >= 1000 && id < 3000) {
			correct++
		}
	}
	n := len(targets)
	t.Logf("membership read from the victim's activations in the attacker's audit export: %s over %d targets (bound %.0f%%); the victim's refreshes answered %d of %d, its activation entries in the export %d",
		pct(correct, n), n, 100*attackMembershipBound, answered, n+1, seen)
	if answered == n+1 || answered < 2 {
		t.Fatalf("the closeness guard refused %d of the victim's %d refreshes: the attack does not exercise it", n+1-answered, n+1)
	}
	if seen > 0 {
		t.Errorf("the attacker's auditor exported %d of the victim's activation entries", seen)
	}
	if float64(correct) > attackMembershipBound*float64(n) {
		t.Errorf("membership accuracy %s > %.0f%% through the victim's activations", pct(correct, n), 100*attackMembershipBound)
	}
}

// TestAttackMetricsNotOnAPI: the room's metrics (requests by route and
// status, decisions by action and outcome) would tell anyone who reads
// them whether a member's activation was answered or refused. The port
// members reach does not serve them, to the anonymous or to a member; the
// operator serves MetricsHandler where it alone reads it.
func TestAttackMetricsNotOnAPI(t *testing.T) {
	s := attackRoom(t, attackOpts{})
	for _, member := range []bool{false, true} {
		status, body := atkRawToken(t, s.tr, "", "GET", "/metrics", "", nil)
		if member {
			status, body = atkRaw(t, s.tr, atkAttacker, "GET", "/metrics", "", nil)
		}
		if status != 404 || bytes.Contains(body, []byte("cleanroom_http_requests_total")) {
			t.Errorf("GET /metrics on the API's port (as a member: %t): %d", member, status)
		}
	}
}
