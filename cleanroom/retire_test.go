package cleanroom

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/policy"
)

// retiredEntries returns the data.delete entries that name the retirement
// of collab, and how many of them are in collab's part of the log.
func retiredEntries(t *testing.T, r *Room, collab string) (n, scoped int) {
	t.Helper()
	for _, e := range loggedEntries(t, r) {
		for _, d := range e.Data {
			if e.Action == string(actionDataDelete) && d.Name == "retired-collaboration/"+collab {
				n++
				if e.Collaboration == collab {
					scoped++
				}
			}
		}
	}
	return n, scoped
}

// namedFiles returns the names of the segment files the spans' keys name.
func namedFiles(t *testing.T, r *Room, spans ...store.Span) []string {
	t.Helper()
	var names []string
	err := r.db.View(func(txn *badger.Txn) error {
		keys, err := store.Keys(txn, spans...)
		if err != nil {
			return err
		}
		refs, err := r.files.Named(txn, keys)
		for _, ref := range refs {
			// A reference ends in the file's name: 32 hex digits and ".seg".
			names = append(names, string(ref[len(ref)-36:]))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestRevokeDeletesData: a revocation deletes every member's uploads with
// their layers, the join tables, the audiences and the decoded columns of
// its collaboration, with their files, in one audit entry its members'
// auditors see; another collaboration of the same members keeps all of
// its data, and the records stay readable. Reopening the room records
// nothing more.
func TestRevokeDeletesData(t *testing.T) {
	settings := map[string]any{"noise_off": true, "allowed_dimensions": []string{"alpha.age_band"}, "activation": map[string]any{"members": []string{"alpha"}, "max_per_day": 5}}
	tr, a, b, _ := readyPair(t, api.ModeBlinded, settings)
	ctx := context.Background()
	other := tr.collab("c2", api.ModeHashed, nil, a, b)
	for i, p := range []*client.Client{a, b} {
		if _, err := p.UploadCSV(ctx, uploadSpec("c2", writeList(t, span(i*500, i*500+1500)), other[p.Principal()])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{"alpha.age_band"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Activate(ctx, "c1", api.SegmentSpec{Version: api.SegmentVersion}); err != nil {
		t.Fatal(err)
	}
	r := tr.room
	c1, _ := r.collab("c1")
	open := startUpload(t, tr, api.StartUpload{Kind: "email", Profile: "pair-v1", Columns: []string{}, Rows: 1000, RowsPerPart: 1000, Canary: c1.Datasets["alpha"].Canary})
	c2, _ := r.collab("c2")
	spans, ups, err := r.collabData(c1)
	if err != nil {
		t.Fatal(err)
	}
	otherSpans, _, err := r.collabData(c2)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string][]store.Span{
		"uploads": append(store.UploadData(c1.Datasets["alpha"].Upload), store.UploadData(c1.Datasets["bravo"].Upload)...),
		"layers":  {store.Layer(c1.Datasets["alpha"].Upload, 2).Span()},
		"joins":   {store.Joins("c1")}, "audiences": {store.Audiences("c1")},
	} {
		if countKeys(t, r, s...) == 0 {
			t.Fatalf("the scene has no %s to delete", name)
		}
	}
	files := namedFiles(t, r, spans...)
	otherKeys, otherFiles := countKeys(t, r, otherSpans...), namedFiles(t, r, otherSpans...)
	if len(files) == 0 || len(otherFiles) == 0 {
		t.Fatalf("no segment files: %d in c1, %d in c2", len(files), len(otherFiles))
	}
	if !cachedUnder(r, "c1", ups) {
		t.Fatal("the query decoded no column of c1 into the cache")
	}

	if err := b.Revoke(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, r, spans...); n != 0 {
		t.Errorf("%d keys of the revoked collaboration's data left", n)
	}
	dir := tr.dir.Segments()
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("segment file %s of the revoked collaboration is still on disk (%v)", f, err)
		}
	}
	if cachedUnder(r, "c1", ups) {
		t.Error("columns decoded from the revoked collaboration's data are still in memory")
	}
	if n := countKeys(t, r, otherSpans...); n != otherKeys {
		t.Errorf("the other collaboration has %d keys of data, not %d", n, otherKeys)
	}
	for _, f := range otherFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("a segment file of the other collaboration went: %v", err)
		}
	}
	// The record of the upload never committed goes too; the committed
	// ones' stay.
	if n := countKeys(t, r, append(uploads.Span(open.ID), store.CollabUploadSpan("c1", open.ID))...); n != 0 {
		t.Errorf("the revoked collaboration's open upload kept %d keys of its record", n)
	}
	if countKeys(t, r, uploads.Span(c1.Datasets["alpha"].Upload)...) == 0 {
		t.Error("a committed upload's record was deleted")
	}
	if _, err := a.Match(ctx, "c2"); err != nil {
		t.Errorf("the other collaboration no longer matches: %v", err)
	}
	if n, scoped := retiredEntries(t, r, "c1"); n != 1 || scoped != 1 {
		t.Errorf("%d entries record the deletion (%d in the collaboration's part of the log), want 1", n, scoped)
	}
	v, err := a.Collaboration(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if v.DataDeletedAt == nil || !v.Revoked || v.Datasets["alpha"] == nil || v.Datasets["alpha"].Rows == 0 {
		t.Errorf("the revoked collaboration's view: deleted at %v, revoked %v, datasets %v", v.DataDeletedAt, v.Revoked, v.Datasets)
	}
	if _, err := a.BudgetHistory(ctx, "c1"); err != nil {
		t.Errorf("the budget ledger after the deletion: %v", err)
	}

	tr.restart()
	if n, _ := retiredEntries(t, tr.room, "c1"); n != 1 {
		t.Errorf("%d deletion entries after reopening, want 1", n)
	}
}

// cachedUnder reports whether the room's column cache holds anything made
// from the uploads' data or a join of collab.
func cachedUnder(r *Room, collab string, ups []string) bool {
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	for key := range r.cache.items {
		if strings.Contains(key, "join/"+collab+"/") {
			return true
		}
		for _, u := range ups {
			if strings.Contains(key, u) {
				return true
			}
		}
	}
	return false
}

// expiringPair is a room on a clock the returned offset moves, with
// collaboration c1 of alpha and bravo expiring an hour after it was made,
// and alpha's list uploaded.
func expiringPair(t *testing.T) (*testRoom, *atomic.Int64, *client.Client, *client.Client, map[string]client.StateDir) {
	offset := new(atomic.Int64)
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	tr := startRoomAt(t, now, nil)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	states := tr.collab("c1", api.ModeHashed, map[string]any{"expires_in_hours": 1}, a, b)
	if _, err := a.UploadCSV(context.Background(), uploadSpec("c1", writeList(t, span(0, 1500)), states["alpha"])); err != nil {
		t.Fatal(err)
	}
	return tr, offset, a, b, states
}

// TestExpiryDeletesData: an expired collaboration's data goes at the next
// sweep, recorded once; a key written after its deletion was recorded (a
// writer the expiry overtook, or a stop between the entry and the
// deletion) goes at the sweep after, in an entry of its own, and a sweep
// that finds nothing records nothing.
func TestExpiryDeletesData(t *testing.T) {
	ctx := context.Background()
	tr, offset, a, b, states := expiringPair(t)
	if _, err := b.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(500, 2000)), states["bravo"])); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	r := tr.room
	c, _ := r.collab("c1")
	spans, _, err := r.collabData(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.sweepRetired(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := retiredEntries(t, r, "c1"); n != 0 || countKeys(t, r, spans...) == 0 {
		t.Fatalf("a collaboration not yet expired was retired (%d entries)", n)
	}

	offset.Store(int64(2 * time.Hour))
	if err := r.sweepRetired(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, r, spans...); n != 0 {
		t.Errorf("%d keys of the expired collaboration's data left", n)
	}
	if n, scoped := retiredEntries(t, r, "c1"); n != 1 || scoped != 1 {
		t.Errorf("%d entries record the deletion (%d scoped), want 1", n, scoped)
	}
	if err := r.sweepRetired(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := retiredEntries(t, r, "c1"); n != 1 {
		t.Errorf("a sweep that found nothing recorded a deletion: %d entries", n)
	}

	// A straggler: a join part written after the deletion.
	err = r.db.Update(func(txn *badger.Txn) error {
		return store.PutSegment(txn, store.Join("c1", 9).Key(0), []byte("late"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.sweepRetired(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, r, store.Joins("c1")); n != 0 {
		t.Errorf("%d join keys written after the deletion left", n)
	}
	if n, _ := retiredEntries(t, r, "c1"); n != 2 {
		t.Errorf("%d deletion entries, want 2 (the straggler's recorded)", n)
	}
}

// TestRetiredTasksData: a relay task open when a member revokes goes with
// the collaboration's data, and what an answer in flight writes for it
// afterwards goes at the next sweep; the sweep records all retirements
// before it deletes any, and a room from before the uploads' index gets
// the index when it opens.
func TestRetiredTasksData(t *testing.T) {
	tr := startRoom(t)
	ctx := context.Background()
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	c := tr.partner("charlie", policy.RolePartner, "")
	states := tr.collab("c1", api.ModeBlinded, nil, a, b, c)
	if _, err := a.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(0, 1500)), states["alpha"])); err != nil {
		t.Fatal(err)
	}
	r := tr.room
	before, _ := r.collab("c1")
	if len(before.Tasks) != 1 {
		t.Fatalf("%d relay tasks open, want 1", len(before.Tasks))
	}
	var task string
	for id := range before.Tasks {
		task = id
	}
	if countKeys(t, r, store.TaskData(task)...) == 0 {
		t.Fatal("the open task has no parts")
	}
	if err := c.Revoke(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	after, _ := r.collab("c1")
	if len(after.Tasks) != 0 || !slices.Contains(after.RetiredTasks, task) {
		t.Errorf("tasks %v, retired %v", after.Tasks, after.RetiredTasks)
	}
	if n := countKeys(t, r, store.TaskData(task)...); n != 0 {
		t.Errorf("%d keys of the open task left", n)
	}
	// What an answer in flight stores after the deletion read the keys.
	if err := r.db.Update(func(txn *badger.Txn) error {
		return store.PutSegment(txn, store.TaskCanaries(task).Key(0), []byte("late"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.sweepRetired(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, r, store.TaskData(task)...); n != 0 {
		t.Errorf("%d keys an answer wrote for the retired task left after a sweep", n)
	}

	// Two collaborations retired in one sweep: both recorded before
	// either's data goes.
	for _, id := range []string{"d1", "d2"} {
		st := tr.collab(id, api.ModeHashed, nil, a, b)
		if _, err := a.UploadCSV(ctx, uploadSpec(id, writeList(t, span(0, 1500)), st["alpha"])); err != nil {
			t.Fatal(err)
		}
		if err := r.changeCollab(ctx, &actor{principalRecord: principalRecord{ID: "bravo", Role: policy.RolePartner}, requestID: "t"}, id, policy.ActionCollaborationRevoke, func(c *collabRecord) error {
			c.Revoked, c.RevokedBy = true, "bravo"
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	d1, _ := r.collab("d1")
	spans1, _, _ := r.collabData(d1)
	var keysAtSecond int
	hook := func(name string) {
		if name == retiredName("d2") {
			keysAtSecond = countKeys(t, r, spans1...)
		}
	}
	r.beforeDelete.Store(&hook)
	err := r.sweepRetired(ctx)
	r.beforeDelete.Store(nil)
	if err != nil {
		t.Fatal(err)
	}
	if keysAtSecond == 0 || countKeys(t, r, spans1...) != 0 {
		t.Errorf("d1 held %d keys when d2's deletion was recorded (want them all, deleted after), %d after", keysAtSecond, countKeys(t, r, spans1...))
	}

	// A room from before the index: the key goes, and opening writes it.
	up := after.Datasets["alpha"].Upload
	if err := r.db.Update(func(txn *badger.Txn) error {
		if err := txn.Delete(store.UploadsIndexed()); err != nil {
			return err
		}
		return txn.Delete(store.CollabUpload("c1", up))
	}); err != nil {
		t.Fatal(err)
	}
	tr.restart()
	var ups []string
	if err := tr.room.db.View(func(txn *badger.Txn) (err error) { ups, err = store.UploadsOf(txn, "c1"); return }); err != nil || !slices.Contains(ups, up) {
		t.Errorf("the index after opening: %v %v", ups, err)
	}
}

// TestRetiredMeanwhile: a member's request that failed because the
// collaboration's data went while it read it is answered with the
// revocation's refusal; a non-member's keeps its failure (it must not learn
// the collaboration was revoked), as does a problem the request already
// answered and a failure in a collaboration still live.
func TestRetiredMeanwhile(t *testing.T) {
	tr, _, b, _ := readyPair(t, api.ModeHashed, nil)
	r := tr.room
	req := func() *http.Request {
		req := httptest.NewRequest("POST", "/v1/collaborations/c1/queries", nil)
		req.SetPathValue("id", "c1")
		return req
	}
	member := &actor{principalRecord: principalRecord{ID: "alpha", Role: policy.RolePartner}}
	analyst := &actor{principalRecord: principalRecord{ID: "alpha-analyst", Role: policy.RoleAnalyst, Partner: "alpha"}}
	outsider := &actor{principalRecord: principalRecord{ID: "zulu", Role: policy.RolePartner}}
	gone := fmt.Errorf("reading: %w", store.ErrSegmentGone)
	if err := r.retiredMeanwhile(req(), member, gone); err != gone {
		t.Errorf("a failure in a live collaboration became %v", err)
	}
	if err := b.Revoke(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	for _, who := range []*actor{member, analyst} {
		var p *api.Problem
		if err := r.retiredMeanwhile(req(), who, gone); !errors.As(err, &p) || p.Type != api.ProblemDenied || !strings.Contains(p.Title, "revoked") {
			t.Errorf("%s: %v, want the revocation's refusal", who.ID, err)
		}
	}
	if err := r.retiredMeanwhile(req(), outsider, gone); err != gone {
		t.Errorf("a non-member's failure became %v", err)
	}
	bad := badRequest("no such column")
	if err := r.retiredMeanwhile(req(), member, bad); err != error(bad) {
		t.Errorf("a problem the request answered became %v", err)
	}
	for _, other := range []error{
		fmt.Errorf("reading the ledger: %w", ErrCorruptState),
		fmt.Errorf("query: %w", context.DeadlineExceeded),
		context.Canceled,
		errors.New("disk full"),
	} {
		if err := r.retiredMeanwhile(req(), member, other); err != other {
			t.Errorf("%v became %v: only data gone is the revocation's", other, err)
		}
	}
}

// TestExpiredRelayDoesNotBlockOpen: a blinded collaboration of three whose
// relay a member hung up on while the room offered the next task, then
// expired and was retired, leaves a room that opens: no relay is resumed
// from the layers the retirement deleted.
func TestExpiredRelayDoesNotBlockOpen(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	tr := startRoomAt(t, now, nil)
	ctx := context.Background()
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	c := tr.partner("charlie", policy.RolePartner, "")
	states := tr.collab("c1", api.ModeBlinded, map[string]any{"expires_in_hours": 1}, a, b, c)
	spec := uploadSpec("c1", writeList(t, span(0, 20000)), states["alpha"])
	spec.RowsPerPart = 5000
	if _, err := a.UploadCSV(ctx, spec); err != nil {
		t.Fatal(err)
	}
	r := tr.room
	sctx, cancel := context.WithCancel(ctx)
	synced := make(chan error, 1)
	go func() { _, err := b.Sync(sctx, "c1", false, 10*time.Millisecond); synced <- err }()
	for {
		if cr, _ := r.collab("c1"); len(cr.Tasks) == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel() // bravo hangs up as its last answer is stored
	<-synced
	time.Sleep(300 * time.Millisecond)
	offset.Store(int64(2 * time.Hour))
	if err := r.sweepRetired(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := retiredEntries(t, r, "c1"); n != 1 {
		t.Errorf("%d deletion entries, want 1", n)
	}
	tr.restart()
	if cr, err := tr.room.collab("c1"); err != nil || len(cr.Tasks) != 0 {
		t.Errorf("after reopening: %v, tasks %v", err, cr)
	}
}

// TestExpiryTimerRetires: a collaboration is retired when it expires, by a
// timer of its own that the room starts when it opens (or when the
// collaboration is created), not at the next hourly sweep; a room closed
// before it expires stops the timer.
func TestExpiryTimerRetires(t *testing.T) {
	tr, offset, _, _, _ := expiringPair(t)
	c, _ := tr.room.collab("c1")
	spans, _, _ := tr.room.collabData(c)
	// The room opens again 1.5 s of the room's time before the expiry: a
	// margin the opening itself does not use up on a loaded machine.
	offset.Store(int64(time.Hour - 1500*time.Millisecond))
	tr.restart()
	r := tr.room
	// Unless the opening used up the margin, nothing is retired yet.
	if cur, _ := r.collab("c1"); r.now().Before(cur.ExpiresAt.Add(-100 * time.Millisecond)) {
		if n, _ := retiredEntries(t, r, "c1"); n != 0 || countKeys(t, r, spans...) == 0 {
			t.Fatalf("retired before it expired: %d entries", n)
		}
	}
	deadline := time.Now().Add(6500 * time.Millisecond)
	for {
		if n, _ := retiredEntries(t, r, "c1"); n == 1 && countKeys(t, r, spans...) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the expiry's timer did not retire the collaboration within 5 s of its expiry")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cur, _ := r.collab("c1"); cur.DataDeleted.Before(cur.ExpiresAt) {
		t.Errorf("data deleted at %v, before the expiry at %v", cur.DataDeleted, cur.ExpiresAt)
	}
}

// TestRetirementKeepsUploadCommittedMeanwhile: an upload read as open by a
// retirement and committed before its entry (at an expiry, which nothing
// orders against a commit) keeps its record: the retirement reads again.
func TestRetirementKeepsUploadCommittedMeanwhile(t *testing.T) {
	tr, _, b, _ := readyPair(t, api.ModeHashed, nil)
	r := tr.room
	ctx := context.Background()
	c, _ := r.collab("c1")
	open := startUpload(t, tr, api.StartUpload{Kind: "email", Profile: "pair-v1", Columns: []string{}, Rows: 1000, RowsPerPart: 1000, Canary: c.Datasets["alpha"].Canary})
	room := &actor{principalRecord: principalRecord{ID: "room", Role: policy.RoleOperator}, requestID: "t"}
	var once sync.Once
	hook := func(name string) {
		if name != retiredName("c1") {
			return
		}
		once.Do(func() {
			err := r.commit(ctx, room, act{action: actionDataDelete}, policy.Decision{Allow: true}, nil, "", func(tx *store.Tx) error {
				u, err := loadUpload(tx.Txn, "c1", open.ID)
				if err != nil {
					return err
				}
				u.Committed = true
				return uploads.Put(tx, u.ID, u)
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	r.beforeDelete.Store(&hook)
	defer r.beforeDelete.Store(nil)
	if err := b.Revoke(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if countKeys(t, r, uploads.Span(open.ID)...) == 0 {
		t.Error("the record of an upload committed while the retirement was read was deleted")
	}
	if n, _ := retiredEntries(t, r, "c1"); n != 1 {
		t.Errorf("%d deletion entries, want 1", n)
	}
	if cur, _ := r.collab("c1"); cur.DataDeleted.IsZero() {
		t.Error("the retirement gave up")
	}
}
