package cleanroom

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// TestSweepRemovesPartReplacedMeanwhile: a part of an abandoned upload is
// sent again, with other bytes, after the sweep read the upload's keys and
// before it deleted them. The part's key then names a new file, which the
// batch deletes the key of without removing it: no round finds it again
// (its key is gone), so the file stays until the room opens again.
func TestSweepRemovesPartReplacedMeanwhile(t *testing.T) {
	tr, up, _ := sweepRace(t)
	ctx := context.Background()
	key := store.Segments(up.ID).Key(0)
	value := func() []byte {
		var v []byte
		if err := tr.room.db.View(func(txn *badger.Txn) error {
			it, err := txn.Get(key)
			if err != nil {
				return err
			}
			v, err = it.ValueCopy(nil)
			return err
		}); err != nil {
			return nil
		}
		return v
	}
	first := value()
	status := make(chan int, 1)
	started := false
	hook := func(string) {
		if started {
			return
		}
		started = true
		body := binaryPart(t, 1000, 1, make([]byte, 32), "west", distinctTokens("replacement"))
		// The PUT, once committed, waits for the member's gate (which the
		// sweep holds) to remove the file it replaced: it answers after the
		// sweep, so it is sent aside and the hook waits for its commit.
		go func() {
			resp, _ := rawRequestAs(t, tr, "alpha", "PUT", fmt.Sprintf("/v1/collaborations/c1/uploads/%s/parts/0", up.ID), api.PartContentType, body)
			status <- resp.StatusCode
		}()
		for deadline := time.Now().Add(10 * time.Second); bytes.Equal(value(), first); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Error("the part sent again never committed")
				return
			}
		}
	}
	tr.room.beforeDelete.Store(&hook)
	defer tr.room.beforeDelete.Store(nil)
	if err := tr.room.sweepUpload(ctx, "c1", "alpha", up.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if s := <-status; s != http.StatusOK {
		t.Fatalf("the part sent again during the sweep was answered %d; the race this test is about did not happen", s)
	}
	if n := countKeys(t, tr.room, append(store.UploadData(up.ID), uploads.Span(up.ID)...)...); n != 0 {
		t.Errorf("%d keys of the swept upload left", n)
	}
	if n := segmentFiles(t, tr); n != 0 {
		t.Errorf("%d segment files left after the only upload was swept (no key names them)", n)
	}
}
