package audit

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestAnchorRefusesRollback: a log whose database went back to an older
// copy (shorter than its anchored checkpoint, or forked from it) is
// refused, read-write and read-only; the log itself opens.
func TestAnchorRefusesRollback(t *testing.T) {
	dir := t.TempDir()
	db, anchor := filepath.Join(dir, "db"), filepath.Join(dir, "checkpoint")
	opts := testOpts()
	opts.Anchor = anchor
	ctx := context.Background()
	l, err := Open(ctx, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 10)
	if err := l.Close(); err != nil { // signs and anchors a checkpoint of 10
		t.Fatal(err)
	}
	old := filepath.Join(dir, "old")
	if out, err := exec.Command("cp", "-a", db, old).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	l, err = Open(ctx, db, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 10, 5)
	if err := l.Close(); err != nil { // anchors 15
		t.Fatal(err)
	}
	// The database goes back to its copy of 10 entries.
	if err := os.RemoveAll(db); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(old, db); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, db, opts); !errors.Is(err, ErrRolledBack) {
		t.Fatalf("open of a rolled-back log: %v", err)
	}
	ro := Options{ReadOnly: true, Anchor: anchor}
	if _, err := Open(ctx, db, ro); !errors.Is(err, ErrRolledBack) {
		t.Fatalf("read-only open of a rolled-back log: %v", err)
	}
	// Forked: ten different entries, then five more, so the size agrees.
	os.RemoveAll(db)
	noAnchor := testOpts()
	f, err := Open(ctx, db, noAnchor)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, f, 100, 15)
	f.Close()
	if _, err := Open(ctx, db, opts); !errors.Is(err, ErrRolledBack) {
		t.Fatalf("open of a forked log: %v", err)
	}
}
