package cleanroom

// Which principal ids are registered, told by how long a refusal takes. A
// client with no account signs tokens with a key of its own and names
// registered ids and unknown ones as their issuer: both are refused with
// one reason (TestAttackPrincipalEnumeration), so what is left is time.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// issuerProber times refusals of tokens signed by a key no one registered.
type issuerProber struct {
	t      *testing.T
	tr     *testRoom
	key    *crypto.PartnerKey
	client *http.Client
}

func newIssuerProber(t *testing.T, tr *testRoom) *issuerProber {
	key, err := crypto.GeneratePartnerKey("stranger", nil)
	if err != nil {
		t.Fatal(err)
	}
	return &issuerProber{t: t, tr: tr, key: key, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}}
}

// probe returns how long the room took to refuse a token naming iss.
func (p *issuerProber) probe(iss string) time.Duration {
	tok, err := api.SignRequestToken(p.key.SigningKey(), iss, p.tr.op.Room().ID, randID(), time.Now())
	if err != nil {
		p.t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", p.tr.url+"/v1/principals/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	d := time.Since(start)
	if resp.StatusCode != http.StatusUnauthorized {
		p.t.Fatalf("a stranger's token naming %s: %d", iss, resp.StatusCode)
	}
	return d
}

// pair probes a registered id and an unknown one of the same length, in a
// random order.
func (p *issuerProber) pair(id string) (registered, unknown time.Duration) {
	other := make([]byte, len(id))
	for i := range other {
		other[i] = 'a' + byte(rand.IntN(26))
	}
	if rand.IntN(2) == 0 {
		registered = p.probe(id)
		return registered, p.probe(string(other))
	}
	unknown = p.probe(string(other))
	return p.probe(id), unknown
}

// pairsInOrder fixes on the first cal pairs which of the two is the
// slower, and counts the later pairs in that order.
func pairsInOrder(reg, unk []time.Duration, cal int) (ordered int) {
	slower := 0
	for i := range cal {
		slower += b2i(reg[i] > unk[i])
	}
	for i := cal; i < len(reg); i++ {
		ordered += b2i((reg[i] > unk[i]) == (2*slower >= cal))
	}
	return ordered
}

// TestAttackIssuerTiming: 300 analysts and auditors registered and never
// used, and the room restarted, then each probed once against an unknown
// id (cold); then five registered ids, a partner, its analyst and auditor,
// another partner and the operator, probed 500 times (warm). A hundred
// pairs fix the direction and the midpoint; the rest are scored, against
// chance plus three deviations. The room reads every principal when it
// opens, and checks an unknown issuer as the operator.
func TestAttackIssuerTiming(t *testing.T) {
	if atkRace {
		t.Skip("timing: run without the race detector")
	}
	tr := startRoomWith(t, func(c *Config) {
		c.AuthFailures = AuthLimits{PerMinute: 1 << 30, Burst: 1 << 30}
		c.checkCaches = false // as in production: the check adds work to a cached record's read
	})
	s := newAttackScene(t, tr, attackOpts{noUpload: true})
	var idle []string
	for i := range 300 {
		id := fmt.Sprintf("va%04d", i)
		s.tr.partner(id, []string{policy.RoleAnalyst, policy.RoleAuditor}[i%2], atkVictim)
		idle = append(idle, id)
	}
	tr.restart()
	p := newIssuerProber(t, tr)
	for range 50 { // the connection and the code paths, unknown ids only
		p.probe("warmup")
	}
	const cal = 100
	run := func(name string, ids []string) {
		var reg, unk []time.Duration
		for _, id := range ids {
			r, u := p.pair(id)
			reg, unk = append(reg, r), append(unk, u)
		}
		n := len(ids) - cal
		ordered := pairsInOrder(reg, unk, cal)
		µs := func(ds []time.Duration) []float64 {
			out := make([]float64, len(ds))
			for i, d := range ds {
				out[i] = float64(d.Microseconds())
			}
			return out
		}
		midpoint := scoreVerdict(t, name+", latency in µs, registered as present", µs(reg[:cal]), µs(unk[:cal]), µs(reg[cal:]), µs(unk[cal:]))
		t.Logf("%s: registered ids told from unknown ones by the pairs' order %s (bound %.1f%%)", name, pct(ordered, n), 100*timingBound(n))
		if float64(ordered) > timingBound(n)*float64(n) || float64(midpoint.right) > timingBound(2*n)*float64(2*n) {
			t.Errorf("%s: registered ids told from unknown ones by the refusal's latency", name)
		}
	}
	run("cold, each id's first token after a restart", idle)
	var warm []string
	for i := range 500 {
		warm = append(warm, []string{atkVictim, "va0000", "va0001", atkAttacker, OperatorID}[i%5])
	}
	run("warm", warm)
}
