package cleanroom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/policy"
)

// sweepRace starts a hashed collaboration c1 in which alpha has an upload
// of two parts of 1,000 rows, with part 0 received, and returns the room,
// the upload, and a function that sends part p, its tokens made from seed,
// and returns its status and digest.
func sweepRace(t *testing.T) (*testRoom, api.Upload, func(p int, seed string) (int, string)) {
	t.Helper()
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	tr.collab("c1", api.ModeHashed, nil, a, b)
	up := startRegionUpload(t, tr, 2000, 1000)
	send := func(p int, seed string) (int, string) {
		body := binaryPart(t, 1000, 1, make([]byte, 32), "west", distinctTokens(seed))
		sum := sha256.Sum256(body)
		resp, _ := rawRequestAs(t, tr, "alpha", "PUT", fmt.Sprintf("/v1/collaborations/c1/uploads/%s/parts/%d", up.ID, p), api.PartContentType, body)
		return resp.StatusCode, hex.EncodeToString(sum[:])
	}
	if status, _ := send(0, "0"); status != http.StatusOK {
		t.Fatalf("part 0: %d", status)
	}
	return tr, up, send
}

func segmentFiles(t *testing.T, tr *testRoom) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(tr.dir.Segments(), "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// TestSweepSparesUploadCommittedMeanwhile: the sweep of abandoned uploads
// finds an upload not committed, and its member commits it before the
// sweep deletes it. The sweep must wait for the commit and keep the
// dataset, not delete the parts of a list just committed.
func TestSweepSparesUploadCommittedMeanwhile(t *testing.T) {
	tr, up, send := sweepRace(t)
	_, d0 := sweepRaceDigest(t, tr, up.ID, 0)
	status, d1 := send(1, "1")
	if status != http.StatusOK {
		t.Fatalf("part 1: %d", status)
	}
	// The commit waits for the matcher's memory once it has read the upload
	// under the member's commit lock.
	ctx := context.Background()
	releaseMemory := holdMatchMemory(t, tr)
	commitBody, _ := jsonMarshal(api.CommitUpload{Digest: api.DatasetDigest([]string{d0, d1}), Rows: 2000})
	committed := make(chan int, 1)
	go func() {
		resp, _ := rawRequest(t, tr, "alpha", "POST", "/v1/collaborations/c1/uploads/"+up.ID+"/commit", commitBody)
		committed <- resp.StatusCode
	}()
	waitGateHeld(t, tr, "member/c1/alpha")
	// The sweep's scan found the upload uncommitted and started before its
	// cutoff (an hour from now: the upload counts as abandoned).
	swept := make(chan error, 1)
	go func() { swept <- tr.room.sweepUpload(ctx, "c1", "alpha", up.ID, time.Now().Add(time.Hour)) }()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-swept:
		t.Fatalf("the sweep finished (%v) while the upload's commit was under way", err)
	default:
	}
	releaseMemory()
	if status := <-committed; status != http.StatusOK {
		t.Fatalf("commit: %d", status)
	}
	if err := <-swept; err != nil {
		t.Fatal(err)
	}
	c, err := tr.room.collab("c1")
	if err != nil {
		t.Fatal(err)
	}
	if ds := c.Datasets["alpha"]; ds == nil || ds.Upload != up.ID {
		t.Fatalf("alpha's dataset is %+v, want upload %s", ds, up.ID)
	}
	for p := range 2 {
		if err := tr.room.withSegment(store.Segments(up.ID).Key(p), func([]byte) error { return nil }); err != nil {
			t.Errorf("part %d of the committed dataset: %v", p, err)
		}
	}
}

// sweepRaceDigest returns the digest the room recorded for part p of
// upload id.
func sweepRaceDigest(t *testing.T, tr *testRoom, id string, p int) (*uploadRecord, string) {
	t.Helper()
	var u *uploadRecord
	var info partInfo
	err := tr.room.db.View(func(txn *badger.Txn) (err error) {
		if u, err = loadUpload(tr.room.txn(txn), "c1", id); err != nil {
			return err
		}
		info, _, err = receipt(tr.room.txn(txn), u, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return u, info.Digest
}

// sweepSending sweeps upload up (alpha's, in c1) as abandoned and, in the
// sweep's first round, between its read of the keys and their deletion,
// sends part p with tokens from seed. The part is sent aside (a committed
// part waits for the member's gate, which the sweep holds, to settle its
// files) and the round waits until committed reports it stored. It
// returns the part's status.
func sweepSending(t *testing.T, tr *testRoom, up api.Upload, send func(int, string) (int, string), p int, seed string, committed func() bool) int {
	t.Helper()
	status := make(chan int, 1)
	started := false
	hook := func(string) {
		if started {
			return
		}
		started = true
		go func() { s, _ := send(p, seed); status <- s }()
		for deadline := time.Now().Add(10 * time.Second); !committed(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Error("the part sent during the sweep never committed")
				return
			}
		}
	}
	tr.room.beforeDelete.Store(&hook)
	defer tr.room.beforeDelete.Store(nil)
	if err := tr.room.sweepUpload(context.Background(), "c1", "alpha", up.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return <-status
}

// checkSwept fails t if a key of upload up, or a segment file, is left
// (the room holds no other upload).
func checkSwept(t *testing.T, tr *testRoom, up api.Upload) {
	t.Helper()
	if n := countKeys(t, tr.room, append(store.UploadData(up.ID), uploads.Span(up.ID)...)...); n != 0 {
		t.Errorf("%d keys of the swept upload left", n)
	}
	if n := segmentFiles(t, tr); n != 0 {
		t.Errorf("%d segment files left after the only upload was swept", n)
	}
}

// dataDeletes counts the room's data.delete audit entries.
func dataDeletes(t *testing.T, tr *testRoom) int {
	t.Helper()
	n := 0
	for i := range tr.room.audit.Size() {
		b, err := tr.room.audit.Entry(context.Background(), i)
		if err != nil {
			t.Fatal(err)
		}
		if e, _ := auditEntry(b); e == "data.delete" {
			n++
		}
	}
	return n
}

// TestSweepDeletesPartSentMeanwhile: a part of an abandoned upload commits
// after the sweep read the upload's keys and before it deleted them. The
// part's key and file must go too, in a further audited round, rather
// than outlive the upload's record that would lead a later deletion to
// them.
func TestSweepDeletesPartSentMeanwhile(t *testing.T) {
	tr, up, send := sweepRace(t)
	before := dataDeletes(t, tr)
	status := sweepSending(t, tr, up, send, 1, "1", func() bool { return countKeys(t, tr.room, store.Segments(up.ID).Span()) == 2 })
	if status != http.StatusOK {
		t.Fatalf("the part sent during the sweep was answered %d; the race this test is about did not happen", status)
	}
	checkSwept(t, tr, up)
	if got := dataDeletes(t, tr) - before; got != 2 {
		t.Errorf("%d data.delete entries for the sweep, want 2 (the keys read first, then the part that raced with them)", got)
	}
}

// TestSweepRemovesPartReplacedMeanwhile: a part of an abandoned upload is
// sent again, with other bytes, after the sweep read the upload's keys and
// before it deleted them. The batch deletes the part's key, which then
// names the new file, not the one the sweep read: the request that wrote
// the new file must remove it, rather than leave it until the room opens
// again.
func TestSweepRemovesPartReplacedMeanwhile(t *testing.T) {
	tr, up, send := sweepRace(t)
	_, first := sweepRaceDigest(t, tr, up.ID, 0)
	status := sweepSending(t, tr, up, send, 0, "replacement", func() bool { _, d := sweepRaceDigest(t, tr, up.ID, 0); return d != first })
	if status != http.StatusOK {
		t.Fatalf("the part sent again during the sweep was answered %d; the race this test is about did not happen", status)
	}
	checkSwept(t, tr, up)
}

// TestSweepOutlastsPartSentAgainEachRound: while an abandoned upload is
// swept, its member sends part 0 again, with other bytes, in each round,
// once the round's audit entry has committed and while the round deletes
// the keys it read. A part sent again must neither make the sweep give up
// (deleteData after maxDeleteRounds, which would also keep sweepAbandoned
// from the uploads after this one) nor outlive it: a part that commits
// before the round's batch is deleted with it, one after is refused.
//
// The upload is given many keys (filler under its segments' prefix, as a
// large upload's parts and layers would be) only to widen the window in
// which the round deletes, so that the part reliably lands in it.
func TestSweepOutlastsPartSentAgainEachRound(t *testing.T) {
	tr, up, send := sweepRace(t)
	const filler = 60000
	wb := tr.room.db.NewWriteBatch()
	for i := range filler {
		if err := wb.Set(store.Segments(up.ID).Key(1000000+i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	status := make(chan int, maxDeleteRounds+1)
	round := 0
	hook := func(string) {
		round++
		before := tr.room.audit.Size()
		go func() {
			// Once the round's data.delete entry has committed, the round
			// deletes its keys.
			for deadline := time.Now().Add(10 * time.Second); tr.room.audit.Size() == before; time.Sleep(100 * time.Microsecond) {
				if time.Now().After(deadline) {
					status <- 0
					return
				}
			}
			s, _ := send(0, fmt.Sprint("again-", round))
			status <- s
		}()
	}
	tr.room.beforeDelete.Store(&hook)
	defer tr.room.beforeDelete.Store(nil)
	err := tr.room.sweepUpload(context.Background(), "c1", "alpha", up.ID, time.Now().Add(time.Hour))
	tr.room.beforeDelete.Store(nil)
	var statuses []int
	for range round {
		statuses = append(statuses, <-status)
	}
	t.Logf("rounds %d, statuses of the parts sent again %v", round, statuses)
	if err != nil {
		t.Fatalf("the sweep of an upload whose member sent a part again in each round failed: %v", err)
	}
	checkSwept(t, tr, up)
}

// TestPartSentAgainAfterItsSegmentWent: a part sent again whose receipt the
// room reads but whose segment is gone by the time it is checked (the
// upload's deletion runs between the two) is written again and left to
// its transaction, never answered 500. Here the segment's key alone is
// deleted: the part the upload still lists is stored again.
func TestPartSentAgainAfterItsSegmentWent(t *testing.T) {
	tr, up, send := sweepRace(t)
	key := store.Segments(up.ID).Key(0)
	if err := store.DeleteKeys(tr.room.db, [][]byte{key}); err != nil {
		t.Fatal(err)
	}
	if status, _ := send(0, "0"); status != http.StatusOK {
		t.Fatalf("part 0 sent again: %d, want 200", status)
	}
	if err := tr.room.withSegment(key, func([]byte) error { return nil }); err != nil {
		t.Errorf("part 0 was not stored again: %v", err)
	}
	checkRoomState(t, tr.room, "after part 0 was stored again")
}
