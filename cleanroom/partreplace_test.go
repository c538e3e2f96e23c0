package cleanroom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestPartReplacedWhileCommitted: a commit reads the upload under the
// member's gate and checks its parts (their digest against the client's,
// the list's distinct identifiers and its difference from the previous
// one, which the policy decides on); a part sent again with other bytes
// takes no gate, so it can commit after that read and before the upload's
// commit. The commit must then be refused, not record the parts it read
// while the keys name others.
func TestPartReplacedWhileCommitted(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	tr.collab("c1", api.ModeHashed, nil, a, b)
	up := startRegionUpload(t, tr, 2000, 1000)
	partPath := func(part int) string { return fmt.Sprintf("/v1/collaborations/c1/uploads/%s/parts/%d", up.ID, part) }
	body := func(part int, value, seed string) ([]byte, string) {
		b := binaryPart(t, 1000, 1, make([]byte, 32), value, distinctTokens(seed))
		sum := sha256.Sum256(b)
		return b, hex.EncodeToString(sum[:])
	}
	var digests []string
	for part := range 2 {
		b, d := body(part, "west", fmt.Sprint(part))
		if resp, msg := rawRequestAs(t, tr, "alpha", "PUT", partPath(part), api.PartContentType, b); resp.StatusCode != http.StatusOK {
			t.Fatalf("part %d: %d %s", part, resp.StatusCode, msg)
		}
		digests = append(digests, d)
	}
	// The commit waits for the matcher's memory once it has read the upload
	// under the member's gate.
	releaseMemory := holdMatchMemory(t, tr)
	commitBody, _ := jsonMarshal(api.CommitUpload{Digest: api.DatasetDigest(digests), Rows: 2000})
	committed := make(chan int, 1)
	go func() {
		resp, _ := rawRequest(t, tr, "alpha", "POST", "/v1/collaborations/c1/uploads/"+up.ID+"/commit", commitBody)
		committed <- resp.StatusCode
	}()
	waitGateHeld(t, tr, "member/c1/alpha")
	time.Sleep(200 * time.Millisecond) // it reads the upload, is authorized, waits for memory
	// Part 1 again, other people: it commits while the commit waits.
	replacement, newDigest := body(1, "east", "other")
	replaced := make(chan int, 1)
	go func() {
		resp, _ := rawRequestAs(t, tr, "alpha", "PUT", partPath(1), api.PartContentType, replacement)
		replaced <- resp.StatusCode
	}()
	received := func() string {
		_, d := sweepRaceDigest(t, tr, up.ID, 1)
		return d
	}
	for deadline := time.Now().Add(10 * time.Second); received() != newDigest; {
		if time.Now().After(deadline) {
			t.Fatal("the replacement never committed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	releaseMemory()
	c, p := <-committed, <-replaced
	if c == http.StatusOK && p == http.StatusOK {
		t.Errorf("the commit (of parts %v) and the replacement of part 1 both succeeded; the upload records part 1 as %s, its key names %s",
			digests, received()[:8], newDigest[:8])
	}
	if got := received(); got != newDigest {
		t.Errorf("the upload records part 1 as %s, after a replacement by %s that was answered %d", got[:8], newDigest[:8], p)
	}
}

// waitGateHeld waits until someone holds the whole of gate key (a commit
// holds a member's), failing t after 10 s.
func waitGateHeld(t *testing.T, tr *testRoom, key string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		release, err := tr.room.gates.acquire(ctx, key, 1)
		cancel()
		if err != nil {
			return
		}
		release()
		if time.Now().After(deadline) {
			t.Fatalf("no one took gate %s", key)
		}
	}
}

// holdMatchMemory takes all of the room's matcher memory, so that a commit
// waits for it once it has read its upload under the member's gate, until
// the function it returns (or the test's end) gives it back.
func holdMatchMemory(t *testing.T, tr *testRoom) (release func()) {
	t.Helper()
	if err := tr.room.matchMem.Acquire(context.Background(), 4); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { tr.room.matchMem.Release(4) }) }
	t.Cleanup(release)
	return release
}
