package audit

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// OpenForExport opens the log kept in the Badger store at dir for reading
// and export, without changing anything in dir. It opens the store
// read-only. A store left by a process killed mid-write holds a
// write-ahead log that must be truncated before it can be read, which
// Badger refuses to do read-only ("Log truncate required"); then
// OpenForExport copies dir into a new directory under tmp ("" for the
// system's) and opens the copy read-write, so that Badger recovers the
// copy as the room would on restart. Close removes the copy. The copy
// needs as much free space as the store takes.
//
// Either way the log is read-only: it exports up to its latest signed
// checkpoint (entries appended after it are not covered by a signature).
func OpenForExport(ctx context.Context, dir, tmp string, opts Options) (*Log, error) {
	opts.ReadOnly = true
	l, err := Open(ctx, dir, opts)
	if err == nil || !strings.Contains(err.Error(), badger.ErrTruncateNeeded.Error()) {
		// Badger formats the cause into its error rather than wrapping it,
		// so it is recognized by its text.
		return l, err
	}
	copyDir, err := os.MkdirTemp(tmp, "cleanroom-audit-export-")
	if err != nil {
		return nil, fmt.Errorf("audit: the store needs recovery and a copy cannot be made: %w", err)
	}
	if err := copyTree(dir, copyDir); err != nil {
		os.RemoveAll(copyDir)
		return nil, fmt.Errorf("audit: the store needs recovery; copying it: %w", err)
	}
	bo := badger.DefaultOptions(copyDir).
		WithLogger(badgerLogger{logger(opts)}).
		WithMemTableSize(16 << 20).
		WithBlockCacheSize(16 << 20).
		WithCompactL0OnClose(false)
	db, err := badger.Open(bo)
	if err != nil {
		os.RemoveAll(copyDir)
		return nil, fmt.Errorf("audit: recovering a copy of the store: %w", err)
	}
	if l, err = New(ctx, db, opts); err != nil {
		db.Close()
		os.RemoveAll(copyDir)
		return nil, err
	}
	l.ownDB, l.tmpDir = true, copyDir
	return l, nil
}

// CopyStore copies a stopped Badger store's files from src into dst (which
// exists), leaving out its lock file, so that the copy can be opened
// read-write (and recovered) without touching src.
func CopyStore(src, dst string) error { return copyTree(src, dst) }

// copyTree copies the regular files under src into dst (which exists),
// leaving out Badger's lock file.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o700)
		case !d.Type().IsRegular() || d.Name() == "LOCK":
			return nil
		}
		return copyFile(path, to)
	})
}

// copyFile copies a file, leaving its holes as holes.
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	extents, ok := dataExtents(in, st.Size())
	if !ok {
		extents = [][2]int64{{0, st.Size()}}
	}
	for _, e := range extents {
		if _, err := io.Copy(io.NewOffsetWriter(out, e[0]), io.NewSectionReader(in, e[0], e[1]-e[0])); err != nil {
			out.Close()
			return err
		}
	}
	if err := out.Truncate(st.Size()); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
