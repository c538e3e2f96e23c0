package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// checkingOptions are the checks the room opens its database with (see
// openChecked): every value read from the value log, and every block read
// from a table, checked by Badger; value log files of 64 MiB, which the
// tests read whole.
func checkingOptions(dir string) badger.Options {
	return badger.DefaultOptions(dir).WithLogger(nil).WithValueThreshold(1 << 10).WithSyncWrites(true).
		WithChecksumVerificationMode(options.OnBlockRead).WithVerifyValueChecksum(true).WithValueLogFileSize(64 << 20)
}

// TestReadSegmentDecay: a segment whose bytes change on disk, in the value
// log (a payload byte, a seal byte), is refused as ErrCorruptSegment when
// read, though the read does not pass over it a second time; in a table (a
// small segment stored inline), it is not found. Never the wrong bytes;
// undamaged, it reads back as written.
func TestReadSegmentDecay(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		at    func(n int) int // the byte of the sealed value flipped
		want  error
		table bool
	}{
		{"a payload byte, in the value log", 64 << 10, func(n int) int { return n / 2 }, ErrCorruptSegment, false},
		{"a seal byte, in the value log", 64 << 10, func(int) int { return 5 }, ErrCorruptSegment, false},
		{"the last byte, in the value log", 64 << 10, func(n int) int { return n - 1 }, ErrCorruptSegment, false},
		// Badger's iterator stops at a block that fails its checksum: the
		// key is not found, an error where the segment must be.
		{"a payload byte, in a table", 200, func(n int) int { return n / 2 }, badger.ErrKeyNotFound, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			payload := make([]byte, tc.size)
			for i := range payload {
				payload[i] = byte(i*13 + i>>8)
			}
			key := Segments("up-1").Key(0)
			db, err := badger.Open(checkingOptions(dir))
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(txn *badger.Txn) error { return PutSegment(txn, key, payload) }); err != nil {
				t.Fatal(err)
			}
			// Keys on both sides, so that an inline segment lies in a
			// block of its own table's middle, which Badger reads (and
			// checks) only when asked for it, not as it opens the table.
			err = db.Update(func(txn *badger.Txn) error {
				for i := range 1000 {
					for _, k := range []string{"a/%04d", "z/%04d"} {
						if err := txn.Set(fmt.Appendf(nil, k, i), bytes.Repeat([]byte{byte(i)}, 64)); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			read := func(db *badger.DB) error {
				return db.View(func(txn *badger.Txn) error {
					return ReadSegment(txn, key, func(b []byte) error {
						if !bytes.Equal(b, payload) {
							t.Fatal("the segment read back different, without an error")
						}
						return nil
					})
				})
			}
			if err := read(db); err != nil {
				t.Fatalf("undamaged: %v", err)
			}
			sealed := SealSegment(payload)
			if !tc.table {
				// Decay while the database is open: the value log is
				// mapped, shared, and the page cache is what it reads.
				flipIn(t, dir, sealed, tc.at(len(sealed)))
			} else {
				if err := db.Close(); err != nil { // the inline segment goes to a table
					t.Fatal(err)
				}
				flipIn(t, dir, sealed, tc.at(len(sealed)))
				if db, err = badger.Open(checkingOptions(dir)); err != nil {
					t.Fatal(err)
				}
			}
			defer db.Close()
			if err := read(db); !errors.Is(err, tc.want) {
				t.Fatalf("damaged: err %v, want %v", err, tc.want)
			}
		})
	}
}

// flipIn flips one bit of byte at of value, where it is found in the
// database's files in dir (once; a table stores it whole when it is too
// small to be compressed apart).
func flipIn(t *testing.T, dir string, value []byte, at int) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	sst, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	for _, f := range append(files, sst...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, value); i >= 0 {
			fh, err := os.OpenFile(f, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			if _, err := fh.WriteAt([]byte{b[i+at] ^ 0x10}, int64(i+at)); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("the value is in none of the database's files")
}

// TestResidentReleasesARun: segments read through a Resident stay resident
// until a run of ReleaseEvery bytes has been read, then leave together;
// written ones are due once a run has been written.
func TestResidentReleasesARun(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("releasing mapped pages is Linux only")
	}
	db, err := badger.Open(checkingOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const part, parts = 4 << 20, 4
	r := NewResident(3*part, 1<<62)
	payload := bytes.Repeat([]byte{0x3c}, part)
	for p := range parts {
		if err := db.Update(func(txn *badger.Txn) error { return PutSegment(txn, Segments("up-1").Key(p), payload) }); err != nil {
			t.Fatal(err)
		}
		if due := r.Wrote(part + SegmentSeal); due != (p == 2) {
			t.Fatalf("part %d written: due %v", p, due)
		}
		if p == 2 {
			if err := db.View(func(txn *badger.Txn) error { return ReleaseSegment(txn, Segments("up-1").Key(p)) }); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := vlogResident(t); n > 2*part {
		t.Fatalf("%d bytes resident after the run written was released", n)
	}
	for p := range parts {
		readPart(t, db, r, p, payload)
		switch n := vlogResident(t); {
		case p < 2 && n < int64((p+1)*part):
			t.Fatalf("after part %d: only %d bytes resident: released before the run was read", p, n)
		case p == 2 && n > part:
			t.Fatalf("after part %d: %d bytes still resident, the run read was not released", p, n)
		}
	}
}

// TestResidentSettlesRegions: a pass that reads a little from many regions,
// none of them due on its own, leaves nothing resident once the bytes read
// and not released reach the settling point, in every value log file the
// pass read, not only the one it read last.
func TestResidentSettlesRegions(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("releasing mapped pages is Linux only")
	}
	// Value log files of 8 MiB: three 3 MiB parts a file (Badger moves to
	// the next file once one is past its size), each file a mapping of its
	// own.
	db, err := badger.Open(checkingOptions(t.TempDir()).WithValueLogFileSize(8 << 20))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const part, parts = 3 << 20, 6
	payload := bytes.Repeat([]byte{0x5d}, part)
	for p := range parts {
		key := Segments("up-1").Key(p)
		if err := db.Update(func(txn *badger.Txn) error { return PutSegment(txn, key, payload) }); err != nil {
			t.Fatal(err)
		}
		if err := db.View(func(txn *badger.Txn) error { return ReleaseSegment(txn, key) }); err != nil {
			t.Fatal(err)
		}
	}
	if n := vlogResident(t); n > part {
		t.Fatalf("%d bytes resident before the pass", n)
	}
	// Regions of 2 MiB: no region sees a release's worth (every) of
	// reads, and the pass settles after its fifth part.
	r := NewResident(1<<62, 5*part)
	r.shift = 21
	for p := range 4 {
		readPart(t, db, r, p, payload)
	}
	if n := vlogResident(t); n < 4*part {
		t.Fatalf("%d bytes resident after reading four parts: released before the settling point; the test cannot see a settle", n)
	}
	readPart(t, db, r, 4, payload)
	if n := vlogResident(t); n > part {
		t.Fatalf("%d bytes of the value log still resident once the pass reached the settling point", n)
	}
	r.mu.Lock()
	left, regions := r.unreleased, len(r.read)
	r.mu.Unlock()
	if left != 0 || regions != 0 {
		t.Fatalf("after settling, %d bytes in %d regions still counted", left, regions)
	}
}

// readPart reads part p of upload up-1 through r and checks it is payload.
func readPart(t *testing.T, db *badger.DB, r *Resident, p int, payload []byte) {
	t.Helper()
	err := db.View(func(txn *badger.Txn) error {
		return r.ReadSegment(txn, Segments("up-1").Key(p), func(b []byte) error {
			if !bytes.Equal(b, payload) {
				t.Errorf("part %d reads back different", p)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}
