package cleanroom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// proxied is a client of alpha's that reaches the room through a proxy
// which lets handle answer every request (room forwards it).
func proxied(t *testing.T, tr *testRoom, handle func(w http.ResponseWriter, r *http.Request, room http.Handler)) *client.Client {
	t.Helper()
	u, _ := url.Parse(tr.url)
	room := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handle(w, r, room) }))
	t.Cleanup(srv.Close)
	c, err := client.New(context.Background(), srv.URL, tr.keys["alpha"], client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// onDelete is a proxy's handler that answers DELETE requests with del.
func onDelete(del func(w http.ResponseWriter, r *http.Request, room http.Handler)) func(http.ResponseWriter, *http.Request, http.Handler) {
	return func(w http.ResponseWriter, r *http.Request, room http.Handler) {
		if r.Method == http.MethodDelete {
			del(w, r, room)
			return
		}
		room.ServeHTTP(w, r)
	}
}

// TestDiscardSavedConfirmsRefusals: the client believes a refusal of a
// discard only once the room's upload agrees with it. A room without the
// route (its catch-all answers 404) leaves the progress saved and says
// so; a room that answers 409 for an upload it holds open does not make
// the client record that upload as its committed list.
func TestDiscardSavedConfirmsRefusals(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	state := tr.collab("c1", api.ModeHashed, nil, a, b)["alpha"]
	ctx := context.Background()
	if _, err := a.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(0, 2000)), state)); err != nil {
		t.Fatal(err)
	}
	committedFile := filepath.Join(string(state), tr.op.Room().ID, "c1.uploaded.json")
	committed, _ := os.ReadFile(committedFile)
	up := startRegionUpload(t, tr, 2000, 1000)
	saved := filepath.Join(string(state), tr.op.Room().ID, "c1.upload.json")
	for _, tc := range []struct {
		name string
		del  func(w http.ResponseWriter, r *http.Request, room http.Handler)
	}{
		{"a room without the route", func(w http.ResponseWriter, r *http.Request, room http.Handler) {
			r.URL.Path, r.URL.RawPath = "/v1/no-such-endpoint", ""
			room.ServeHTTP(w, r)
		}},
		{"a room that answers 409", func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusConflict)
			fmt.Fprintf(w, `{"type":%q,"title":"the upload is committed","status":409}`, api.ProblemConflict)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(saved, []byte(`{"upload":"`+up.ID+`","input":"crc32c:00000000:1","digests":{}}`), 0o600)
			id, err := proxied(t, tr, onDelete(tc.del)).DiscardSaved(ctx, state, "c1")
			if err == nil || id != "" {
				t.Errorf("DiscardSaved = %q, %v, with the upload still open in the room", id, err)
			}
			if _, serr := os.Stat(saved); serr != nil {
				t.Errorf("the progress of the upload still open is gone: %v", serr)
			}
			if now, _ := os.ReadFile(committedFile); !bytes.Equal(now, committed) {
				t.Errorf("the record of the committed list became %s", now)
			}
		})
	}
	if n := countKeys(t, tr.room, openUploadSpans("c1", up.ID)...); n == 0 {
		t.Error("the upload is gone from the room")
	}
}

// TestStartingOverRecordsCommitted: a run committed its list and stopped
// before it heard so; the next run, of another file, asks the room to
// discard that upload, and the room refuses: it is the member's list. The
// client records it as committed, so that an audience can be mapped back
// to it even if this run never commits. If the room does not say (its
// answer to the read that confirms the refusal fails), the run stops with
// the progress kept, and the next run records it.
func TestStartingOverRecordsCommitted(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	state := tr.collab("c1", api.ModeHashed, nil, a, b)["alpha"]
	ctx := context.Background()
	committedFile := filepath.Join(string(state), tr.op.Room().ID, "c1.uploaded.json")
	savedFile := filepath.Join(string(state), tr.op.Room().ID, "c1.upload.json")
	if _, err := a.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(0, 2000)), state)); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(committedFile)
	if _, err := a.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(1000, 3000)), state)); err != nil {
		t.Fatal(err)
	}
	var second struct{ Upload, Input string }
	b2, _ := os.ReadFile(committedFile)
	if err := json.Unmarshal(b2, &second); err != nil {
		t.Fatal(err)
	}
	// As the second run would have left it, stopped before it heard.
	os.WriteFile(committedFile, first, 0o600)
	progress, _ := json.Marshal(map[string]any{"upload": second.Upload, "input": second.Input, "id_column": "email", "kind": "email",
		"columns": []string{"age_band", "spend"}, "rows_per_part": 500, "digests": map[int]string{}})
	os.WriteFile(savedFile, progress, 0o600)

	var rows strings.Builder
	rows.WriteString("email,age_band,spend\n")
	for i := range 1500 {
		fmt.Fprintf(&rows, "not-an-email-%d,18-24,1\n", i)
	}
	empty := filepath.Join(t.TempDir(), "empty.csv")
	os.WriteFile(empty, []byte(rows.String()), 0o600)

	// The read that would confirm the refusal fails once.
	failed := false
	flaky := proxied(t, tr, func(w http.ResponseWriter, r *http.Request, room http.Handler) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/uploads/"+second.Upload) && !failed {
			failed = true
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, `{"type":%q,"title":"the gateway failed","status":502}`, api.ProblemUnavailable)
			return
		}
		room.ServeHTTP(w, r)
	})
	if _, err := flaky.UploadCSV(ctx, uploadSpec("c1", empty, state)); err == nil || errors.Is(err, client.ErrEmptyInput) || !failed {
		t.Fatalf("a run whose room did not say what became of the earlier upload: %v", err)
	}
	if saved, _ := os.ReadFile(savedFile); !bytes.Equal(saved, progress) {
		t.Errorf("the saved progress became %s", saved)
	}
	if now, _ := os.ReadFile(committedFile); !bytes.Equal(now, first) {
		t.Errorf("the record of the committed list became %s", now)
	}

	if _, err := a.UploadCSV(ctx, uploadSpec("c1", empty, state)); !errors.Is(err, client.ErrEmptyInput) {
		t.Fatalf("the next run: %v", err)
	}
	var recorded struct{ Upload string }
	b3, _ := os.ReadFile(committedFile)
	json.Unmarshal(b3, &recorded)
	if c, err := tr.room.collab("c1"); err != nil || recorded.Upload != c.Datasets["alpha"].Upload || recorded.Upload != second.Upload {
		t.Errorf("the state directory records upload %s as committed; the room's list is %s (%v)", recorded.Upload, c.Datasets["alpha"].Upload, err)
	}
}

// TestDiscardWithPartsInFlight: a member discards uploads while ten parts
// of each are in flight. The discard's deletion, outside the audit log's
// group commit, conflicts with parts staged there: those batches are
// staged again, so each part is stored (and then deleted) or refused as
// not found, never failed with the requests that shared its batch, and no
// part's file outlives its upload.
func TestDiscardWithPartsInFlight(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	tr.collab("c1", api.ModeHashed, nil, a, b)
	const rows, trials = 2000, 40
	answers := map[int]int{}
	var mu sync.Mutex
	for i := range trials {
		up := startRegionUpload(t, tr, 0, rows)
		put := func(p int) {
			body := binaryPart(t, rows, 1, make([]byte, 32), "west", distinctTokens(fmt.Sprint(i, "/", p)))
			resp, _ := rawRequestAs(t, tr, "alpha", "PUT", fmt.Sprintf("/v1/collaborations/c1/uploads/%s/parts/%d", up.ID, p), api.PartContentType, body)
			mu.Lock()
			answers[resp.StatusCode]++
			mu.Unlock()
		}
		put(0)
		var wg sync.WaitGroup
		for p := 1; p <= 10; p++ {
			wg.Go(func() { put(p) })
		}
		time.Sleep(time.Duration(i%7) * time.Millisecond)
		if resp, body := rawRequest(t, tr, "alpha", "DELETE", "/v1/collaborations/c1/uploads/"+up.ID, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("discard %d: %d %s", i, resp.StatusCode, body)
		}
		wg.Wait()
		if n := countKeys(t, tr.room, openUploadSpans("c1", up.ID)...); n != 0 {
			t.Errorf("discard %d: %d keys of the upload left", i, n)
		}
	}
	t.Logf("parts answered, by status: %v", answers)
	if len(answers) > 2 || answers[http.StatusOK]+answers[http.StatusNotFound] != trials*11 {
		t.Errorf("parts answered %v: want only 200 (stored, then deleted) and 404 (after the discard)", answers)
	}
	if n := segmentFiles(t, tr); n != 0 {
		t.Errorf("%d segment files of discarded uploads left while the room runs", n)
	}
}

// TestPartReceipts: each part's receipt is a record of its own, written in
// the part's entry; the upload's record holds none (it would grow with each
// part, and every part would rewrite all of them), only the entry of the
// latest part stored. The upload's view lists every part received, and a
// discard deletes the receipts with their high-water marks.
func TestPartReceipts(t *testing.T) {
	tr, up, send := sweepRace(t)
	record := func() *uploadRecord {
		u, _ := sweepRaceDigest(t, tr, up.ID, 0)
		if len(u.Received) != 0 {
			t.Errorf("the upload's record holds %d receipts", len(u.Received))
		}
		return u
	}
	before := record().PartsChanged
	if status, _ := send(1, "1"); status != http.StatusOK {
		t.Fatalf("part 1: %d", status)
	}
	after1 := record().PartsChanged
	if status, _ := send(0, "again"); status != http.StatusOK {
		t.Fatalf("part 0 sent again: %d", status)
	}
	if after0 := record().PartsChanged; before <= 0 || after1 <= before || after0 <= after1 {
		t.Errorf("the entries of the latest part stored: %d, %d, %d", before, after1, after0)
	}
	receipts := store.PartsReceived(up.ID)
	if n := countKeys(t, tr.room, receipts...); n != 4 {
		t.Errorf("%d keys of receipts and their marks for 2 parts, want 4", n)
	}
	resp, body := rawRequest(t, tr, "alpha", "GET", "/v1/collaborations/c1/uploads/"+up.ID, nil)
	var v api.Upload
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &v) != nil || !slices.Equal(v.Received, []int{0, 1}) {
		t.Errorf("the upload's view: %d %s", resp.StatusCode, body)
	}
	if _, d := sweepRaceDigest(t, tr, up.ID, 0); d == "" {
		t.Error("part 0 has no receipt")
	}
	if resp, body := rawRequest(t, tr, "alpha", "DELETE", "/v1/collaborations/c1/uploads/"+up.ID, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("discard: %d %s", resp.StatusCode, body)
	}
	if n := countKeys(t, tr.room, receipts...); n != 0 {
		t.Errorf("%d keys of receipts left after the discard", n)
	}
}
