package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// The anchor. A log's signed checkpoints live in its own database, so a
// database that loses its newest writes (a damaged table, a file restored
// from an older copy) can come back as a shorter log that still matches its
// own, older, checkpoint: consistent, verified, and silently rolled back.
// Options.Anchor names a file outside the database where the log also
// writes every checkpoint it signs (atomically: a temporary file, fsync,
// rename, fsync of the directory). At open the log must contain the
// anchored checkpoint: at least its size, with the same tree hash at that
// size. Entries appended after the newest checkpoint are not anchored until
// the next one (at most CheckpointEvery entries or CheckpointInterval, and
// always at Close).

// ErrRolledBack: the log is shorter than, or forks from, the checkpoint in
// its anchor file. The room must not start on it.
var ErrRolledBack = errors.New("audit log is older than its anchored checkpoint")

// writeAnchor records signed as the anchor.
func (l *Log) writeAnchor(signed []byte) error {
	path := l.opts.Anchor
	if path == "" {
		return nil
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(signed)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("audit: writing the anchor: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// checkAnchor refuses a log that does not contain its anchored checkpoint.
// A log without an anchor file (a new one, or one kept without) passes.
func (l *Log) checkAnchor(ctx context.Context) error {
	if l.opts.Anchor == "" {
		return nil
	}
	signed, err := os.ReadFile(l.opts.Anchor)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: reading the anchor: %w", err)
	}
	var c *Checkpoint
	if l.verifier != nil {
		c, err = ParseCheckpoint(signed, l.verifier)
	} else {
		c, err = parseUnverified(signed)
	}
	if err != nil {
		return fmt.Errorf("%w: the anchor %s is not a checkpoint of this log: %v", ErrCorrupt, l.opts.Anchor, err)
	}
	if c.Origin != l.opts.Origin {
		return fmt.Errorf("%w: the anchor %s is a checkpoint of %q, not of this log", ErrCorrupt, l.opts.Anchor, c.Origin)
	}
	if size := l.size.Load(); size < c.Size {
		return fmt.Errorf("%w: the log holds %d entries, its anchor %s a checkpoint of %d", ErrRolledBack, size, l.opts.Anchor, c.Size)
	}
	var root tlog.Hash
	err = l.db.View(func(txn *badger.Txn) error {
		root, err = tlog.TreeHash(c.Size, txnHashReader{txn})
		return err
	})
	if err != nil || root != c.Root {
		return fmt.Errorf("%w: the log's tree at %d entries differs from its anchor %s", ErrRolledBack, c.Size, l.opts.Anchor)
	}
	return nil
}
