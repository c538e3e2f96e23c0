package cleanroom

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestOrphanedTaskDeletedAtOpen: in blinded mode a commit replaces the
// member's dataset and its open relay task, whose data it deletes after its
// entry. A room that stopped before that deletes the task's data when it
// opens, which no record names any more, and keeps the new dataset's
// upload and relay task.
func TestOrphanedTaskDeletedAtOpen(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	states := tr.collab("c1", api.ModeBlinded, nil, a, b)
	ctx := context.Background()
	alphaTask := func() string {
		t.Helper()
		c, err := tr.room.collab("c1")
		if err != nil {
			t.Fatal(err)
		}
		for id, task := range c.Tasks {
			if task.Owner == "alpha" {
				return id
			}
		}
		return ""
	}
	if _, err := a.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(0, 1000)), states["alpha"])); err != nil {
		t.Fatal(err)
	}
	first := alphaTask()
	if first == "" || countKeys(t, tr.room, store.TaskData(first)...) == 0 {
		t.Fatal("alpha's first dataset has no relay task with data")
	}
	stop := func(name string) {
		if name == "replaced-dataset/alpha" {
			panic(http.ErrAbortHandler) // the request stops where the deletion begins
		}
	}
	tr.room.beforeDelete.Store(&stop)
	a.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(500, 1600)), states["alpha"]))
	tr.room.beforeDelete.Store(nil)
	second := alphaTask()
	if second == "" || second == first {
		t.Fatal("the second dataset did not replace the first")
	}
	if countKeys(t, tr.room, store.TaskData(first)...) == 0 {
		t.Fatal("the replaced task's data went before the stop")
	}
	c, _ := tr.room.collab("c1")
	current := c.Datasets["alpha"].Upload
	tr.restart()
	if n := countKeys(t, tr.room, store.TaskData(first)...); n != 0 {
		t.Errorf("%d keys of the replaced relay task left after the room opened", n)
	}
	if countKeys(t, tr.room, store.TaskData(second)...) == 0 {
		t.Error("the open relay task's data went when the room opened")
	}
	if countKeys(t, tr.room, store.Segments(current).Span()) == 0 {
		t.Error("the member's dataset's parts went when the room opened")
	}
	checkRoomState(t, tr.room, "after the room opened")
}

// TestOrphanedPartDeletedAtOpen: a part stored between two rounds of its
// upload's deletion, the first of which deleted the upload's record, is
// deleted when the room, stopped before the second round, opens.
func TestOrphanedPartDeletedAtOpen(t *testing.T) {
	tr, up, send := sweepRace(t)
	status := make(chan int, 1)
	rounds := 0
	hook := func(string) {
		rounds++
		switch rounds {
		case 1: // the first round has listed its keys: a part lands
			go func() { s, _ := send(1, "1"); status <- s }()
			for deadline := time.Now().Add(10 * time.Second); countKeys(t, tr.room, store.Segments(up.ID).Span()) < 2; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Error("part 1 was never stored")
					return
				}
			}
		case 2: // the second round would delete it: the room stops
			panic("stop")
		}
	}
	tr.room.beforeDelete.Store(&hook)
	func() {
		defer func() { recover() }()
		tr.room.sweepUpload(context.Background(), "c1", "alpha", up.ID, time.Now().Add(time.Hour))
	}()
	tr.room.beforeDelete.Store(nil)
	if s := <-status; s != http.StatusOK {
		t.Fatalf("part 1 answered %d", s)
	}
	if countKeys(t, tr.room, uploads.Span(up.ID)...) != 0 || countKeys(t, tr.room, store.UploadData(up.ID)...) == 0 {
		t.Fatal("the stop did not leave part 1 without its upload's record")
	}
	tr.restart()
	if n := countKeys(t, tr.room, store.UploadData(up.ID)...); n != 0 {
		t.Errorf("%d keys of the deleted upload's part left after the room opened", n)
	}
	checkRoomState(t, tr.room, "after the room opened")
}

// TestOrphanedLayerDeletedAtOpen: in a blinded collaboration of three, the
// relay task that adds the third key completes, and its completion deletes
// the layer it was made from. A room that stopped before that deletes the
// layer, which no dataset reads, when it opens, and keeps the one the set
// reads.
func TestOrphanedLayerDeletedAtOpen(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	c := tr.partner("charlie", policy.RolePartner, "")
	states := tr.collab("c1", api.ModeBlinded, nil, a, b, c)
	ctx := context.Background()
	if _, err := a.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(0, 1000)), states["alpha"])); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Sync(ctx, "c1", false, 0); err != nil {
		t.Fatal(err)
	}
	col, _ := tr.room.collab("c1")
	ds := col.Datasets["alpha"]
	if ds.Layers != 2 || countKeys(t, tr.room, store.Layer(ds.Upload, 2).Span()) == 0 {
		t.Fatalf("alpha's set carries %d layers", ds.Layers)
	}
	stop := func(name string) {
		if strings.HasPrefix(name, "completed-task/") {
			panic(http.ErrAbortHandler) // the request stops where the deletion begins
		}
	}
	tr.room.beforeDelete.Store(&stop)
	c.Sync(ctx, "c1", false, 0)
	tr.room.beforeDelete.Store(nil)
	if col, _ := tr.room.collab("c1"); col.Datasets["alpha"].Layers != 3 {
		t.Fatalf("the third key's task did not complete: %d layers", col.Datasets["alpha"].Layers)
	}
	if countKeys(t, tr.room, store.Layer(ds.Upload, 2).Span()) == 0 {
		t.Fatal("layer 2 went before the stop")
	}
	tr.restart()
	if n := countKeys(t, tr.room, store.Layer(ds.Upload, 2).Span()); n != 0 {
		t.Errorf("%d keys of layer 2, which no dataset reads, left after the room opened", n)
	}
	if countKeys(t, tr.room, store.Layer(ds.Upload, 3).Span()) == 0 {
		t.Error("layer 3, which the set reads, went when the room opened")
	}
	checkRoomState(t, tr.room, "after the room opened")
}

// TestOrphanedJoinsDeletedAtOpen: a match run's join that no record names
// (a later run replaced it and the room stopped before deleting it, or the
// room stopped after writing it and before recording the run) is deleted
// when the room opens; the recorded run's join stays, and answers.
func TestOrphanedJoinsDeletedAtOpen(t *testing.T) {
	tr, a, _, _ := readyPair(t, api.ModeHashed, map[string]any{"noise_off": true})
	ctx := context.Background()
	count := func() api.QuerySpec {
		return api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}}
	}
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	want, err := a.Query(ctx, "c1", count())
	if err != nil {
		t.Fatal(err)
	}
	// Run 2 is recorded; the deletion of run 1's join is stopped.
	stop := func(name string) {
		if name == "older-joins/c1" {
			panic(http.ErrAbortHandler)
		}
	}
	tr.room.beforeDelete.Store(&stop)
	a.Match(ctx, "c1")
	tr.room.beforeDelete.Store(nil)
	if c, _ := tr.room.collab("c1"); c.Match == nil || c.Match.Run != 2 {
		t.Fatal("the second run was not recorded")
	}
	// Run 3 is written, and the room stops before it is recorded.
	var once sync.Once
	stopRun := func() { once.Do(func() { panic(http.ErrAbortHandler) }) }
	tr.room.beforeRecord.Store(&stopRun)
	a.Match(ctx, "c1")
	tr.room.beforeRecord.Store(nil)
	if c, _ := tr.room.collab("c1"); c.Match.Run != 2 {
		t.Fatalf("run %d recorded, want the stop to leave run 2", c.Match.Run)
	}
	for _, run := range []int64{1, 3} {
		if countKeys(t, tr.room, store.Join("c1", run).Span()) == 0 {
			t.Fatalf("run %d's join went before the stop", run)
		}
	}
	tr.restart()
	for _, run := range []int64{1, 3} {
		if n := countKeys(t, tr.room, store.Join("c1", run).Span()); n != 0 {
			t.Errorf("%d keys of run %d's join, which no record names, left after the room opened", n, run)
		}
	}
	if countKeys(t, tr.room, store.Join("c1", 2).Span()) == 0 {
		t.Fatal("the recorded run's join went when the room opened")
	}
	if a, err = reconnect(tr, "alpha"); err != nil {
		t.Fatal(err)
	}
	got, err := a.Query(ctx, "c1", count())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Rows) != fmt.Sprint(want.Rows) {
		t.Errorf("after the room opened the count is %v, before %v", got.Rows, want.Rows)
	}
	checkRoomState(t, tr.room, "after the room opened")
}
