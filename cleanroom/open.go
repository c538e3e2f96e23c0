package cleanroom

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Errors of opening a room's data directory, each with what to do.
var (
	// ErrRoomBusy: another process holds the data directory. Stop it, or
	// point this one at another directory.
	ErrRoomBusy = errors.New("cleanroom: another process holds the data directory (is a room already serving it?)")
	// ErrDamaged: the database is damaged (a table or file fails its
	// checksum, or cannot be read). Run cleanroom doctor, keep the audit
	// log as evidence, and restore the directory from a backup.
	ErrDamaged = errors.New("cleanroom: the database in the data directory is damaged")
	// ErrStateMismatch: the room's state disagrees with its audit log (a
	// record damaged, missing or older than the log says). The room refuses
	// to start: nothing it would answer could be trusted.
	ErrStateMismatch = errors.New("cleanroom: the room's state disagrees with its audit log")
	// ErrDiskFull: there is no space left on the data directory's disk.
	ErrDiskFull = errors.New("cleanroom: no space left on the data directory's disk")
)

// databaseOptions are the room's Badger options. Badger checks every block
// it reads against its checksum (a damaged table is an error on the read
// that meets it, never wrong data) and every value read from the value log
// against its CRC. The whole-table check at open (OnTableRead) is left to
// cleanroom doctor: it reads every table, and Badger v4.9.6 panics on a
// table whose block fails it.
func databaseOptions(dir string, readOnly bool) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithReadOnly(readOnly).
		WithLogger(nil).
		WithMemTableSize(64 << 20).
		WithBlockCacheSize(64 << 20).
		WithValueThreshold(1 << 10).
		WithChecksumVerificationMode(options.OnBlockRead).
		WithVerifyValueChecksum(true)
}

// openDatabase opens the room's Badger database and names what went wrong
// if it cannot: a damaged file makes Badger fail, or panic, while it opens,
// and each cause has its own error and hint.
func openDatabase(dir string, readOnly bool) (db *badger.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("%w: opening it failed (%v); run cleanroom doctor", ErrDamaged, p)
		}
	}()
	db, err = badger.Open(databaseOptions(dir, readOnly))
	if err != nil {
		return nil, classifyOpenError(err)
	}
	return db, nil
}

func classifyOpenError(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, syscall.ENOSPC) || strings.Contains(msg, "no space left"):
		return fmt.Errorf("%w: %v", ErrDiskFull, err)
	case strings.Contains(msg, "Cannot acquire directory lock") || strings.Contains(msg, "resource temporarily unavailable"):
		return fmt.Errorf("%w: %v", ErrRoomBusy, err)
	case strings.Contains(msg, "checksum") || strings.Contains(msg, "MANIFEST") || strings.Contains(msg, "manifest") ||
		strings.Contains(msg, "corrupt") || strings.Contains(msg, "truncate") || strings.Contains(msg, "unexpected EOF") ||
		strings.Contains(msg, "CRC"):
		return fmt.Errorf("%w: %v; run cleanroom doctor", ErrDamaged, err)
	}
	return fmt.Errorf("cleanroom: opening the database: %w", err)
}
