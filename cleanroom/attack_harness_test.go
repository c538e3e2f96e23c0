package cleanroom

// The attack suite (attack_*_test.go) measures, over a real room and real
// HTTP, what a curious member learns about one person, and holds each
// measured success to a bound that the privacy model allows. This file is
// its shared setup: one scene helper (attackRoom) that every attack builds
// on, so that a change in how collaborations are created, offered and
// accepted is made here once, and small helpers for queries, budgets and
// raw requests. The people the attacks are scored against are in
// attack_people_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// The two members of every attack scene.
const (
	atkAttacker = "attacker"
	atkVictim   = "victim"
)

// attackDeadline bounds every attack test: none may hang the suite.
const attackDeadline = 90 * time.Second

// attackOpts describe an attack scene. The zero value is a hashed
// collaboration with the room's default settings, both default lists
// uploaded and matched.
type attackOpts struct {
	collab   string         // default "c1"
	settings map[string]any // the settings the attacker creates the collaboration with
	bounds   map[string][2]float64
	// told is what the victim was told the settings are when it accepted;
	// nil means settings (an honest offer).
	told                     map[string]any
	attackerRows, victimRows []atkRow // default atkAttackerIDs, atkVictimIDs
	attackerCols, victimCols []string // default atkAttackerCols, atkVictimCols
	// module, if set, is a collaboration policy module the victim proposes
	// and the attacker approves, after the uploads and before the match.
	module   string
	noUpload bool // stop after the acceptance
	noMatch  bool // stop after the uploads
	// mayRefuse lets the room refuse the offer (its creation or the
	// victim's acceptance), as the defense some attacks expect; otherwise a
	// refusal ends the test, so that no attack passes for want of a scene.
	mayRefuse bool
}

// attackScene is a collaboration between an attacker and a victim.
type attackScene struct {
	t                *testing.T
	ctx              context.Context
	tr               *testRoom
	attacker, victim *client.Client
	states           map[string]client.StateDir
	collab           string
	// refused is the room's refusal of the offer (its creation or the
	// victim's acceptance), if it refused: then nothing was uploaded or
	// matched.
	refused error
}

// attackContext is the context of one attack test, with its deadline.
func attackContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), attackDeadline)
	t.Cleanup(cancel)
	return ctx
}

// attackRoom starts a room on loopback and sets up the scene in it.
func attackRoom(t *testing.T, o attackOpts) *attackScene {
	t.Helper()
	return newAttackScene(t, startRoom(t), o)
}

// newAttackScene registers the two members in tr and sets up the scene:
// the attacker creates the collaboration with its settings and delivers
// the secret, the victim accepts as told, both upload, the attacker
// matches. This is the one place that knows how a collaboration is set up.
func newAttackScene(t *testing.T, tr *testRoom, o attackOpts) *attackScene {
	t.Helper()
	s := &attackScene{t: t, ctx: attackContext(t), tr: tr, collab: o.collab}
	if s.collab == "" {
		s.collab = "c1"
	}
	s.attacker = tr.partner(atkAttacker, policy.RolePartner, "")
	s.victim = tr.partner(atkVictim, policy.RolePartner, "")
	s.states = map[string]client.StateDir{atkAttacker: client.StateDir(t.TempDir()), atkVictim: client.StateDir(t.TempDir())}
	if err := s.offer(s.collab, o.settings, o.bounds, o.told); err != nil {
		if !o.mayRefuse {
			t.Fatalf("the room refused the offer of %s: %v", s.collab, err)
		}
		s.refused = err
		return s
	}
	if o.noUpload {
		return s
	}
	if o.attackerRows == nil {
		o.attackerRows = atkRows(atkAttackerIDs)
	}
	if o.victimRows == nil {
		o.victimRows = atkRows(atkVictimIDs)
	}
	if o.attackerCols == nil {
		o.attackerCols = atkAttackerCols
	}
	if o.victimCols == nil {
		o.victimCols = atkVictimCols
	}
	if err := s.upload(s.victim, o.victimRows, o.victimCols); err != nil {
		t.Fatalf("the victim's upload: %v", err)
	}
	if err := s.upload(s.attacker, o.attackerRows, o.attackerCols); err != nil {
		t.Fatalf("the attacker's upload: %v", err)
	}
	if o.module != "" {
		prop, err := s.victim.ProposePolicy(s.ctx, s.collab, []byte(o.module))
		if err != nil {
			t.Fatalf("proposing the module: %v", err)
		}
		if got, err := s.attacker.ApprovePolicy(s.ctx, s.collab, prop.Hash); err != nil || !got.Active {
			t.Fatalf("approving the module: %+v %v", got, err)
		}
	}
	if o.noMatch {
		return s
	}
	if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
		t.Fatalf("match: %v", err)
	}
	return s
}

// offer has the attacker create collaboration id with settings and bounds
// and deliver the secret, and the victim accept it as told (settings, if
// told is nil) and receive the secret. It returns the room's refusal of the
// creation or of the acceptance; any other failure ends the test.
func (s *attackScene) offer(id string, settings map[string]any, bounds map[string][2]float64, told map[string]any) error {
	t := s.t
	t.Helper()
	if bounds != nil {
		withBounds := map[string]any{"bounds": bounds}
		for k, v := range settings {
			withBounds[k] = v
		}
		settings = withBounds
	}
	req := api.CreateCollaboration{ID: id, Mode: api.ModeHashed, Kind: "email", Members: []string{atkAttacker, atkVictim}}
	if settings != nil {
		raw, err := json.Marshal(settings)
		if err != nil {
			t.Fatal(err)
		}
		req.Settings = raw
	}
	if _, err := s.attacker.CreateCollaboration(s.ctx, req); err != nil {
		return fmt.Errorf("creating the collaboration: %w", err)
	}
	if err := s.attacker.DistributeSecret(s.ctx, id, s.states[atkAttacker], nil); err != nil {
		t.Fatalf("delivering the secret: %v", err)
	}
	if told == nil {
		told = settings
	}
	if err := acceptAsTold(t, s.victim, id, told); err != nil {
		return fmt.Errorf("accepting: %w", err)
	}
	if err := s.victim.ReceiveSecret(s.ctx, id, s.states[atkVictim], nil); err != nil {
		t.Fatalf("receiving the secret: %v", err)
	}
	return nil
}

// acceptAsTold is the victim's user accepting collaboration id after being
// told its settings are told. The user agrees to told, and nothing else:
// the acceptance carries the digest of the terms with told as their
// settings, so the room refuses it unless those are the terms it holds.
func acceptAsTold(t *testing.T, c *client.Client, id string, told map[string]any) error {
	t.Helper()
	raw, err := json.Marshal(told)
	if err != nil {
		t.Fatal(err)
	}
	settings, err := policy.DecodeSettings(raw)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := settings.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	digest := api.TermsDigest(&api.Collaboration{ID: id, Mode: api.ModeHashed, Profile: crypto.ProfilePAIRv1, Kind: "email",
		Members: []string{atkAttacker, atkVictim}, Settings: canon})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Accept(ctx, id, digest)
}

// upload sends a member's list.
func (s *attackScene) upload(c *client.Client, rows []atkRow, cols []string) error {
	_, err := c.UploadCSV(s.ctx, client.UploadSpec{Collab: s.collab, Input: writeAttackList(s.t, rows, cols), IDColumn: "email",
		Kind: crypto.KindEmail, Columns: cols, State: s.states[c.Principal()], RowsPerPart: 1000})
	return err
}

// query runs a query spec as c (its version filled in).
// refusedROI times the attacker's query of an roi over col without a
// cost, which the room refuses after it reads col (no epsilon charged).
func (s *attackScene) refusedROI(t *testing.T, col string) time.Duration {
	t.Helper()
	spec := api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricROI, Revenue: []string{col}}}, Epsilon: 0.01}
	began := time.Now()
	_, err := s.attacker.Query(s.ctx, s.collab, spec)
	d := time.Since(began)
	if err == nil {
		t.Fatalf("the roi without a cost was answered")
	}
	return d
}

func (s *attackScene) query(c *client.Client, q api.QuerySpec) (*api.QueryResult, error) {
	q.Version = api.QueryVersion
	return c.Query(s.ctx, s.collab, q)
}

// attackEpsilons are the epsilons a member tries, smallest first, to find
// the cheapest one the room answers: 5e-324 is the smallest float64 above
// 0; 1e-15 is just above the DP library's floor of 2^-50. They stop at
// 0.01: at that epsilon one answer moves a membership guess by at most
// e^0.01/(1+e^0.01) ≈ 50.25%.
var attackEpsilons = []float64{5e-324, 1e-15, 0.001, 0.01}

// cheapestEpsilon finds the smallest of attackEpsilons that q is answered
// with, and that answer; ok is false if the room refused them all.
func cheapestEpsilon(q func(eps float64) (*api.QueryResult, error)) (eps float64, res *api.QueryResult, ok bool) {
	for _, e := range attackEpsilons {
		if r, err := q(e); err == nil {
			return e, r, true
		}
	}
	return 0, nil, false
}

// budgetSpent reads the collaboration's spent epsilon (NaN if refused).
func (s *attackScene) budgetSpent(c *client.Client) float64 {
	b, err := c.Budget(s.ctx, s.collab)
	if err != nil {
		return math.NaN()
	}
	return b.Spent
}

// atkRaw makes one request as a registered principal, with a fresh signed
// token, and returns the status and body.
func atkRaw(t *testing.T, tr *testRoom, who, method, path, contentType string, body []byte) (int, []byte) {
	t.Helper()
	tok, err := api.SignRequestToken(tr.keys[who].SigningKey(), who, tr.op.Room().ID, randID(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return atkRawToken(t, tr, "Bearer "+tok, method, path, contentType, body)
}

// atkRawToken makes one request with an Authorization header of its own
// ("" for none). A transport error is status 0.
func atkRawToken(t *testing.T, tr *testRoom, authorization, method, path, contentType string, body []byte) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, tr.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, b
}

// auditEntries is the room's audit entry count: the tree size every
// checkpoint an auditor reads carries.
func auditEntries(t *testing.T, tr *testRoom) int64 {
	t.Helper()
	return tr.room.audit.Size()
}

// pct renders n of d as a share.
func pct(n, d int) string {
	if d == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%d/%d = %.0f%%", n, d, 100*float64(n)/float64(d))
}

// dpGuessBound is what ε-DP allows a guess of one person's presence over n
// guesses: e^ε/(1+e^ε), plus three binomial deviations.
func dpGuessBound(eps float64, n int) float64 {
	p := math.Exp(eps) / (1 + math.Exp(eps))
	return p + 3*math.Sqrt(p*(1-p)/float64(n))
}
