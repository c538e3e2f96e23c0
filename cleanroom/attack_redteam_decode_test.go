package cleanroom

// Red-team attacks on the query path's decode of the other member's
// columns in the join's order (joined.go, decodeJoined).
//
// A column held as numbers is parsed at the matched rows only. Were a part
// with no matched row skipped, the first query after a match would read
// exactly the victim's parts that hold a matched person. An attacker whose
// list is one target and made-up identifiers would then make the room read
// one of the victim's parts (the target's) or none, and time it: the first
// query after each match is cold, the next ones warm, and their difference
// would be the decode of one part of the victim's list (50,000 rows with
// the client's default part size, about 1 ms) or nothing. decodeJoined
// reads every part of the list whatever matched, so the cold query costs
// the victim's list, not where the overlap lies in it.
//
// The query need not be answered: a spec whose columns are decoded
// before it is found malformed (an roi without a cost) is refused with a
// 400 after the decode, charging no epsilon and no query of the day.

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// uploadRawParts uploads a list written by writeRawList as c, in parts of
// rowsPerPart rows (the client's default is 50,000).
func (s *attackScene) uploadRawParts(c *client.Client, path string, cols []string, rowsPerPart int) {
	s.t.Helper()
	if _, err := c.UploadCSV(s.ctx, client.UploadSpec{Collab: s.collab, Input: path, IDColumn: "email", Kind: crypto.KindEmail,
		Columns: cols, State: s.states[c.Principal()], RowsPerPart: rowsPerPart}); err != nil {
		s.t.Fatalf("upload as %s: %v", c.Principal(), err)
	}
}

// timingBound is chance plus three binomial deviations over n guesses.
func timingBound(n int) float64 { return 0.5 + 3*math.Sqrt(0.25/float64(n)) }

// midpointAccuracy scores a guess "present when the signal is on the side
// of the midpoint of the two classes' medians where the present class's
// median lies", as the other timing attacks do.
func midpointAccuracy(present, absent []time.Duration) (right int, mp, ma time.Duration) {
	mp, _ = medianIQR(present)
	ma, _ = medianIQR(absent)
	mid := (mp + ma) / 2
	for _, d := range present {
		if (d >= mid) == (mp > ma) {
			right++
		}
	}
	for _, d := range absent {
		if (d < mid) == (mp > ma) {
			right++
		}
	}
	return right, mp, ma
}

// TestAttackColdDecodeTiming: the victim's list is 100,000 people with two
// bounded number columns (revenue and orders), uploaded in the client's
// default parts of 50,000 rows. The attacker offered settings the victim
// has every reason to accept, since they are stricter than the room's
// defaults: each match release costs epsilon_match = 0.001. For each of 40
// targets (20 in the victim's list), three times, over days within the
// daily limits, the attacker uploads the target and 1,000 made-up
// identifiers, matches, and times three refused queries that read the
// victim's revenue: the first decodes the victim's matched parts, the next
// two find them cached. Its signal is the first's latency minus the
// faster of the others; its guess, the median of a target's three signals
// against a threshold fixed beforehand from calibration probes of people
// whose presence it knows (the midpoint of their medians). Its accuracy
// must stay within chance plus three deviations (73.7% over 40): the three
// match releases charged for a target allow e^0.003/(1+e^0.003) ≈ 50.1%,
// and the refused queries nothing.
//
// The same attack on a victim whose list also holds a column read as a
// dictionary (a plan without declared bounds), where every part is read
// whatever matched, is the control: there it must stay within chance.
func TestAttackColdDecodeTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("times 150 match runs")
	}
	if atkRace {
		t.Skip("times queries: run without the race detector")
	}
	cases := []struct {
		name      string
		vcols     []string
		boundPlan bool
	}{
		{"numbers only", []string{"revenue", "orders"}, false},
		{"a text column with bounds declared", []string{"revenue", "orders", "plan"}, true},
		{"control: a dictionary column", []string{"revenue", "orders", "plan"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			holdToBound(t, "(the first query after a match) tells whether the victim holds the one target", timingBound(coldDecodeTargets), func(int) []attackRate {
				return []attackRate{coldDecodeTiming(t, c.vcols, c.boundPlan)}
			})
		})
	}
}

// coldDecodeTargets is how many targets the cold decode attack guesses.
const coldDecodeTargets = 40

// coldDecodeTiming runs the attack on a victim with columns vcols (plan,
// the third, is text); boundPlan declares bounds on plan too in the
// settings the attacker offers, which makes the room decode it as numbers
// when a query does not use it. It returns the attacker's guesses.
func coldDecodeTiming(t *testing.T, vcols []string, boundPlan bool) attackRate {
	const victimSize, perDay, reps = 100_000, 10, 3
	clk := &redteamClock{at: time.Now().UTC().Truncate(24 * time.Hour).Add(time.Hour)}
	bounds := map[string][2]float64{atkVictim + ".revenue": {0, 1000}, atkVictim + ".orders": {0, 100}}
	if boundPlan {
		bounds[atkVictim+".plan"] = [2]float64{0, 1}
	}
	s := newAttackScene(t, startRoomAt(t, clk.now, nil), attackOpts{settings: map[string]any{"epsilon_match": 0.001}, bounds: bounds, noUpload: true})
	emails := make([]string, victimSize)
	for i := range emails {
		emails[i] = atkEmail(10_000 + i)
	}
	s.uploadRawParts(s.victim, writeRawList(t, emails, vcols, func(i int) []string {
		out := []string{atkValue("revenue", 10_000+i), fmt.Sprint(atkMix(10_000+i, 9) % 100)}
		if len(vcols) > 2 {
			out = append(out, atkValue("plan", 10_000+i))
		}
		return out
	}), vcols, 50_000)

	probes := timingProbes(coldDecodeTargets, 1237, 200_000, 91)

	// A spec the room decodes the victim's revenue for and then refuses:
	// an roi without a cost.
	probeQuery := func() time.Duration { return s.refusedROI(t, atkVictim+".revenue") }
	var c calibration
	before := s.budgetSpent(s.attacker)
	runs := 0
	for i, p := range probes {
		var signals []time.Duration
		for r := range reps {
			if runs > 0 && runs%perDay == 0 {
				clk.advance(24 * time.Hour)
			}
			runs++
			rows := []atkRow{{atkEmail(p.id), p.id}}
			for j := range 1000 {
				rows = append(rows, atkJunk(fmt.Sprintf("cold%d-%d", i, r), j))
			}
			if err := s.upload(s.attacker, rows, atkAttackerCols); err != nil {
				t.Fatalf("probe %d: upload: %v", i, err)
			}
			if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
				t.Fatalf("probe %d: match: %v", i, err)
			}
			cold := probeQuery()
			signals = append(signals, cold-min(probeQuery(), probeQuery()))
		}
		signal, _ := medianIQR(signals)
		if i >= 2 { // the first two warm the room up
			c.add(p.calib, p.in, float64(signal)/float64(time.Millisecond))
		}
	}
	// The threshold is fixed by the calibration alone.
	t.Logf("cold minus warm, in ms (a target's median of %d); %d match runs over %d days, budget spent %g -> %g",
		reps, runs, (runs+perDay-1)/perDay, before, s.budgetSpent(s.attacker))
	return c.score(t, "presence told from the cold decode's latency")
}
