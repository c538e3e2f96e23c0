package cleanroom

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// TestDatabaseChecksEveryRead: the room's reads of segments and audit
// entries have no check of their own but Badger's (see databaseOptions),
// so its options must keep both of Badger's checks on.
func TestDatabaseChecksEveryRead(t *testing.T) {
	for _, ro := range []bool{false, true} {
		o := databaseOptions(t.TempDir(), ro)
		if !o.VerifyValueChecksum || o.ChecksumVerificationMode != options.OnBlockRead {
			t.Errorf("read-only %v: value checksum %v, block checks %v", ro, o.VerifyValueChecksum, o.ChecksumVerificationMode)
		}
	}
}

// TestSegmentDecayIsAProblem: a segment whose bytes change on disk while
// the room runs, an upload part in its file or a join table in Badger's
// value log, is refused where it is read, a corrupt problem, never
// aggregated; the whole-database check finds it too.
func TestSegmentDecayIsAProblem(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, tr *testRoom)
	}{
		{"an upload part in its file", func(t *testing.T, tr *testRoom) {
			c, err := tr.room.collab("c1")
			if err != nil {
				t.Fatal(err)
			}
			flipSegmentFile(t, tr, store.Segments(c.Datasets["bravo"].Upload).Key(0))
		}},
		{"a join table in the value log", func(t *testing.T, tr *testRoom) {
			var key, value []byte
			err := tr.room.db.View(func(txn *badger.Txn) error {
				it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("join/")})
				defer it.Close()
				it.Rewind()
				key = it.Item().KeyCopy(nil)
				var err error
				value, err = it.Item().ValueCopy(nil)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(value) <= 1<<10 {
				t.Fatalf("%s has %d bytes: stored inline, not in the value log", key, len(value))
			}
			flipInValueLog(t, tr.dir.Database(), value, len(value)/2)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, a := matchedPair(t)
			ctx := context.Background()
			tc.damage(t, tr)
			// Both members' columns: whichever upload a part is of, it is read.
			_, err := a.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, GroupBy: []string{"alpha.age_band"},
				Metrics: []api.Metric{{Kind: api.MetricCount}, {Kind: api.MetricSum, Column: "bravo.spend"}}})
			wantProblem(t, err, api.ProblemCorrupt)
			if err := tr.room.db.View(store.NewFiles(tr.dir.Segments(), tr.room.db).CheckSegments); !errors.Is(err, store.ErrCorruptSegment) {
				t.Errorf("CheckSegments: %v, want ErrCorruptSegment", err)
			}
		})
	}
}

// flipSegmentFile flips a bit of the file that holds the segment at key,
// found by its contents.
func flipSegmentFile(t *testing.T, tr *testRoom, key []byte) {
	t.Helper()
	var seg []byte
	if err := tr.room.withSegment(key, func(b []byte) error { seg = bytes.Clone(b); return nil }); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(tr.dir.Segments(), "*.seg"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil && len(b) == store.SegmentSeal+len(seg) && bytes.Equal(b[store.SegmentSeal:], seg) {
			flipInFile(t, name, -1)
			return
		}
	}
	t.Fatalf("no segment file holds %s", key)
}

// flipInFile flips a bit of the file's byte at (its middle byte for -1).
func flipInFile(t *testing.T, name string, at int) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 {
		at = len(b) / 2
	}
	b[at] ^= 0x08
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// flipInValueLog flips a bit of byte at of value where it lies in one of
// the value log files in dir, through the file, under Badger's mapping.
func flipInValueLog(t *testing.T, dir string, value []byte, at int) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	for _, name := range files {
		f, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, 64<<20) // the files are mapped sparse, far larger than their data
		n, err := f.ReadAt(b, 0)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if i := bytes.Index(b[:n], value); i >= 0 {
			if _, err := f.WriteAt([]byte{b[i+at] ^ 0x08}, int64(i+at)); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("the value is in no value log file")
}
