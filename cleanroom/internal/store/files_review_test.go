package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFilesNotARegularFile: an entry of a reference's name that is not a
// regular file (a directory) is damage where it is read, and Sweep steps
// over one no key names instead of failing the room's open.
func TestFilesNotARegularFile(t *testing.T) {
	db, f, dir := filesRoom(t)
	ref := putFile(t, db, f, "seg/u1/00000000", []byte("a part"))
	path := fileOf(t, dir, ref)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := readFrom(db, f, "seg/u1/00000000"); !errors.Is(err, ErrCorruptSegment) {
		t.Errorf("a directory read: %v, want ErrCorruptSegment", err)
	}
	unnamed := filepath.Join(dir, strings.Repeat("e", 32)+fileSuffix)
	if err := os.MkdirAll(filepath.Join(unnamed, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Sweep(); err != nil {
		t.Errorf("Sweep over a directory named like a segment file: %v", err)
	}
}
