package cleanroom

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestDiscardUpload: a member discards its upload in progress while a part
// of it is in flight. Its analyst may not, and another member does not see
// it; the member's own request deletes the parts, the part that committed
// after the keys were read (in a second round, the room's), the record and
// the index key, with their files. The member's entry is in the
// collaboration's part of the log, and the upload is gone for every later
// request.
func TestDiscardUpload(t *testing.T) {
	tr, up, send := sweepRace(t)
	tr.partner("alpha-ana", policy.RoleAnalyst, "alpha")
	path := "/v1/collaborations/c1/uploads/" + up.ID
	spans := append(store.UploadData(up.ID), uploads.Span(up.ID)...)
	spans = append(spans, store.CollabUploadSpan("c1", up.ID))
	keys := countKeys(t, tr.room, spans...)
	for who, want := range map[string]int{"alpha-ana": http.StatusForbidden, "bravo": http.StatusNotFound} {
		if resp, body := rawRequest(t, tr, who, "DELETE", path, nil); resp.StatusCode != want {
			t.Errorf("%s discards alpha's upload: %d %s, want %d", who, resp.StatusCode, body, want)
		}
	}
	if n := countKeys(t, tr.room, spans...); n != keys {
		t.Fatalf("%d keys of the upload left after refused discards, want %d", n, keys)
	}

	// Part 1 is sent once the discard has read the upload's keys, and
	// commits before they are deleted.
	sent := make(chan int, 1)
	started := false
	hook := func(string) {
		if started {
			return
		}
		started = true
		go func() { s, _ := send(1, "1"); sent <- s }()
		for deadline := time.Now().Add(10 * time.Second); countKeys(t, tr.room, store.Segments(up.ID).Span()) < 2; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Error("the part sent during the discard never committed")
				return
			}
		}
	}
	tr.room.beforeDelete.Store(&hook)
	resp, body := rawRequest(t, tr, "alpha", "DELETE", path, nil)
	tr.room.beforeDelete.Store(nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("alpha discards its upload: %d %s", resp.StatusCode, body)
	}
	if s := <-sent; s != http.StatusOK {
		t.Fatalf("the part sent during the discard was answered %d; the race this test is about did not happen", s)
	}
	if n := countKeys(t, tr.room, spans...); n != 0 {
		t.Errorf("%d keys of the discarded upload left", n)
	}
	if n := segmentFiles(t, tr); n != 0 {
		t.Errorf("%d segment files left after the only upload was discarded", n)
	}

	var mine, rooms int
	for _, e := range loggedEntries(t, tr.room) {
		if len(e.Data) != 1 || e.Data[0].Name != "discarded-upload/"+up.ID {
			continue
		}
		switch {
		case e.Collaboration != "c1":
			t.Errorf("the discard's entry %s by %s is not in the collaboration's part of the log", e.Action, e.Principal)
		case e.Action == string(policy.ActionDatasetDiscard) && e.Principal == "alpha" && e.Decision.Allow:
			mine++
		case e.Action == string(actionDataDelete) && e.Principal == "room":
			rooms++
		default:
			t.Errorf("an entry of the discard: %s by %s", e.Action, e.Principal)
		}
	}
	if mine != 1 || rooms != 1 {
		t.Errorf("%d entries of alpha's discard and %d of the room's second round, want 1 and 1", mine, rooms)
	}

	for _, r := range []struct{ method, path string }{
		{"DELETE", path}, {"GET", path}, {"POST", path + "/commit"},
	} {
		if resp, body := rawRequest(t, tr, "alpha", r.method, r.path, []byte(`{"digest":"`+up.ID+`"}`)); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s of the discarded upload: %d %s, want 404", r.method, resp.StatusCode, body)
		}
	}
	if status, _ := send(0, "0"); status != http.StatusNotFound {
		t.Errorf("a part of the discarded upload: %d, want 404", status)
	}
}

// TestEmptyUploadDiscarded: a list none of whose rows has a valid
// identifier is refused by the client once it has read it, and the upload
// it had opened in the room is deleted rather than left for the week's
// sweep.
func TestEmptyUploadDiscarded(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	states := tr.collab("c1", api.ModeHashed, nil, a, b)
	var rows strings.Builder
	rows.WriteString("email,age_band,spend\n")
	for i := range 1500 {
		fmt.Fprintf(&rows, "not-an-email-%d,18-24,%d\n", i, i)
	}
	path := filepath.Join(t.TempDir(), "list.csv")
	if err := os.WriteFile(path, []byte(rows.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.UploadCSV(context.Background(), uploadSpec("c1", path, states["alpha"])); !errors.Is(err, client.ErrEmptyInput) {
		t.Fatalf("UploadCSV of a list without a valid identifier: %v", err)
	}
	var open []string
	err := tr.room.db.View(func(txn *badger.Txn) (err error) { open, err = store.UploadsOf(txn, "c1"); return })
	if err != nil || len(open) != 0 {
		t.Errorf("uploads left open in the room: %v (%v)", open, err)
	}
	if n := segmentFiles(t, tr); n != 0 {
		t.Errorf("%d segment files left", n)
	}
}
