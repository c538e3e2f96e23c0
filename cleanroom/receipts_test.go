package cleanroom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/policy"
)

// olderUpload is an upload's record as a room that kept its parts'
// receipts in it wrote it.
type olderUpload struct {
	ID          string                   `json:"id"`
	Collab      string                   `json:"collab"`
	Member      string                   `json:"member"`
	Kind        string                   `json:"kind"`
	Profile     string                   `json:"profile"`
	Columns     []string                 `json:"columns"`
	Rows        int64                    `json:"rows"`
	RowsPerPart int                      `json:"rows_per_part"`
	Parts       int                      `json:"parts"`
	Received    map[int]olderPartReceipt `json:"received"`
	Canary      [][]byte                 `json:"canary"`
	Committed   bool                     `json:"committed"`
	Started     time.Time                `json:"started"`
}

type olderPartReceipt struct {
	Rows   int    `json:"rows"`
	Digest string `json:"digest"`
	Bytes  int64  `json:"bytes"`
}

var olderUploads = store.Uploads[olderUpload]()

// writeAsRoom runs fn in an audit entry of the room's own.
func writeAsRoom(t testing.TB, r *Room, fn func(tx *store.Tx) error) {
	t.Helper()
	who := &actor{principalRecord: principalRecord{ID: "room", Role: policy.RoleOperator}, requestID: "test"}
	if err := r.commit(context.Background(), who, act{action: actionDataDelete}, policy.Decision{Allow: true}, nil, "", fn); err != nil {
		t.Fatal(err)
	}
}

// makeOlder rewrites upload id as an older room held it: its parts'
// receipts in its record, none of their own.
func makeOlder(t *testing.T, r *Room, id string) {
	t.Helper()
	writeAsRoom(t, r, func(tx *store.Tx) error {
		u, err := olderUploads.Get(tx.Txn, id)
		if err != nil {
			return err
		}
		u.Received = map[int]olderPartReceipt{}
		var parts []int
		err = store.ScanParts(tx.Txn, partReceipts, id, func(info *partInfo) error {
			u.Received[info.Part] = olderPartReceipt{Rows: info.Rows, Digest: info.Digest, Bytes: info.Bytes}
			parts = append(parts, info.Part)
			return nil
		})
		if err != nil {
			return err
		}
		for _, p := range parts {
			if err := partReceipts.Delete(tx, store.PartOf{Upload: id, Part: p}); err != nil {
				return err
			}
		}
		return olderUploads.Put(tx, id, u)
	})
}

func checkRoomState(t *testing.T, r *Room, when string) {
	t.Helper()
	if problems, err := r.checkState(); err != nil || len(problems) > 0 {
		t.Errorf("%s: the state check found %v, %v", when, problems, err)
	}
}

// TestOlderUploadRecord: an upload whose record holds its parts' receipts
// (as an older room wrote it) is viewed with them, keeps a part sent again
// unchanged without a receipt, gives every receipt a record of its own at
// the first part it stores, and commits with the digests of the parts it
// holds; its record is written with an empty map for such a room to read.
func TestOlderUploadRecord(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	tr.collab("c1", api.ModeHashed, nil, a, b)
	up := startRegionUpload(t, tr, 3000, 1000)
	var older *olderUpload
	if err := tr.room.db.View(func(txn *badger.Txn) (err error) { older, err = olderUploads.Get(tr.room.txn(txn), up.ID); return }); err != nil {
		t.Fatal(err)
	}
	if older.Received == nil {
		t.Error("a new upload's record has no received map for an older room to read")
	}
	send := func(p int, seed string) string {
		body := binaryPart(t, 1000, 1, make([]byte, 32), "west", distinctTokens(seed))
		sum := sha256.Sum256(body)
		resp, msg := rawRequestAs(t, tr, "alpha", "PUT", fmt.Sprintf("/v1/collaborations/c1/uploads/%s/parts/%d", up.ID, p), api.PartContentType, body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("part %d: %d %s", p, resp.StatusCode, msg)
		}
		return hex.EncodeToString(sum[:])
	}
	view := func() []int {
		resp, body := rawRequest(t, tr, "alpha", "GET", "/v1/collaborations/c1/uploads/"+up.ID, nil)
		var v api.Upload
		if resp.StatusCode != http.StatusOK || jsonUnmarshal(body, &v) != nil {
			t.Fatalf("the upload's view: %d %s", resp.StatusCode, body)
		}
		return v.Received
	}
	digests := []string{send(0, "0"), send(1, "1")}
	makeOlder(t, tr.room, up.ID)
	if n := countKeys(t, tr.room, store.PartsReceived(up.ID)...); n != 0 {
		t.Fatalf("%d keys of receipts left in the older record's upload", n)
	}
	checkRoomState(t, tr.room, "the older record")
	tr.restart()
	if got := view(); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("the older record's parts received: %v", got)
	}
	send(0, "0")
	if n := countKeys(t, tr.room, store.PartsReceived(up.ID)...); n != 0 {
		t.Errorf("part 0 sent again unchanged wrote %d keys of receipts", n)
	}
	digests[1] = send(1, "1 again")
	digests = append(digests, send(2, "2"))
	if _, d := sweepRaceDigest(t, tr, up.ID, 1); d != digests[1] {
		t.Errorf("part 1 replaced: its receipt names %.8s, want %.8s", d, digests[1])
	}
	if u, _ := sweepRaceDigest(t, tr, up.ID, 0); len(u.Received) != 0 {
		t.Errorf("the record still holds %d receipts after its first part stored", len(u.Received))
	}
	if n := countKeys(t, tr.room, store.PartsReceived(up.ID)...); n != 2*3 {
		t.Errorf("%d keys of receipts and marks for 3 parts, want 6", n)
	}
	if got := view(); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("parts received: %v", got)
	}
	stale, _ := jsonMarshal(api.CommitUpload{Digest: api.DatasetDigest([]string{digests[0], older.ID, digests[2]})})
	if resp, _ := rawRequest(t, tr, "alpha", "POST", "/v1/collaborations/c1/uploads/"+up.ID+"/commit", stale); resp.StatusCode == http.StatusOK {
		t.Error("a commit with another digest for part 1 was taken")
	}
	commit, _ := jsonMarshal(api.CommitUpload{Digest: api.DatasetDigest(digests)})
	if resp, body := rawRequest(t, tr, "alpha", "POST", "/v1/collaborations/c1/uploads/"+up.ID+"/commit", commit); resp.StatusCode != http.StatusOK {
		t.Fatalf("commit: %d %s", resp.StatusCode, body)
	}
	checkRoomState(t, tr.room, "after the commit")
	tr.restart()
	checkRoomState(t, tr.room, "after a restart")
}

// TestOlderUploadRecordDiscarded: an upload with receipts in its record
// and of their own is discarded whole.
func TestOlderUploadRecordDiscarded(t *testing.T) {
	tr, up, send := sweepRace(t)
	makeOlder(t, tr.room, up.ID)
	if status, _ := send(1, "1"); status != http.StatusOK {
		t.Fatalf("part 1: %d", status)
	}
	if resp, body := rawRequest(t, tr, "alpha", "DELETE", "/v1/collaborations/c1/uploads/"+up.ID, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("discard: %d %s", resp.StatusCode, body)
	}
	if n := countKeys(t, tr.room, openUploadSpans("c1", up.ID)...); n != 0 {
		t.Errorf("%d keys of the discarded upload left", n)
	}
	checkRoomState(t, tr.room, "after the discard")
}

// TestUploadDeletionStopsBetweenBatches: the deletion of an upload of many
// parts takes several transactions. A room that stops after any of them
// opens, every receipt with its high-water mark, and keeps the upload's
// record until its data is gone, so the upload is deleted again.
func TestUploadDeletionStopsBetweenBatches(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	tr.collab("c1", api.ModeHashed, nil, a, b)
	up := startRegionUpload(t, tr, 0, 1)
	r := tr.room
	const parts = 8
	for p := range parts {
		body := binaryPart(t, 1, 1, make([]byte, 32), "west", distinctTokens(fmt.Sprint(p)))
		resp, msg := rawRequestAs(t, tr, "alpha", "PUT", fmt.Sprintf("/v1/collaborations/c1/uploads/%s/parts/%d", up.ID, p), api.PartContentType, body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("part %d: %d %s", p, resp.StatusCode, msg)
		}
	}
	del, err := r.listDeletion("discarded-upload/"+up.ID, nil, openUploadSpans("c1", up.ID)...)
	if err != nil {
		t.Fatal(err)
	}
	batches := store.DeletionBatches(del.keys, 3, 1<<20)
	if len(batches) < parts {
		t.Fatalf("%d keys in %d batches", len(del.keys), len(batches))
	}
	recordBatch := slices.IndexFunc(batches, func(b [][]byte) bool {
		return slices.ContainsFunc(b, func(k []byte) bool { return string(k) == uploads.Key(up.ID) })
	})
	if recordBatch < len(batches)-2 {
		t.Errorf("the upload's record is deleted in batch %d of %d, before its data", recordBatch+1, len(batches))
	}
	for i, batch := range batches {
		if err := store.DeleteBatch(r.db, batch); err != nil {
			t.Fatal(err)
		}
		checkRoomState(t, r, fmt.Sprintf("after %d of %d batches", i+1, len(batches)))
		var left bool
		r.db.View(func(txn *badger.Txn) (err error) { left, err = uploads.Exists(r.txn(txn), up.ID); return })
		if gone := i >= recordBatch; left == gone {
			t.Errorf("after %d of %d batches, the upload's record left: %v", i+1, len(batches), left)
		}
		if i == len(batches)/2 {
			tr.restart() // Open checks the state as checkRoomState does
			r = tr.room
		}
	}
}

// TestUploadDeletionStoppedAfterReceipts: a deletion that stopped once it
// had deleted a receipt, but not its part, leaves a part the member sends
// again and an upload it commits.
func TestUploadDeletionStoppedAfterReceipts(t *testing.T) {
	tr, up, send := sweepRace(t)
	_, d0 := sweepRaceDigest(t, tr, up.ID, 0)
	status, d1 := send(1, "1")
	if status != http.StatusOK {
		t.Fatalf("part 1: %d", status)
	}
	del, err := tr.room.listDeletion("discarded-upload/"+up.ID, nil, openUploadSpans("c1", up.ID)...)
	if err != nil {
		t.Fatal(err)
	}
	first := store.DeletionBatches(del.keys, 2, 1<<20)[0]
	if err := store.DeleteBatch(tr.room.db, first); err != nil {
		t.Fatal(err)
	}
	tr.restart()
	resp, body := rawRequest(t, tr, "alpha", "GET", "/v1/collaborations/c1/uploads/"+up.ID, nil)
	var v api.Upload
	if resp.StatusCode != http.StatusOK || jsonUnmarshal(body, &v) != nil || !slices.Equal(v.Received, []int{1}) {
		t.Errorf("the upload's view after its first receipt went: %d %s", resp.StatusCode, body)
	}
	if status, again := send(0, "0"); status != http.StatusOK || again != d0 {
		t.Errorf("part 0 sent again: %d", status)
	}
	commit, _ := jsonMarshal(api.CommitUpload{Digest: api.DatasetDigest([]string{d0, d1})})
	if resp, body := rawRequest(t, tr, "alpha", "POST", "/v1/collaborations/c1/uploads/"+up.ID+"/commit", commit); resp.StatusCode != http.StatusOK {
		t.Errorf("commit: %d %s", resp.StatusCode, body)
	}
}

// TestReplacedUploadDataLeftByStop: a room that stopped after a newer
// upload's commit, before it deleted the data of the upload it replaced,
// deletes that data when it opens again.
func TestReplacedUploadDataLeftByStop(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	tr.collab("c1", api.ModeHashed, nil, a, b)
	commitOne := func(seed string) string {
		up := startRegionUpload(t, tr, 2000, 1000)
		var digests []string
		for p := range 2 {
			body := binaryPart(t, 1000, 1, make([]byte, 32), "west", distinctTokens(seed+fmt.Sprint(p)))
			sum := sha256.Sum256(body)
			resp, msg := rawRequestAs(t, tr, "alpha", "PUT", fmt.Sprintf("/v1/collaborations/c1/uploads/%s/parts/%d", up.ID, p), api.PartContentType, body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("part %d: %d %s", p, resp.StatusCode, msg)
			}
			digests = append(digests, hex.EncodeToString(sum[:]))
		}
		body, _ := jsonMarshal(api.CommitUpload{Digest: api.DatasetDigest(digests)})
		rawRequest(t, tr, "alpha", "POST", "/v1/collaborations/c1/uploads/"+up.ID+"/commit", body)
		return up.ID
	}
	first := commitOne("a")
	// The room stops where the deletion of what the commit replaced
	// begins (the handler's panic aborts the request, not the room).
	stop := func(name string) {
		if name == "replaced-dataset/alpha" {
			panic(http.ErrAbortHandler)
		}
	}
	tr.room.beforeDelete.Store(&stop)
	second := commitOne("b")
	if c, err := tr.room.collab("c1"); err != nil || c.Datasets["alpha"].Upload != second {
		t.Fatalf("the second upload is not alpha's dataset (%v)", err)
	}
	if n := countKeys(t, tr.room, store.UploadData(first)...); n == 0 {
		t.Fatal("the replaced upload's data went before the stop")
	}
	tr.room.beforeDelete.Store(nil)
	tr.restart()
	if n := countKeys(t, tr.room, store.UploadData(first)...); n != 0 {
		t.Errorf("%d keys of the replaced upload's data left after the room opened again", n)
	}
	if n := countKeys(t, tr.room, store.UploadData(second)...); n != 4+2 {
		t.Errorf("alpha's dataset has %d keys, want 6 (2 parts, 2 receipts and their marks)", n)
	}
	checkRoomState(t, tr.room, "after the sweep")
}

// TestOlderUploadRecordStoppedDeletion: a part of an older record's upload
// sent again with other bytes, then a deletion stopped once it took that
// part's receipt: the record holds no older receipt to stand for the part,
// and the upload cannot be committed with the digest of the bytes gone.
func TestOlderUploadRecordStoppedDeletion(t *testing.T) {
	tr, up, send := sweepRace(t)
	_, old0 := sweepRaceDigest(t, tr, up.ID, 0)
	makeOlder(t, tr.room, up.ID)
	status, new0 := send(0, "replacement")
	if status != http.StatusOK || new0 == old0 {
		t.Fatalf("part 0 sent again: %d", status)
	}
	del, err := tr.room.listDeletion("discarded-upload/"+up.ID, nil, openUploadSpans("c1", up.ID)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteBatch(tr.room.db, store.DeletionBatches(del.keys, 2, 1<<20)[0]); err != nil {
		t.Fatal(err)
	}
	tr.restart()
	if _, d := sweepRaceDigest(t, tr, up.ID, 0); d != "" {
		t.Errorf("part 0's receipt gone, the room still reads one: %.12s (old %.12s, new %.12s)", d, old0, new0)
	}
	status, d1 := send(1, "1")
	if status != http.StatusOK {
		t.Fatalf("part 1: %d", status)
	}
	body, _ := jsonMarshal(api.CommitUpload{Digest: api.DatasetDigest([]string{old0, d1})})
	if resp, _ := rawRequest(t, tr, "alpha", "POST", "/v1/collaborations/c1/uploads/"+up.ID+"/commit", body); resp.StatusCode == http.StatusOK {
		t.Error("committed with the digest of part 0's replaced bytes")
	}
}

// TestOlderUploadRecordOfManyReceipts: an older record holding more
// receipts than one transaction takes gives them records of their own a
// bounded number at a time, over the parts it receives, and reads them all
// meanwhile.
func TestOlderUploadRecordOfManyReceipts(t *testing.T) {
	const parts = 40_000
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	tr.collab("c1", api.ModeHashed, nil, a, b)
	up := startRegionUpload(t, tr, parts, 1)
	writeAsRoom(t, tr.room, func(tx *store.Tx) error {
		u, err := olderUploads.Get(tx.Txn, up.ID)
		if err != nil {
			return err
		}
		u.Received = map[int]olderPartReceipt{}
		for p := 2; p < parts; p++ {
			u.Received[p] = olderPartReceipt{Rows: 1, Digest: fmt.Sprintf("%064x", p), Bytes: 60}
		}
		return olderUploads.Put(tx, up.ID, u)
	})
	tr.restart()
	counts := func() (inRecord, all int) {
		t.Helper()
		err := tr.room.db.View(func(txn *badger.Txn) error {
			u, err := loadUpload(tr.room.txn(txn), "c1", up.ID)
			if err != nil {
				return err
			}
			got, err := received(tr.room.txn(txn), u)
			inRecord, all = len(u.Received), len(got)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return inRecord, all
	}
	for p := range 2 {
		body := binaryPart(t, 1, 1, make([]byte, 32), "west", distinctTokens(fmt.Sprint(p)))
		resp, msg := rawRequestAs(t, tr, "alpha", "PUT", fmt.Sprintf("/v1/collaborations/c1/uploads/%s/parts/%d", up.ID, p), api.PartContentType, body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("part %d: %d %s", p, resp.StatusCode, msg)
		}
		inRecord, all := counts()
		if want := parts - 2 - (p+1)*maxMovedReceipts; inRecord != want || all != parts-1+p {
			t.Errorf("after part %d: %d receipts in the record (want %d), %d in all (want %d)", p, inRecord, want, all, parts-1+p)
		}
	}
	checkRoomState(t, tr.room, "after two parts")
}
