package cleanroom

import (
	"net/http"
	"slices"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestRelayProbes: an answer to a relay task that is not one key applied
// to every element is refused by the room's probes, whichever part holds
// the elements changed and whichever part is answered last, and the task
// stays open: the same task answered faithfully then completes. (The
// scene's attacker answers with the elements unchanged, the scalar 1,
// which its canary tokens are made with; a new list goes masked, a first
// one not, and the probes hold either way.)
func TestRelayProbes(t *testing.T) {
	b := newBlindScene(t, nil)
	// Two parts: 70,000 rows, the canaries and the probes.
	b.uploadCSV(b.victim, span(100_000, 170_000))
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
			if round == 1 {
				// A new list: offered masked.
				b.uploadCSV(b.victim, span(100_000, 171_000))
			}
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
			st, body := put(changed, other)
			if st != http.StatusUnprocessableEntity {
				t.Fatalf("the changed part %d: %d %s, want 422", other, st, body)
			}
			if len(b.tasks(atkAttacker)) == 0 {
				t.Fatal("a refused answer closed the task")
			}
			if st, body := put(s, other); st/100 != 2 {
				t.Fatalf("part %d answered faithfully after its refusal: %d %s", other, st, body)
			}
			for _, open := range b.tasks(atkAttacker) {
				if open.ID == task.ID {
					t.Fatalf("the task is still open after both parts were answered: %+v", open)
				}
			}
		})
	}
}
