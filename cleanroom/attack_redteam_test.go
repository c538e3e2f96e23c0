package cleanroom

// Red-team attacks through the digests the audit log carries in the clear.
// A member's own auditor (a principal the operator registers for the
// member, as for any partner's compliance officer) exports every entry of
// the member's collaborations, the other member's included. Two of the
// digests those entries carry are unkeyed SHA-256s of data:
//
//   - the join reference of every match run and query ("join/<collab>/<run>")
//     names the SHA-256 of the join table, a function of exactly which rows
//     matched: a crafted list makes the table empty or one known-shaped row;
//   - every upload part ("upload/<id>/<part>") names the SHA-256 of the
//     part's bytes: in hashed mode, where every member holds the
//     collaboration secret, a part of one row is a dictionary away from
//     that row's identifier and attribute values.
//
// Both are exact: no epsilon the room charges bounds what they tell.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// Bounds of the digest attacks.
const (
	// redteamJoinDigestBound is the highest membership accuracy allowed
	// over 20 crafted-list probes, half of the targets in the victim's list.
	// Each probe is charged one match release (epsilon 0.1), which allows
	// e^0.1/(1+e^0.1) ≈ 52.5%; 70% leaves room for chance (a fair coin
	// reaches it over 20 probes 2% of the time).
	redteamJoinDigestBound = 0.70
	// redteamPartRowsBound is how many of the victim's rows (identifier and
	// attribute values) an attacker may recover from part digests: none.
	redteamPartRowsBound = 0
)

// redteamClock is a room's clock that a test moves forward, so that an
// attacker's probes can run over several days, past the daily limits, as
// they would in life.
type redteamClock struct {
	mu sync.Mutex
	at time.Time
}

func (c *redteamClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *redteamClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(d)
}

// redteamAuditor registers the attacker's own auditor: the compliance
// officer of the attacking partner.
const redteamAuditor = atkAttacker + "-auditor"

// joinDigestOf returns the join digest of the latest answered match run in
// entries ("" if none).
func joinDigestOf(entries []audit.Entry) string {
	digest := ""
	for _, e := range entries {
		if e.Action != "match.run" || !e.Decision.Allow {
			continue
		}
		for _, d := range e.Data {
			if strings.HasPrefix(d.Name, "join/") {
				digest = d.Digest
			}
		}
	}
	return digest
}

// TestAttackRedteamJoinDigestMembership: the attacker uploads a list of one
// target and 999 made-up identifiers, matches, and has its auditor read
// the match run's join digest: the SHA-256 of an empty join table (nobody
// matched) or of one row (the victim holds the target).
func TestAttackRedteamJoinDigestMembership(t *testing.T) {
	clk := &redteamClock{at: time.Now()}
	s := newAttackScene(t, startRoomAt(t, clk.now, nil), attackOpts{noMatch: true})
	s.tr.partner(redteamAuditor, policy.RoleAuditor, atkAttacker)
	empty := sha256.Sum256(nil)
	emptyJoin := hex.EncodeToString(empty[:])
	type probe struct {
		id int
		in bool
	}
	var probes []probe
	for i := range 20 {
		if i%2 == 0 {
			probes = append(probes, probe{2000 + 37*i, true}) // the victim's alone
		} else {
			probes = append(probes, probe{5000 + 37*i, false}) // nobody's
		}
	}
	correct, refused := 0, 0
	for i, p := range probes {
		// Eight probes a day keep within the daily limits of uploads
		// and match runs.
		clk.advance(3 * time.Hour)
		rows := []atkRow{{atkEmail(p.id), p.id}}
		for j := range 999 {
			rows = append(rows, atkJunk(fmt.Sprintf("join%d", i), j))
		}
		guess := false
		err := s.upload(s.attacker, rows, atkAttackerCols)
		if err == nil {
			_, err = s.attacker.Match(s.ctx, s.collab)
		}
		if err != nil {
			refused++
			t.Logf("probe %d refused: %v", i, err)
		} else if entries, err := s.exportEntries(redteamAuditor); err != nil {
			refused++
			t.Logf("probe %d: export refused: %v", i, err)
		} else if d := joinDigestOf(entries); d != "" {
			guess = d != emptyJoin
		}
		correct += b2i(guess == p.in)
	}
	n := len(probes)
	t.Logf("membership by join digest: accuracy %s (%d probes refused), budget spent %g, bound %.0f%%",
		pct(correct, n), refused, s.budgetSpent(s.attacker), 100*redteamJoinDigestBound)
	if float64(correct) > redteamJoinDigestBound*float64(n) {
		t.Errorf("membership by join digest: accuracy %s, bound %.0f%%", pct(correct, n), 100*redteamJoinDigestBound)
	}
}

// redteamVictimCols are the victim's columns in the part digest attack:
// few, low-entropy values (4 plans, 4 regions, converted or not), as many
// real lists' segment columns are.
var redteamVictimCols = []string{"plan", "region", "converted"}

// TestAttackRedteamPartDigestDictionary: in hashed mode the attacker holds
// the collaboration secret, so it can make the token of any identifier it
// guesses. The victim's list of 2,001 people, sent in parts of 1,000, ends
// with a part of one row, whose SHA-256 the attacker's auditor reads in the
// log; the attacker tries every identifier of its dictionary with every
// combination of the victim's column values until one hashes to it.
func TestAttackRedteamPartDigestDictionary(t *testing.T) {
	s := attackRoom(t, attackOpts{victimRows: atkRows(span(1000, 3001)), victimCols: redteamVictimCols, noMatch: true})
	s.tr.partner(redteamAuditor, policy.RoleAuditor, atkAttacker)
	entries, err := s.exportEntries(redteamAuditor)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	// The victim's parts of a single row, by digest.
	short := map[string]bool{}
	parts := 0
	for _, e := range entries {
		if e.Principal != atkVictim || e.Action != "dataset.upload" || !e.Decision.Allow {
			continue
		}
		for _, d := range e.Data {
			if strings.HasPrefix(d.Name, "upload/") {
				parts++
				if d.Rows == 1 {
					short[d.Digest] = true
				}
			}
		}
	}
	recovered := dictionaryAttack(t, s, short)
	t.Logf("part digests: %d of the victim's parts in the attacker's auditor's export, %d of one row; rows recovered exactly (identifier and %v): %d %v, bound %d",
		parts, len(short), redteamVictimCols, len(recovered), recovered, redteamPartRowsBound)
	if len(recovered) > redteamPartRowsBound {
		t.Errorf("%d of the victim's rows recovered from part digests, bound %d", len(recovered), redteamPartRowsBound)
	}
}

// dictionaryAttack tries, for every digest in short, each identifier of
// the attacker's dictionary (people 0 to 5,999) with every combination of
// the victim's column values, as a one-row binary part; it returns the
// people whose identifier and values it recovered exactly (checked against
// the ground truth).
func dictionaryAttack(t *testing.T, s *attackScene, short map[string]bool) []string {
	t.Helper()
	if len(short) == 0 {
		return nil
	}
	ks, err := s.states[atkAttacker].LoadSecret(s.tr.op.Room().ID, s.collab)
	if err != nil {
		t.Fatal(err)
	}
	profile, err := crypto.LookupProfile(crypto.ProfilePAIRv1, crypto.ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const dictionary = 6000
	keys := make([]crypto.MatchKey, dictionary)
	for id := range dictionary {
		if keys[id], err = profile.MatchKey(crypto.KindEmail, atkEmail(id)); err != nil {
			t.Fatal(err)
		}
	}
	toks := make([]crypto.Token, dictionary)
	if err := crypto.HashTokens(s.ctx, ks, toks, keys); err != nil {
		t.Fatal(err)
	}
	var combos [][]string
	for _, p := range atkPlans {
		for _, r := range atkRegions {
			for _, c := range []string{"0", "1"} {
				combos = append(combos, []string{p, r, c})
			}
		}
	}
	var out []string
	var buf []byte
	for id := range dictionary {
		for _, vals := range combos {
			part := api.Part{Columns: len(redteamVictimCols)}
			if err := part.AppendValues(vals); err != nil {
				t.Fatal(err)
			}
			part.AppendToken(toks[id])
			if buf, err = part.AppendBinary(buf[:0]); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(buf)
			if !short[hex.EncodeToString(sum[:])] {
				continue
			}
			exact := true
			for i, col := range redteamVictimCols {
				exact = exact && vals[i] == atkValue(col, id)
			}
			if exact {
				out = append(out, fmt.Sprintf("person %d: %v", id, vals))
			}
		}
	}
	return out
}
