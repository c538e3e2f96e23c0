package cleanroom

// Red team: the collaboration's life (members, lists, the relay, budgets)
// as a member would break it. This file: the blinded relay with three
// members. A set's owner encrypts it (k_o·P); the room offers it to the other
// members in their sorted order, each multiplying by its own key. A member
// later in that chain than an honest one sees the owner's elements carrying
// the honest member's key, and the first member to re-encrypt the honest
// member's own set sees that set under the same key. Two members the same
// brand controls (a sybil) can then strip their own keys and compare: the
// exact overlap with the honest member's list, with nothing charged. The
// member sorted last sees the two others' sets under the same product of
// keys without colluding with anyone, and with two members the one that
// re-encrypts the other's lists sees each new list under the same key as the
// last. The room's relay masks each offer with a fresh scalar of its own,
// applied before a member sees the set and removed when its answer is
// stored (every offer but a member's first list under its own key alone,
// which no member sees under that key twice), so none of the three
// comparisons finds anything: each is held to chance. Without the mask,
// each read its target in 40 of 40.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// lifeDeadline bounds each test of this file (the brief's 60 s).
const lifeDeadline = 60 * time.Second

func lifeContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), lifeDeadline)
	t.Cleanup(cancel)
	return ctx
}

// lifeTargets is how many people each membership attack of this file is
// scored on.
const lifeTargets = 40

// lifeTarget is the person of target i, and whether the victim's list
// holds it (a fair coin, fixed by the person).
func lifeTarget(i int) (id int, in bool) {
	id = 3000 + i
	return id, atkMix(id, 91)%2 == 0
}

// lifeVictimRows is the victim's list: its 2,000 customers and the targets
// it holds.
func lifeVictimRows() []atkRow {
	rows := atkRows(atkVictimIDs)
	for i := range lifeTargets {
		if id, in := lifeTarget(i); in {
			rows = append(rows, atkRow{atkEmail(id), id})
		}
	}
	return rows
}

// lifeJunk is n made-up identifiers tagged tag.
func lifeJunk(tag string, n int) []atkRow {
	out := make([]atkRow, n)
	for i := range out {
		out[i] = atkJunk(tag, i)
	}
	return out
}

// lifeUpload uploads rows with cols as c to collab.
func lifeUpload(ctx context.Context, t *testing.T, c *client.Client, collab string, state client.StateDir, rows []atkRow, cols []string) {
	t.Helper()
	if _, err := c.UploadCSV(ctx, client.UploadSpec{Collab: collab, Input: writeAttackList(t, rows, cols), IDColumn: "email",
		Kind: crypto.KindEmail, Columns: cols, State: state, RowsPerPart: 1000}); err != nil {
		t.Fatalf("upload as %s: %v", c.Principal(), err)
	}
}

// relayView downloads, as who, the relay task of owner's set at layer (the
// keys it carries), if the room has offered it to who: the elements exactly
// as the room serves them to a member asked to re-encrypt. ok is false if no
// such task is open for who.
func relayView(t *testing.T, tr *testRoom, who, collab, owner string, layer int) (elems [][crypto.ElementSize]byte, ok bool) {
	t.Helper()
	status, body := atkRaw(t, tr, who, http.MethodGet, "/v1/collaborations/"+collab+"/tasks", "", nil)
	if status != http.StatusOK {
		t.Fatalf("listing %s's tasks: %d %s", who, status, body)
	}
	var tasks []api.Task
	if err := json.Unmarshal(body, &tasks); err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if task.Owner != owner || task.Layer != layer {
			continue
		}
		for p := range task.Parts {
			status, b := atkRaw(t, tr, who, http.MethodGet, fmt.Sprintf("/v1/collaborations/%s/tasks/%s/parts/%d", collab, task.ID, p), "", nil)
			if status != http.StatusOK || len(b)%crypto.ElementSize != 0 {
				t.Fatalf("reading part %d of %s's task: %d (%d bytes)", p, who, status, len(b))
			}
			for i := 0; i < len(b); i += crypto.ElementSize {
				elems = append(elems, [crypto.ElementSize]byte(b[i:i+crypto.ElementSize]))
			}
		}
		return elems, true
	}
	return nil, false
}

// unblind multiplies every element by the inverse of k: what the elements
// would be without k's layer.
func unblind(ctx context.Context, t *testing.T, k *crypto.BlindingKey, elems [][crypto.ElementSize]byte) [][crypto.ElementSize]byte {
	t.Helper()
	src := make([]crypto.Element, len(elems))
	for i, e := range elems {
		el, err := crypto.DecodeElement(e[:])
		if err != nil {
			t.Fatal(err)
		}
		src[i] = el
	}
	if err := k.DecryptBatch(ctx, src, src); err != nil {
		t.Fatal(err)
	}
	out := make([][crypto.ElementSize]byte, len(src))
	for i, e := range src {
		out[i] = e.Bytes()
	}
	return out
}

// TestAttackRedteamLifeSybilRelay: a brand registered as two partners
// ("attacker" and "zsybil") creates a blinded collaboration with the victim
// (three members, sorted attacker, victim, zsybil), and the victim accepts
// terms it was shown honestly. The attacker's list holds target i i+2 times
// (a list with duplicates, which the room accepts) and 1,000 made-up people;
// the sybil's list is made-up people. Every member runs its client's sync as
// usual; before syncing, the attacker keeps what the room asks it to
// re-encrypt:
//   - as attacker, the victim's set at layer 1: k_v·P_y for every y of the
//     victim's list;
//   - as zsybil, the attacker's set at layer 2, after the victim's key:
//     k_v·k_a·P_x for every row x of its own list.
//
// Multiplying the second by k_a⁻¹ gives k_v·P_x; a target's element is the
// one that appears i+2 times, and it is in the first set exactly when the
// target is in the victim's list. No match runs and no epsilon is charged, so
// the model allows chance: 50% plus three deviations over 40 targets.
func TestAttackRedteamLifeSybilRelay(t *testing.T) {
	skipRelayAttackUnderRace(t)
	ctx := lifeContext(t)
	tr := startRoom(t)
	const collab = "c1"
	attacker := tr.partner(atkAttacker, policy.RolePartner, "")
	victim := tr.partner(atkVictim, policy.RolePartner, "")
	sybil := tr.partner("zsybil", policy.RolePartner, "")
	states := tr.collab(collab, api.ModeBlinded, nil, attacker, victim, sybil)

	lifeUpload(ctx, t, victim, collab, states[atkVictim], lifeVictimRows(), []string{"region"})
	var own []atkRow
	for i := range lifeTargets {
		id, _ := lifeTarget(i)
		for range i + 2 {
			own = append(own, atkRow{atkEmail(id), id})
		}
	}
	own = append(own, lifeJunk("a", 1000)...)
	lifeUpload(ctx, t, attacker, collab, states[atkAttacker], own, []string{"age_band"})
	lifeUpload(ctx, t, sybil, collab, states["zsybil"], lifeJunk("s", 1000), []string{"age_band"})

	// The members sync as their clients do, the attacker keeping what it is
	// asked to re-encrypt before it does.
	var victimSet, ownSet [][crypto.ElementSize]byte
	ready := false
	for round := 0; round < 20 && !ready; round++ {
		for _, c := range []*client.Client{attacker, victim, sybil} {
			switch {
			case c == attacker && victimSet == nil:
				victimSet, _ = relayView(t, tr, atkAttacker, collab, atkVictim, 1)
			case c == sybil && ownSet == nil:
				ownSet, _ = relayView(t, tr, "zsybil", collab, atkAttacker, 2)
			}
			rep, err := c.Sync(ctx, collab, false, 0)
			if err != nil {
				t.Fatalf("sync as %s: %v", c.Principal(), err)
			}
			ready = rep.Ready
		}
	}
	if victimSet == nil || ownSet == nil {
		t.Fatalf("the relay never offered the sets the attack reads (victim's: %v, own at layer 2: %v)", victimSet != nil, ownSet != nil)
	}

	inVictim := map[[crypto.ElementSize]byte]bool{}
	for _, e := range victimSet {
		inVictim[e] = true
	}
	times := map[[crypto.ElementSize]byte]int{}
	for _, e := range unblind(ctx, t, attacker.BlindingKey(collab), ownSet) {
		times[e]++
	}
	byTimes := map[int][crypto.ElementSize]byte{}
	for e, n := range times {
		byTimes[n] = e
	}
	correct, overlap := 0, 0
	for i := range lifeTargets {
		_, in := lifeTarget(i)
		e, found := byTimes[i+2]
		guess := found && inVictim[e]
		if guess == in {
			correct++
		}
	}
	for e := range times {
		if inVictim[e] {
			overlap++
		}
	}
	spent := lifeSpent(t, ctx, attacker, collab)
	bound := timingBound(lifeTargets)
	t.Logf("sybil relay: the attacker read %d of the victim's elements and %d of its own under the victim's key; "+
		"elements in both (targets and canaries): %d; targets told right: %s, bound %.1f%%; epsilon charged: %g; ready: %v",
		len(victimSet), len(ownSet), overlap, pct(correct, lifeTargets), 100*bound, spent, ready)
	if float64(correct)/lifeTargets > bound {
		t.Errorf("two members of one brand read whether each target is in the victim's list from the blinded relay: %s right with "+
			"epsilon %g charged, beyond chance plus three deviations (%.1f%%)", pct(correct, lifeTargets), spent, 100*bound)
	}
}

// lifeSpent is the collaboration's spent epsilon as c reads it.
func lifeSpent(t *testing.T, ctx context.Context, c *client.Client, collab string) float64 {
	t.Helper()
	b, err := c.Budget(ctx, collab)
	if err != nil {
		t.Fatalf("reading the budget: %v", err)
	}
	return b.Spent
}

// lifeRelay runs the members' clients' sync until every set carries every
// key, calling look(who) before each member syncs, so that a member can keep
// what it is asked to re-encrypt.
func lifeRelay(ctx context.Context, t *testing.T, collab string, members []*client.Client, look func(who string)) {
	t.Helper()
	for range 20 {
		ready := false
		for _, c := range members {
			look(c.Principal())
			rep, err := c.Sync(ctx, collab, false, 0)
			if err != nil {
				t.Fatalf("sync as %s: %v", c.Principal(), err)
			}
			ready = rep.Ready
		}
		if ready {
			return
		}
	}
	t.Fatalf("collaboration %s never became ready", collab)
}

// TestAttackRedteamLifeLastMemberOverlap: no collusion. In a blinded
// collaboration of three, the member sorted last ("zobs") re-encrypts both
// other members' sets as their second layer: k_v·k_h·P for the first
// member's list and k_h·k_v·P for the second's, under the same product of
// keys. Their common elements are the two lists' exact overlap (and the four
// canaries), which the model says never leaves the room. The observer knows
// everything of both lists but whether the target is in the victim's (the
// adversary of differential privacy, here over 40 fresh collaborations, a
// coin each), and guesses from the overlap it counts; nothing is charged, so
// the model allows chance plus three deviations.
func TestAttackRedteamLifeLastMemberOverlap(t *testing.T) {
	skipRelayAttackUnderRace(t)
	ctx := lifeContext(t)
	tr := startRoom(t)
	honest := tr.partner("hbrand", policy.RolePartner, "")
	victim := tr.partner(atkVictim, policy.RolePartner, "")
	obs := tr.partner("zobs", policy.RolePartner, "")
	canaries := len(api.CanaryIdentifiers("email"))
	const base = 500 // the two lists' overlap without the target
	trials := lifeTargets
	correct, exact := 0, 0
	for j := range trials {
		collab := fmt.Sprintf("o%d", j)
		id, in := lifeTarget(j)
		hRows := append(atkRows(span(0, 1000)), atkRow{atkEmail(id), id})
		vRows := atkRows(span(1000-base, 2000-base))
		if in {
			vRows = append(vRows, atkRow{atkEmail(id), id})
		}
		states := tr.collab(collab, api.ModeBlinded, nil, honest, victim, obs)
		lifeUpload(ctx, t, honest, collab, states["hbrand"], hRows, []string{"region"})
		lifeUpload(ctx, t, victim, collab, states[atkVictim], vRows, []string{"region"})
		lifeUpload(ctx, t, obs, collab, states["zobs"], lifeJunk(fmt.Sprintf("o%d", j), 1000), []string{"age_band"})
		var hSet, vSet [][crypto.ElementSize]byte
		lifeRelay(ctx, t, collab, []*client.Client{honest, victim, obs}, func(who string) {
			if who != "zobs" {
				return
			}
			if hSet == nil {
				hSet, _ = relayView(t, tr, "zobs", collab, "hbrand", 2)
			}
			if vSet == nil {
				vSet, _ = relayView(t, tr, "zobs", collab, atkVictim, 2)
			}
		})
		if hSet == nil || vSet == nil {
			t.Fatalf("trial %d: the observer was not offered both sets at layer 2 (%v, %v)", j, hSet != nil, vSet != nil)
		}
		inH := map[[crypto.ElementSize]byte]bool{}
		for _, e := range hSet {
			inH[e] = true
		}
		common := 0
		for _, e := range vSet {
			if inH[e] {
				common++
				delete(inH, e)
			}
		}
		overlap := common - canaries
		truth := base
		if in {
			truth++
		}
		if overlap == truth {
			exact++
		}
		if (overlap == base+1) == in {
			correct++
		}
		if spent := lifeSpent(t, ctx, obs, collab); spent != 0 {
			t.Fatalf("trial %d: %g epsilon charged, none expected", j, spent)
		}
	}
	bound := timingBound(trials)
	t.Logf("last member: overlap of the other two members' lists counted exactly in %d of %d collaborations; target told right in %s, bound %.1f%%; epsilon charged: 0",
		exact, trials, pct(correct, trials), 100*bound)
	if float64(correct)/float64(trials) > bound {
		t.Errorf("the member sorted last reads the other two members' exact overlap from the blinded relay and tells a target's membership in %s, "+
			"with nothing charged, beyond chance plus three deviations (%.1f%%)", pct(correct, trials), 100*bound)
	}
}

// TestAttackRedteamLifeReuploadRelay: two members, blinded (the default
// mode), no collusion. The attacker re-encrypts each list the victim
// uploads, as the first layer k_v·P_y, and the victim's key is the same
// for every list it uploads: so the attacker compares the victim's
// successive lists element by element and counts exactly how many people
// stayed. The adversary of differential privacy knows everything of the
// victim's two lists but whether the target stayed (here in 40 fresh
// collaborations, a coin each: the victim drops 100 people and adds 100,
// the target among those dropped or not); nothing is charged, so the model
// allows chance plus three deviations. (The docs make list sizes public and
// say why; the overlap of a member's successive lists is not among what
// they make public.)
func TestAttackRedteamLifeReuploadRelay(t *testing.T) {
	skipRelayAttackUnderRace(t)
	ctx := lifeContext(t)
	tr := startRoom(t)
	attacker := tr.partner(atkAttacker, policy.RolePartner, "")
	victim := tr.partner(atkVictim, policy.RolePartner, "")
	canaries := len(api.CanaryIdentifiers("email"))
	const kept = 1900 // of the first list's 2,000, without the target, stay in the second
	correct, exact := 0, 0
	for j := range lifeTargets {
		collab := fmt.Sprintf("r%d", j)
		id, stays := lifeTarget(j)
		first := append(atkRows(span(1000, 3000)), atkRow{atkEmail(id), id})
		second := append(atkRows(span(1100, 3000)), atkRows(span(4000, 4100))...)
		if stays {
			second = append(second, atkRow{atkEmail(id), id})
		}
		states := tr.collab(collab, api.ModeBlinded, nil, attacker, victim)
		lifeUpload(ctx, t, attacker, collab, states[atkAttacker], lifeJunk(fmt.Sprintf("r%d", j), 1000), []string{"age_band"})
		var views [2][][crypto.ElementSize]byte
		for v, rows := range [][]atkRow{first, second} {
			lifeUpload(ctx, t, victim, collab, states[atkVictim], rows, []string{"region"})
			lifeRelay(ctx, t, collab, []*client.Client{attacker, victim}, func(who string) {
				if who == atkAttacker && views[v] == nil {
					views[v], _ = relayView(t, tr, atkAttacker, collab, atkVictim, 1)
				}
			})
			if views[v] == nil {
				t.Fatalf("trial %d: the attacker was not offered the victim's list %d", j, v+1)
			}
		}
		before := map[[crypto.ElementSize]byte]bool{}
		for _, e := range views[0] {
			before[e] = true
		}
		common := 0
		for _, e := range views[1] {
			if before[e] {
				common++
				delete(before, e)
			}
		}
		stayed := common - canaries
		truth := kept
		if stays {
			truth++
		}
		if stayed == truth {
			exact++
		}
		if (stayed == kept+1) == stays {
			correct++
		}
	}
	bound := timingBound(lifeTargets)
	t.Logf("re-upload: the victim's people kept from one list to the next counted exactly in %d of %d collaborations; target told right in %s, bound %.1f%%; epsilon charged: 0",
		exact, lifeTargets, pct(correct, lifeTargets), 100*bound)
	if float64(correct)/lifeTargets > bound {
		t.Errorf("the member that re-encrypts the victim's lists compares them and tells whether the target stayed in %s, with nothing charged, "+
			"beyond chance plus three deviations (%.1f%%)", pct(correct, lifeTargets), 100*bound)
	}
}
