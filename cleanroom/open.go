package cleanroom

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/fb"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/badger/v4/y"
	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/proto"
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
//
// Badger's value checksum is the one check on read of every value the
// value log holds (those over the 1 KiB ValueThreshold), so it stays on:
// sealed records have their MAC as well, but audit entries are read by the
// room (Entries: budget history, the state check at open) without their
// leaf hash being compared, and checkpoints without their signature, so
// without it a decayed entry would be read as written. Segments (upload
// parts, layers, relay tasks, join tables, audiences) rely on it alone when
// read: a second CRC-32C pass over the same bytes, the segment's seal,
// would find nothing the first did not, and is left to the checks that
// read every segment at rest (cleanroom doctor). See store.ReadSegment.
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
	if err := checkTableFiles(dir); err != nil {
		return nil, err
	}
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

// checkTableFiles checks every table the database's MANIFEST names before
// Badger opens it: Badger reads a table's index from offsets in its footer
// without checking them, and slices its first and last blocks by their
// trailers before verifying their checksums, in goroutines of its own, so
// a damaged table makes it panic where nothing can recover. Here the same
// footer and every block are read with every length checked and every
// checksum verified; a table that fails is named in ErrDamaged. Table
// files the MANIFEST does not name are left alone: a crash while a table
// was being written leaves one, and Badger deletes it as it opens.
func checkTableFiles(dir string) error {
	tables, err := manifestTables(dir)
	if err != nil {
		return fmt.Errorf("%w: its MANIFEST: %v; run cleanroom doctor", ErrDamaged, err)
	}
	for id, tm := range tables {
		name := table.IDToFilename(id)
		if err := checkTable(filepath.Join(dir, name), tm.Compression); err != nil {
			return fmt.Errorf("%w: table %s: %v; run cleanroom doctor", ErrDamaged, name, err)
		}
	}
	return nil
}

// manifestTables are the tables the MANIFEST in dir names, none if there
// is no MANIFEST yet (a new database).
func manifestTables(dir string) (tables map[uint64]badger.TableManifest, err error) {
	f, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	defer func() {
		if p := recover(); p != nil {
			tables, err = nil, fmt.Errorf("reading it failed (%v)", p)
		}
	}()
	m, _, err := badger.ReplayManifestFile(f, 0, databaseOptions(dir, true))
	if err != nil {
		return nil, err
	}
	return m.Tables, nil
}

// checkTable reads a table's footer as Badger's table.initIndex does: from
// the end, the checksum's length (4 bytes), the checksum of the index, the
// index's length (4 bytes), the index; then its blocks.
func checkTable(path string, compression options.CompressionType) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	at := len(b)
	take := func(n int) ([]byte, error) {
		if n < 0 || n > at {
			return nil, errors.New("its footer points outside the file")
		}
		at -= n
		return b[at : at+n], nil
	}
	n, err := take(4)
	if err != nil {
		return err
	}
	sum, err := take(int(y.BytesToU32(n)))
	if err != nil {
		return err
	}
	var chk pb.Checksum
	if err := proto.Unmarshal(sum, &chk); err != nil {
		return errors.New("its index checksum is unreadable")
	}
	if n, err = take(4); err != nil {
		return err
	}
	index, err := take(int(y.BytesToU32(n)))
	if err != nil {
		return err
	}
	if err := y.VerifyChecksum(index, &chk); err != nil {
		return errors.New("its index fails its checksum")
	}
	return checkTableBlocks(b[:at], index, compression)
}

// checkTableBlocks checks every block the verified index names: its place
// in the file, its decompression and its checksum, reading the block's
// trailer as Badger's table.block does but with every length checked.
// Badger reads a table's first and last blocks while it opens, in
// goroutines of its own, and slices a block by its trailer's lengths
// before it verifies the checksum: a flipped bit there is a panic nothing
// can recover.
func checkTableBlocks(data, index []byte, compression options.CompressionType) error {
	ti := fb.GetRootAsTableIndex(index, 0)
	var ko fb.BlockOffset
	for i := range ti.OffsetsLength() {
		if !ti.Offsets(&ko, i) {
			return fmt.Errorf("block %d is missing from its index", i)
		}
		off, n := int(ko.Offset()), int(ko.Len())
		if off < 0 || n < 0 || off > len(data)-n {
			return fmt.Errorf("block %d lies outside the file", i)
		}
		blk, err := decompressBlock(data[off:off+n], compression)
		if err != nil {
			return fmt.Errorf("block %d does not decompress", i)
		}
		if err := checkBlock(blk); err != nil {
			return fmt.Errorf("block %d: %v", i, err)
		}
	}
	return nil
}

// decompressBlock undoes a block's compression as Badger's
// table.decompress does.
func decompressBlock(b []byte, compression options.CompressionType) ([]byte, error) {
	switch compression {
	case options.None:
		return b, nil
	case options.Snappy:
		return snappy.Decode(nil, b)
	case options.ZSTD:
		return y.ZSTDDecompress(nil, b)
	}
	return nil, fmt.Errorf("unknown compression %d", compression)
}

// checkBlock checks a decompressed block's trailer (from the end: the
// checksum's length, the checksum, the entry count, the entry offsets) and
// its checksum, which covers everything before the checksum.
func checkBlock(b []byte) error {
	if len(b) < 8 {
		return errors.New("it is too short")
	}
	n := int(y.BytesToU32(b[len(b)-4:]))
	if n > len(b)-8 {
		return errors.New("its checksum's length is beyond it")
	}
	end := len(b) - 4 - n
	var chk pb.Checksum
	if err := proto.Unmarshal(b[end:end+n], &chk); err != nil {
		return errors.New("its checksum is unreadable")
	}
	if entries := int(y.BytesToU32(b[end-4 : end])); entries > (end-4)/4 {
		return errors.New("its entry count is beyond it")
	}
	if err := y.VerifyChecksum(b[:end], &chk); err != nil {
		return errors.New("it fails its checksum")
	}
	return nil
}
