package cleanroom

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
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

// refreshScene is the scene of the attacks on another member's
// activations: a victim of victimSize people ([1000, 1000+victimSize)) that
// may receive audiences and refreshes its whole audience, an attacker that
// may not, whose list overlaps about 80% of the victim's, 40 targets (20
// held by the victim) in an order that does not alternate, and the
// attacker's re-upload and match with one target (fresh junk each time,
// so that each list differs from the last by at least 50). The victim's
// refresh is refused by the closeness guard exactly when it holds the
// target.
type refreshScene struct {
	s       *attackScene
	tr      *testRoom
	clock   *attackClock
	targets []int
	held    func(id int) bool
	upload  func(tag string, extra ...int)
	perDay  int
}

func newRefreshScene(t *testing.T, victimSize int) *refreshScene {
	clock := &attackClock{now: time.Now().UTC().Truncate(24 * time.Hour).Add(time.Hour)}
	tr := startRoomAt(t, clock.Now, nil)
	settings := map[string]any{
		"activation": map[string]any{"members": []string{atkVictim}, "min_audience": 1000, "max_per_day": 5, "max_total": 50},
	}
	s := newAttackScene(t, tr, attackOpts{settings: settings, noUpload: true})
	s.ctx = context.Background()
	victimIDs := span(1000, 1000+victimSize)
	s.uploadRaw(s.victim, writeAttackList(t, atkRows(victimIDs), atkVictimCols), atkVictimCols)
	var targets []int
	isTarget := map[int]bool{}
	for i := range 20 {
		in, out := 1003+25*i, 7+25*i
		targets = append(targets, in, out)
		isTarget[in], isTarget[out] = true, true
	}
	slices.SortFunc(targets, func(a, b int) int { return int(atkMix(a, 77)%1000) - int(atkMix(b, 77)%1000) })
	var base []int
	for id := range 600 + victimSize*4/5 { // an overlap of about 80% of the victim's list
		if !isTarget[id] {
			base = append(base, id)
		}
	}
	p := &refreshScene{s: s, tr: tr, clock: clock, targets: targets}
	p.held = func(id int) bool { return id >= 1000 && id < 1000+victimSize }
	p.upload = func(tag string, extra ...int) {
		rows := atkRows(append(append([]int{}, base...), extra...))
		for i := range 60 {
			rows = append(rows, atkJunk(tag, i))
		}
		s.uploadRaw(s.attacker, writeAttackList(t, rows, atkAttackerCols), atkAttackerCols)
		if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
			t.Fatalf("match: %v", err)
		}
	}
	return p
}

// refreshRaw is the victim's refresh of its whole audience, raw (the body
// read but not decoded: the victim's client decodes its audience on its
// own machine, not on the room's cores): it returns whether it was
// answered. The victim refreshes five times a day (nextDay).
func (p *refreshScene) refreshRaw(t *testing.T) bool {
	p.perDay++
	tok, err := api.SignRequestToken(p.tr.keys[atkVictim].SigningKey(), atkVictim, p.tr.op.Room().ID, randID(), p.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	status, _ := atkRawToken(t, p.tr, "Bearer "+tok, "POST", "/v1/collaborations/"+p.s.collab+"/activations", "application/json", []byte(`{"version":"`+api.SegmentVersion+`"}`))
	return status == http.StatusOK
}

// nextDay moves the room's clock to the next day once the victim has had
// its five refreshes of the day, before the next refresh and anything the
// attacker times around it: a token signed before the clock moves is no
// longer valid after.
func (p *refreshScene) nextDay() {
	if p.perDay == 5 {
		p.clock.advance(24 * time.Hour)
		p.perDay = 0
	}
}

// guardScene is the scene of the guards' own tests: the attacker's
// principal is the member the settings name (maxTotal activations in all,
// five a day), its column grp splits the victim's 2,000 people
// ([1000, 3000)) into groups a (999), p (1), s (5) and x (595), and z
// holds its people no one matched. act activates the attacker's people in
// the groups named; refused checks a refusal by a guard.
type guardScene struct {
	s     *attackScene
	clock *attackClock
}

func newGuardScene(t *testing.T, maxTotal int) *guardScene {
	settings := map[string]any{
		"allowed_dimensions": []string{atkAttacker + ".grp"},
		"activation":         map[string]any{"members": []string{atkAttacker}, "min_audience": 1000, "max_per_day": 5, "max_total": maxTotal},
	}
	clock := &attackClock{now: time.Now().UTC().Truncate(24 * time.Hour).Add(time.Hour)}
	s := newAttackScene(t, startRoomAt(t, clock.Now, nil), attackOpts{settings: settings, noUpload: true})
	s.uploadRaw(s.victim, writeAttackList(t, atkRows(atkVictimIDs), atkVictimCols), atkVictimCols)
	s.uploadGroups(t, atkRows(span(0, 2600)), func(id int) string {
		switch {
		case id >= 1000 && id < 1999:
			return "a"
		case id == 1999:
			return "p"
		case id >= 2000 && id < 2005:
			return "s"
		case id >= 2005 && id < 2600:
			return "x"
		}
		return "z"
	})
	return &guardScene{s: s, clock: clock}
}

func (g *guardScene) act(groups ...string) (*api.Audience, error) {
	return g.s.attacker.Activate(g.s.ctx, g.s.collab, api.SegmentSpec{Version: api.SegmentVersion,
		Filters: []api.Filter{{Column: atkAttacker + ".grp", Op: "in", Values: groups}}})
}

func (g *guardScene) refused(t *testing.T, name string, err error) {
	t.Helper()
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != http.StatusForbidden || !slices.Equal(p.Reasons, []string{denyAudience}) {
		t.Errorf("%s: %v, want 403 %q", name, err, denyAudience)
	}
}
