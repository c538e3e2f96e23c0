package cleanroom

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

func countKeys(t *testing.T, r *Room, spans ...store.Span) int {
	t.Helper()
	var keys [][]byte
	err := r.db.View(func(txn *badger.Txn) (err error) { keys, err = store.Keys(txn, spans...); return })
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// loggedEntries returns the room's audit log, parsed.
func loggedEntries(t *testing.T, r *Room) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	for i := range r.audit.Size() {
		b, err := r.audit.Entry(context.Background(), i)
		if err != nil {
			t.Fatal(err)
		}
		e, err := audit.ParseEntry(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// servedTasks returns the relay tasks whose parts the room's audit log
// says it served.
func servedTasks(t *testing.T, r *Room) []string {
	var ids []string
	for _, e := range loggedEntries(t, r) {
		for _, d := range e.Data {
			if f := strings.Split(d.Name, "/"); len(f) == 3 && f[0] == "task" && !slices.Contains(ids, f[1]) {
				ids = append(ids, f[1])
			}
		}
	}
	return ids
}

// TestRetention: relay tasks, intermediate layers, replaced uploads, older
// joins and abandoned uploads are deleted once nothing can read them, and
// each deletion is in the audit log; what is still in use stays.
func TestRetention(t *testing.T) {
	tr, a, _, states := readyPair(t, api.ModeBlinded, nil)
	r := tr.room
	ctx := context.Background()
	c, _ := r.collab("c1")
	oldUpload := c.Datasets["alpha"].Upload
	tasks := servedTasks(t, r)
	if len(tasks) < 2 {
		t.Fatalf("%d relay tasks served", len(tasks))
	}
	for _, id := range tasks {
		if n := countKeys(t, r, store.TaskData(id)...); n != 0 {
			t.Errorf("%d keys of relay task %s left after it completed", n, id)
		}
	}
	if n := countKeys(t, r, store.Layer(oldUpload, 2).Span()); n == 0 {
		t.Error("the final layer of a set in use was deleted")
	}
	deletes := func() int {
		n := 0
		for i := range r.audit.Size() {
			b, _ := r.audit.Entry(ctx, i)
			if e, _ := auditEntry(b); e == "data.delete" {
				n++
			}
		}
		return n
	}
	before := deletes()
	if before < 2 {
		t.Errorf("%d data.delete entries after two relay tasks completed", before)
	}

	for range 2 {
		if _, err := a.Match(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
	}
	if countKeys(t, r, store.Join("c1", 1).Span()) != 0 || countKeys(t, r, store.Join("c1", 2).Span()) == 0 {
		t.Error("the older join was kept, or the current one deleted")
	}
	if _, err := a.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.5}); err != nil {
		t.Fatalf("query after the older join was deleted: %v", err)
	}

	// A new list replaces the old one, whose data goes.
	if _, err := a.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(200, 1700)), states["alpha"])); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, r, store.UploadData(oldUpload)...); n != 0 {
		t.Errorf("%d keys of the replaced upload left", n)
	}

	// An upload started and abandoned goes after a week.
	up := startUpload(t, tr, api.StartUpload{Kind: "email", Profile: "pair-v1", Columns: []string{}, Rows: 1000, RowsPerPart: 1000, Canary: c.Datasets["alpha"].Canary})
	if err := r.sweepAbandoned(ctx); err != nil || countKeys(t, r, uploads.Span(up.ID)...) != 2 {
		t.Fatalf("a fresh upload was swept: %v", err)
	}
	r.now = func() time.Time { return time.Now().Add(abandonedAfter + time.Hour) }
	if err := r.sweepAbandoned(ctx); err != nil {
		t.Fatal(err)
	}
	if countKeys(t, r, uploads.Span(up.ID)...) != 0 {
		t.Error("an upload abandoned for a week was kept")
	}
	if deletes() < before+3 {
		t.Errorf("deletions not all audited: %d entries, want at least %d", deletes(), before+3)
	}
}

func auditEntry(b []byte) (string, error) {
	e, err := audit.ParseEntry(b)
	return e.Action, err
}

// TestUnrecordedJoinGoes: a match run whose record is refused (here a
// member revokes the collaboration while the room joins) leaves no join
// on disk, and its deletion is audited: by the revocation, which deletes
// the collaboration's data, the join written so far with it.
func TestUnrecordedJoinGoes(t *testing.T) {
	tr, a, b, _ := readyPair(t, api.ModeHashed, map[string]any{"noise_off": true})
	r := tr.room
	ctx := context.Background()
	revoke := func() {
		if err := b.Revoke(ctx, "c1"); err != nil {
			t.Error(err)
		}
	}
	r.beforeRecord.Store(&revoke)
	defer r.beforeRecord.Store(nil)
	if _, err := a.Match(ctx, "c1"); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a match recorded after its collaboration was revoked: %v", err)
	}
	if n := countKeys(t, r, store.Join("c1", 1).Span()); n != 0 {
		t.Errorf("%d keys of the unrecorded run's join left", n)
	}
	named := false
	for _, e := range loggedEntries(t, r) {
		for _, d := range e.Data {
			named = named || e.Action == "data.delete" && (d.Name == "unrecorded-join/c1" || d.Name == "retired-collaboration/c1")
		}
	}
	if !named {
		t.Error("the unrecorded join's deletion is not in the audit log")
	}
}
