package cleanroom

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// stoppedRoom sets up a collaboration with a match and a charged query,
// stops the room and returns it: tests then change its database as damage
// would, and open it again.
func stoppedRoom(t *testing.T) *testRoom {
	t.Helper()
	tr, a, _, _ := readyPair(t, api.ModeHashed, nil)
	ctx := context.Background()
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.3}); err != nil {
		t.Fatal(err)
	}
	tr.stop()
	return tr
}

// withDB runs fn on the stopped room's database.
func withDB(t *testing.T, tr *testRoom, fn func(db *badger.DB)) {
	t.Helper()
	db, err := openDatabase(tr.dir.Database(), false)
	if err != nil {
		t.Fatal(err)
	}
	fn(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func openErr(tr *testRoom) error {
	r, err := Open(context.Background(), Config{Dir: tr.dir, CheckpointInterval: -1})
	if err == nil {
		r.Close()
	}
	return err
}

// TestStateAgreesWithLog: a state record that is damaged, missing, or an
// older version than the log says stops the room from starting, with an
// error naming the record; a database gone back to an older copy too.
func TestStateAgreesWithLog(t *testing.T) {
	flip := func(db *badger.DB, key string, at func(v []byte) int) {
		err := db.Update(func(txn *badger.Txn) error {
			it, err := txn.Get([]byte(key))
			if err != nil {
				return err
			}
			v, _ := it.ValueCopy(nil)
			v[at(v)] ^= 0x01
			return txn.Set([]byte(key), v)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, want string
		damage     func(t *testing.T, tr *testRoom)
	}{
		{"a bit of the budget flipped", "budget/c1 fails its seal", func(t *testing.T, tr *testRoom) {
			withDB(t, tr, func(db *badger.DB) { flip(db, "budget/c1", func(v []byte) int { return len(v) - 3 }) })
		}},
		{"a bit of a seal's index flipped", "collab/c1 fails its seal", func(t *testing.T, tr *testRoom) {
			// The index's last byte, after the tag "st1".
			withDB(t, tr, func(db *badger.DB) { flip(db, "collab/c1", func([]byte) int { return 3 + 7 }) })
		}},
		{"the budget gone", "budget/c1 is missing", func(t *testing.T, tr *testRoom) {
			withDB(t, tr, func(db *badger.DB) {
				db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte("budget/c1")) })
			})
		}},
		{"the budget an older version", "budget/c1 is the version of audit entry", func(t *testing.T, tr *testRoom) {
			// The ledger as the match left it, before the query charged it.
			var old []byte
			withDB(t, tr, func(db *badger.DB) {
				txn := db.NewTransaction(false)
				defer txn.Discard()
				it := txn.NewIterator(badger.IteratorOptions{AllVersions: true, Prefix: []byte("budget/c1")})
				defer it.Close()
				for it.Rewind(); it.Valid(); it.Next() {
					if v, _ := it.Item().ValueCopy(nil); string(it.Item().Key()) == "budget/c1" {
						old = v // the oldest version last
					}
				}
			})
			if old == nil {
				t.Fatal("no older version of the budget")
			}
			withDB(t, tr, func(db *badger.DB) {
				db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("budget/c1"), old) })
			})
		}},
		{"the database an older copy", "older than its anchored checkpoint", func(t *testing.T, tr *testRoom) {
			// The room as it was, then more entries, then the copy back.
			old := t.TempDir() + "/db"
			if out, err := exec.Command("cp", "-a", tr.dir.Database(), old).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
			tr.serve()
			c, err := reconnect(tr, "alpha")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Budget(context.Background(), "c1"); err != nil {
				t.Fatal(err)
			}
			tr.stop()
			os.RemoveAll(tr.dir.Database())
			if err := os.Rename(old, tr.dir.Database()); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := stoppedRoom(t)
			if err := openErr(tr); err != nil {
				t.Fatalf("the undamaged room: %v", err)
			}
			tc.damage(t, tr)
			err := openErr(tr)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !(errors.Is(err, ErrStateMismatch) || errors.Is(err, ErrDamaged)) {
				t.Fatalf("open: %v, want an error naming %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "cleanroom doctor") {
				t.Errorf("the error gives no hint: %v", err)
			}
		})
	}
}

// TestCorruptReadIsAProblem: a record damaged while the room runs is
// refused where it is read: a 500 corrupt problem, recorded, and the room
// goes on answering what does not need it.
func TestCorruptReadIsAProblem(t *testing.T) {
	tr, a, _, _ := readyPair(t, api.ModeHashed, nil)
	ctx := context.Background()
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	err := tr.room.db.Update(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte("budget/c1"))
		if err != nil {
			return err
		}
		v, _ := it.ValueCopy(nil)
		v[len(v)-2] ^= 0x04
		return txn.Set([]byte("budget/c1"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	before := tr.room.audit.Size()
	_, err = a.Budget(ctx, "c1")
	p := wantProblem(t, err, api.ProblemCorrupt)
	if p.Status != http.StatusInternalServerError {
		t.Errorf("status %d", p.Status)
	}
	if tr.room.audit.Size() <= before {
		t.Error("the refusal was not recorded")
	}
	if e := lastEntry(t, tr.room); e.Decision.Allow || !strings.Contains(strings.Join(e.Decision.Reasons, " "), "integrity") {
		t.Errorf("last entry %+v", e)
	}
	if _, err := a.Collaboration(ctx, "c1"); err != nil {
		t.Errorf("a read that does not need the ledger: %v", err)
	}
}

// TestDiskWatermarks: below the low mark, changes are refused 503
// insufficient-storage (and recorded) while reads and deletions go on; below the
// critical mark every authenticated request is refused; above the high
// mark the room takes writes again, by itself.
func TestDiskWatermarks(t *testing.T) {
	var free atomic.Int64
	free.Store(10 << 30)
	tr := startRoomWith(t, func(c *Config) {
		c.Disk = DiskLimits{Low: 100 << 20, High: 200 << 20, Critical: 10 << 20, Interval: time.Nanosecond,
			statfs: func(string) (int64, error) { return free.Load(), nil }}
	})
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	tr.collab("c1", api.ModeHashed, nil, a, b)
	ctx := context.Background()
	create := func(id string) error {
		_, err := a.CreateCollaboration(ctx, api.CreateCollaboration{ID: id, Kind: "email", Members: []string{"alpha", "bravo"}})
		return err
	}

	up := startRegionUpload(t, tr, 2000, 1000)

	free.Store(50 << 20) // below low
	before := tr.room.audit.Size()
	p := wantProblem(t, create("c2"), api.ProblemStorage)
	if p.Status != http.StatusServiceUnavailable {
		t.Errorf("status %d", p.Status)
	}
	if tr.room.audit.Size() != before+1 || lastEntry(t, tr.room).Decision.Allow {
		t.Error("the refusal was not recorded")
	}
	if _, err := a.Collaboration(ctx, "c1"); err != nil {
		t.Errorf("a read below the low mark: %v", err)
	}
	if resp, body := rawRequest(t, tr, "alpha", "DELETE", "/v1/collaborations/c1/uploads/"+up.ID, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("discarding an upload below the low mark, which frees space: %d %s", resp.StatusCode, body)
	}
	free.Store(150 << 20) // between low and high: still refused
	wantProblem(t, create("c2"), api.ProblemStorage)

	free.Store(5 << 20) // below critical
	before = tr.room.audit.Size()
	_, err := a.Collaboration(ctx, "c1")
	wantProblem(t, err, api.ProblemStorage)
	if tr.room.audit.Size() != before {
		t.Error("the room wrote below the critical mark")
	}
	if resp, err := http.Get(tr.url + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("health below the critical mark: %v %v", resp, err)
	}

	free.Store(250 << 20) // above high: back by itself
	if err := create("c2"); err != nil {
		t.Errorf("above the high mark: %v", err)
	}
	// A bulk write reserves what it needs.
	free.Store(120 << 20)
	release, err := tr.room.disk.reserve(10 << 20)
	if err != nil {
		t.Fatalf("reserving 10 MiB of 120 MiB free: %v", err)
	}
	if _, err := tr.room.disk.reserve(15 << 20); err == nil {
		t.Error("two reservations took free space below the low mark")
	}
	release()
}

// TestDiagnose: a healthy stopped room passes every check; one whose ledger
// was changed is named, with what to do.
func TestDiagnose(t *testing.T) {
	tr := stoppedRoom(t)
	d, err := Diagnose(context.Background(), tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Healthy() || len(d.Checks) != 7 {
		t.Fatalf("a healthy room: %+v", d)
	}
	withDB(t, tr, func(db *badger.DB) {
		db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte("budget/c1")) })
	})
	if d, err = Diagnose(context.Background(), tr.dir); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range d.Findings {
		got = append(got, f.Check+": "+f.Problem)
		if f.Advice == "" {
			t.Errorf("finding without advice: %+v", f)
		}
	}
	want := []string{"state: budget/c1 is missing", "ledger: the ledger of c1 says 0 micro-epsilon spent, its audit log 400000"}
	for _, w := range want {
		if !strings.Contains(strings.Join(got, "\n"), w) {
			t.Errorf("findings %q lack %q", got, w)
		}
	}
}
