package cleanroom

// The victim's activations seen by a member that may not receive
// audiences, through the time its own requests take while the victim's
// activation runs. An answer and a guard's refusal do the same work (the
// fingerprints, every comparison, the answer's body and digest, a write of
// the fingerprints' size), and each member's activations run under a lock
// of their own, so the attacker's requests neither wait for the victim's
// activation nor compete with more work when it is answered.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// timingProber keeps one of the attacker's (refused) activation attempts in
// flight at a time and records each one's latency, as the attacker would
// measure it at its end of the connection.
type timingProber struct {
	t      *testing.T
	tr     *testRoom
	now    func() time.Time
	who    string
	method string
	path   string
	body   []byte
	want   int
	client *http.Client

	mu   sync.Mutex
	lat  []time.Duration
	stop chan struct{}
	done chan struct{}
}

// newTimingProber probes with the attacker's activation attempts (kind
// "activate": refused by the policy) or its budget reads ("budget":
// audited).
func newTimingProber(t *testing.T, tr *testRoom, now func() time.Time, who, collab, kind string) *timingProber {
	p := &timingProber{t: t, tr: tr, now: now, who: who, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}}
	switch kind {
	case "activate":
		p.body, _ = json.Marshal(api.SegmentSpec{Version: api.SegmentVersion})
		p.method, p.path, p.want = "POST", "/v1/collaborations/"+collab+"/activations", http.StatusForbidden
	case "budget":
		p.method, p.path, p.want = "GET", "/v1/collaborations/"+collab+"/budget", http.StatusOK
	default:
		t.Fatalf("prober kind %q", kind)
	}
	return p
}

// one sends one attempt and returns its latency and status.
func (p *timingProber) one() (time.Duration, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, p.method, p.tr.url+p.path, bytes.NewReader(p.body))
	if p.who != "" {
		tok, err := api.SignRequestToken(p.tr.keys[p.who].SigningKey(), p.who, p.tr.op.Room().ID, randID(), p.now())
		if err != nil {
			p.t.Error(err)
			return 0, 0
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if p.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start), resp.StatusCode
}

// start begins probing; end stops and returns the latencies seen.
func (p *timingProber) start() {
	p.mu.Lock()
	p.lat = p.lat[:0]
	p.mu.Unlock()
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			d, status := p.one()
			if status != p.want {
				p.t.Errorf("the attacker's activation attempt: status %d", status)
				return
			}
			p.mu.Lock()
			p.lat = append(p.lat, d)
			p.mu.Unlock()
		}
	}()
}

func (p *timingProber) end() []time.Duration {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.lat)
}

// TestAttackActivationTiming: the scene of
// TestAttackActivationsInAuditExport (the victim, with a list of 20,000 and
// an audience of about 16,000, refreshes its whole audience; between
// refreshes the attacker swaps one target into its own list and matches
// again; the refresh is refused exactly when the victim holds the target).
// The attacker keeps one request of its own in flight around each refresh
// and records their latencies: activation attempts of its own, which the
// policy refuses ("activate"), or its audited budget reads ("budget"). It
// guesses "held" for the targets whose longest latency is below the median
// of the 40, and, a second statistic, whose latencies in excess of their
// window's median sum to less than the median sum. Each must stay within
// chance plus three binomial deviations (29 of 40), as timing does in
// docs/PRIVACY.md: latency is not covered by the noise.
func TestAttackActivationTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("times 80 activations")
	}
	if atkRace {
		// The race detector multiplies the cost of every memory access, so
		// it times a room no member meets; .ci/run runs this test without it.
		t.Skip("times activations: run without the race detector")
	}
	for _, kind := range []string{"activate", "budget"} {
		t.Run(kind, func(t *testing.T) {
			holdToBound(t, "(one person's membership, read from the latency of the attacker's "+kind+" requests)", timingBound(40), func(int) []attackRate {
				return activationTiming(t, kind, 20_000)
			})
		})
	}
}

// activationTiming runs the attack with a prober of kind on a new scene of
// the refresh attacks (40 targets) and returns its two statistics'
// guesses.
func activationTiming(t *testing.T, kind string, victimSize int) []attackRate {
	p := newRefreshScene(t, victimSize)
	prober := newTimingProber(t, p.tr, p.clock.Now, atkAttacker, p.s.collab, kind)
	// refresh is one of the victim's refreshes with the attacker probing
	// around it: it returns whether the victim was answered, how long the
	// victim waited, and the longest latency the attacker saw.
	refresh := func() (answered bool, victim, seen, excess time.Duration) {
		prober.start()
		time.Sleep(30 * time.Millisecond)
		start := time.Now()
		answered = p.refreshRaw(t)
		victim = time.Since(start)
		time.Sleep(30 * time.Millisecond)
		lat := prober.end()
		if len(lat) > 0 {
			seen = slices.Max(lat)
			sorted := slices.Clone(lat)
			slices.Sort(sorted)
			for _, l := range lat {
				excess += l - sorted[len(sorted)/2]
			}
		}
		return answered, victim, seen, excess
	}

	p.upload("base")
	if ok, _, _, _ := refresh(); !ok {
		t.Fatal("the victim's first audience was refused")
	}
	type obs struct {
		held, answered       bool
		victim, seen, excess time.Duration
	}
	var all []obs
	for i, id := range p.targets {
		p.nextDay()
		p.upload("probe"+strconv.Itoa(i), id)
		ok, v, seen, excess := refresh()
		all = append(all, obs{held: p.held(id), answered: ok, victim: v, seen: seen, excess: excess})
	}
	var xs []float64
	for _, o := range all {
		xs = append(xs, float64(o.seen))
	}
	th := timingMedian(xs)
	correct, consistent, pairs, ordered := 0, 0, 0, 0
	var ansSeen, refSeen, ansV, refV []float64
	for _, o := range all {
		if o.answered != o.held {
			consistent++
		}
		if o.answered {
			ansSeen, ansV = append(ansSeen, float64(o.seen)/1e6), append(ansV, float64(o.victim)/1e6)
		} else {
			refSeen, refV = append(refSeen, float64(o.seen)/1e6), append(refV, float64(o.victim)/1e6)
		}
		if guessHeld := float64(o.seen) < th; guessHeld == o.held {
			correct++
		}
	}
	for _, a := range ansSeen {
		for _, r := range refSeen {
			pairs++
			if a > r {
				ordered++
			}
		}
	}
	n := len(all)
	t.Logf("prober %s, victim's list %d: refreshes answered iff the target is not held: %d of %d", kind, victimSize, consistent, n)
	t.Logf("attacker's longest latency (ms), answered: median %.2f %v", timingMedian(ansSeen), timingRound(ansSeen))
	t.Logf("attacker's longest latency (ms), refused:  median %.2f %v", timingMedian(refSeen), timingRound(refSeen))
	t.Logf("victim's own latency (ms), answered: median %.2f; refused: median %.2f", timingMedian(ansV), timingMedian(refV))
	t.Logf("membership read from the longest latency: %s over %d targets (threshold %.2f ms, the median; AUC %s)",
		pct(correct, n), n, th/1e6, pct(ordered, pairs))
	// A second statistic: the latency, summed over the probes around the
	// refresh, in excess of their median (a slowdown spread over several
	// probes, which the longest alone misses).
	var ex []float64
	for _, o := range all {
		ex = append(ex, float64(o.excess))
	}
	exTh, exCorrect, exOrdered := timingMedian(ex), 0, 0
	for _, o := range all {
		if guessHeld := float64(o.excess) < exTh; guessHeld == o.held {
			exCorrect++
		}
	}
	for _, a := range all {
		for _, r := range all {
			if a.answered && !r.answered && a.excess > r.excess {
				exOrdered++
			}
		}
	}
	t.Logf("membership read from the summed excess latency: %s (AUC %s)", pct(exCorrect, n), pct(exOrdered, pairs))
	if consistent < n*9/10 {
		t.Fatalf("the closeness guard did not decide the refreshes (%d of %d consistent): the attack does not exercise it", consistent, n)
	}
	return []attackRate{{name: "longest latency", right: correct, trials: n}, {name: "summed excess latency", right: exCorrect, trials: n}}
}

func timingMedian(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	return s[len(s)/2]
}

func timingRound(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(int(x*100)) / 100
	}
	return out
}
