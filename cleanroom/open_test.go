package cleanroom

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/fb"
	"github.com/dgraph-io/badger/v4/y"
	"github.com/klauspost/compress/snappy"
)

// TestCheckTableFilesEveryBlock flips one bit at a time through a real
// table's blocks (the footer and index have their own checksum): each flip
// is ErrDamaged from checkTableFiles, never a panic, and the pristine table
// passes. Badger itself panics on some of these while it opens.
func TestCheckTableFilesEveryBlock(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(databaseOptions(dir, false))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		for i := range 2000 {
			if err := txn.Set(fmt.Appendf(nil, "key-%05d", i), fmt.Appendf(nil, "value-%d", i*i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil { // flushes the memtable to a table
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) != 1 {
		t.Fatalf("%d tables", len(tables))
	}
	pristine, err := os.ReadFile(tables[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := checkTableFiles(dir); err != nil {
		t.Fatalf("the pristine table: %v", err)
	}
	// The blocks end where the index begins: the first byte the footer's
	// check covers that a flip in a block does not reach.
	blocks := blocksEnd(t, pristine)
	want := tableContent(t, pristine)
	step := max(1, blocks/600)
	detected, same := 0, 0
	for at := 0; at < blocks; at += step {
		b := append([]byte(nil), pristine...)
		b[at] ^= 1 << (at % 8)
		if err := os.WriteFile(tables[0], b, 0o600); err != nil {
			t.Fatal(err)
		}
		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("byte %d: panic %v", at, p)
				}
			}()
			return checkTableFiles(dir)
		}()
		switch {
		case errors.Is(err, ErrDamaged):
			detected++
		case err == nil && bytes.Equal(tableContent(t, b), want):
			// Snappy copies bytes from an offset back: a flip there may
			// point at identical bytes, and the block reads the same.
			same++
		default:
			t.Errorf("byte %d of %d: %v, and the blocks read differently; want ErrDamaged", at, blocks, err)
		}
	}
	t.Logf("%d flips in %d bytes of blocks: %d detected, %d read the same", (blocks+step-1)/step, blocks, detected, same)
	if detected == 0 {
		t.Error("no flip was detected")
	}
}

// tableContent is a table's blocks, decompressed and concatenated.
func tableContent(t *testing.T, b []byte) []byte {
	t.Helper()
	end := blocksEnd(t, b)
	at := len(b) - 4
	at -= int(y.BytesToU32(b[at:])) + 4
	ti := fb.GetRootAsTableIndex(b[end:at], 0)
	var out []byte
	var ko fb.BlockOffset
	for i := range ti.OffsetsLength() {
		ti.Offsets(&ko, i)
		blk, err := snappy.Decode(nil, b[ko.Offset():ko.Offset()+ko.Len()])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, blk...)
	}
	return out
}

// blocksEnd is where a table's blocks end: the start of its index.
func blocksEnd(t *testing.T, b []byte) int {
	t.Helper()
	at := len(b) - 4
	at -= int(y.BytesToU32(b[at:]))
	at -= 4
	return at - int(y.BytesToU32(b[at:]))
}

// TestCheckTableFilesOrphan: a table file the MANIFEST does not name (a
// crash while a table was being written leaves one, cut short) is not the
// check's business: the room opens, and Badger removes the file.
func TestCheckTableFilesOrphan(t *testing.T) {
	dir := t.TempDir()
	db, err := openDatabase(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(dir, "000099.sst")
	if err := os.WriteFile(orphan, []byte("a table cut short by a crash\xff\xff\xff\x7f"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkTableFiles(dir); err != nil {
		t.Fatalf("checkTableFiles = %v, want nil", err)
	}
	db, err = openDatabase(dir, false)
	if err != nil {
		t.Fatalf("openDatabase = %v", err)
	}
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the orphan table is still there: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// A table the MANIFEST names, cut short, is damage.
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table")
	}
	if err := os.Truncate(tables[0], 40); err != nil {
		t.Fatal(err)
	}
	if err := checkTableFiles(dir); !errors.Is(err, ErrDamaged) {
		t.Errorf("a named table cut short: checkTableFiles = %v, want ErrDamaged", err)
	}
}
