package cleanroom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/matcher"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestRelayProbes: an answer to a relay task that is not one key applied
// to every element is refused by the room's probes when the task's last
// part arrives, whichever part holds the elements changed; the refusal
// closes the task, names the member on the owner's dataset, stores none of
// it, and the owner's next upload is relayed afresh and completes. (The
// scene's attacker answers with the elements unchanged, the scalar 1,
// which its canary tokens are made with; a new list goes masked, a first
// one not, and the probes hold either way.)
func TestRelayProbes(t *testing.T) {
	b := newBlindScene(t, nil)
	const partBytes = taskPartSize * api.TokenSize
	for round, tc := range []struct {
		name   string
		first  int // the part answered first (faithfully), then the other, changed
		change func(ans []byte)
	}{
		{"part 1 one element throughout, after part 0", 0, func(ans []byte) {
			for i := partBytes; i < len(ans); i += api.TokenSize {
				copy(ans[i:i+api.TokenSize], ans[partBytes:partBytes+api.TokenSize])
			}
		}},
		{"part 0 with a tenth of its elements swapped, after part 1", 1, func(ans []byte) {
			n := partBytes / api.TokenSize
			for i := 0; i < n/20; i++ { // a swap changes two
				a, c := 20*i*api.TokenSize, (20*i+10)*api.TokenSize
				x := slices.Clone(ans[a : a+api.TokenSize])
				copy(ans[a:], ans[c:c+api.TokenSize])
				copy(ans[c:], x)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Two parts: 70,000 rows, the canaries and the probes; the
			// second list goes masked.
			b.uploadCSV(b.victim, span(100_000, 170_000+1_000*round))
			task, s := b.victimTask()
			if task.Parts != 2 {
				t.Fatalf("the task has %d parts, want 2", task.Parts)
			}
			part := func(ans []byte, p int) []byte { return ans[p*partBytes : min(len(ans), (p+1)*partBytes)] }
			put := func(ans []byte, p int) (int, []byte) {
				return b.raw(atkAttacker, "PUT", b.taskPath(task.ID, p), "application/octet-stream", part(ans, p))
			}
			if st, body := put(s, tc.first); st/100 != 2 {
				t.Fatalf("the faithful part %d: %d %s", tc.first, st, body)
			}
			changed := slices.Clone(s)
			tc.change(changed)
			other := 1 - tc.first
			if !b.answerRefused(task, changed) {
				t.Fatalf("the changed part %d was taken", other)
			}
			if st, body := put(s, other); st != http.StatusNotFound && st != http.StatusConflict {
				t.Fatalf("part %d answered faithfully after the refusal: %d %s, want the task gone", other, st, body)
			}
			v, err := b.victim.Collaboration(b.ctx, b.collab)
			if err != nil {
				t.Fatal(err)
			}
			if d := v.Datasets[atkVictim]; d.Layers != 1 || d.Ready {
				t.Fatalf("the refused set went on: %+v", d)
			}
			if _, err := b.victim.Sync(b.ctx, b.collab, true, 10*time.Millisecond); err == nil || !strings.Contains(err.Error(), "upload your list again") {
				t.Fatalf("the owner's sync after the refusal: %v, want it told to upload again", err)
			}
			if w := client.Waiting(client.PendingSteps(v)); !strings.Contains(w, atkVictim+" to upload its list again ("+atkAttacker+"'s re-encryption") {
				t.Fatalf("waiting: %q", w)
			}
			// The owner's next list is relayed afresh, and completes.
			b.uploadCSV(b.victim, span(100_000, 170_000+1_000*round+500))
			task, s = b.victimTask()
			b.answerTask(task, s)
			if v, err = b.victim.Collaboration(b.ctx, b.collab); err != nil {
				t.Fatal(err)
			}
			if d := v.Datasets[atkVictim]; d.Layers != 2 || d.RelayRefused != "" {
				t.Fatalf("the next list after a refusal: %+v", d)
			}
		})
	}
}

// TestRelayOffersEachElementOnce: a list that repeats people is offered to
// the member that re-encrypts it with each element once (its distinct
// people, the canaries and the probes, nothing twice), and every row of the
// list gets its element's answer: the match counts the distinct people the
// two lists share.
func TestRelayOffersEachElementOnce(t *testing.T) {
	b := newBlindScene(t, nil)
	var list []int
	for i := range 3000 {
		id := 100_000 + i
		list = append(list, id)
		if i%3 == 0 {
			list = append(list, id, id) // a third of the people three times
		}
	}
	b.uploadCSV(b.victim, list)
	task, s := b.victimTask()
	const distinct, canaries = 3000, 4
	seen := map[[32]byte]bool{}
	for i := 0; i < len(s); i += api.TokenSize {
		e := [32]byte(s[i:])
		if seen[e] {
			t.Fatalf("element %d of the task is offered twice", i/api.TokenSize)
		}
		seen[e] = true
	}
	if want := distinct + canaries + probeCount(distinct+canaries, canaries); len(seen) != want || task.Rows != int64(want) {
		t.Fatalf("the task offers %d elements (rows %d), want %d: the distinct people, the canaries and the probes", len(seen), task.Rows, want)
	}
	b.answerTask(task, s) // faithful for the scene's attacker (the scalar 1)

	// The attacker's list: 1,000 of the victim's people (some of them
	// listed three times there) and 1,000 others.
	var tokens [][32]byte
	for i := range 2000 {
		tokens = append(tokens, b.point(atkEmail(101_500+i)))
	}
	b.uploadTokens(atkAttacker, tokens, b.canary(b.unit))
	b.sync(b.victim)
	if _, err := b.attacker.Match(b.ctx, b.collab); err != nil {
		t.Fatal(err)
	}
	if got := b.tr.matched(b.collab); got != 1500 {
		t.Fatalf("matched %d, want 1500 distinct people", got)
	}
}

// TestRelayRefusalKeepsTheSetsLayer: with three members, a set that
// carries two keys is offered to the third; when the third's answer fails
// the probes, the task closes and the set stays at the layer it has, which
// its dataset still names and which still reads.
func TestRelayRefusalKeepsTheSetsLayer(t *testing.T) {
	tr := startRoom(t)
	var ps []*client.Client
	for _, n := range []string{"alpha", "bravo", "charlie"} {
		ps = append(ps, tr.partner(n, policy.RolePartner, ""))
	}
	states := tr.collab("c1", api.ModeBlinded, nil, ps...)
	ctx := context.Background()
	if _, err := ps[0].UploadCSV(ctx, uploadSpec("c1", writeList(t, span(0, 1500)), states["alpha"])); err != nil {
		t.Fatal(err)
	}
	// bravo re-encrypts alpha's set (its second key); charlie is next.
	if _, err := ps[1].Sync(ctx, "c1", false, 0); err != nil {
		t.Fatal(err)
	}
	resp, body := rawRequest(t, tr, "charlie", "GET", "/v1/collaborations/c1/tasks", nil)
	var tasks []api.Task
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tasks) != nil || len(tasks) != 1 || tasks[0].Layer != 2 {
		t.Fatalf("charlie's tasks: %d %s", resp.StatusCode, body)
	}
	task := tasks[0]
	path := fmt.Sprintf("/v1/collaborations/c1/tasks/%s/parts/0", task.ID)
	resp, elems := rawRequest(t, tr, "charlie", "GET", path, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the task's part: %d %s", resp.StatusCode, elems)
	}
	one := bytes.Repeat(elems[:api.TokenSize], len(elems)/api.TokenSize)
	if resp, msg := rawRequestAs(t, tr, "charlie", "PUT", path, "application/octet-stream", one); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("one element throughout: %d %s, want 422", resp.StatusCode, msg)
	}
	c, err := tr.room.collab("c1")
	if err != nil {
		t.Fatal(err)
	}
	ds := c.Datasets["alpha"]
	if ds.Layers != 2 || ds.RelayRefused != "charlie" {
		t.Fatalf("alpha's dataset after the refusal: layers %d, refused by %q", ds.Layers, ds.RelayRefused)
	}
	lr := tr.room.newLayerReader(ds, true)
	buf := make([]matcher.Pair, 4096)
	rows := 0
	for {
		n, err := lr.Read(buf)
		rows += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("alpha's layer 2 after the refusal: %v", err)
		}
	}
	if rows != 1500+4 {
		t.Fatalf("alpha's layer 2 reads %d rows, want 1,504", rows)
	}
}
