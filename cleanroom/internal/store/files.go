package store

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// Files keeps segments in files of their own, one a segment, in a
// directory beside the database: the upload parts, which are most of a
// room's data. Badger writes every value through one goroutine, which
// copies it into its memory-mapped value log and syncs the log for the
// whole batch of writers; a part written to its own file is written and
// synced by the request that received it, on as many cores as requests
// arrive, and is read back with one pread into a buffer instead of being
// mapped into the process (a mapping counts in the room's resident memory
// until it is released, and costs a page fault for every folio each time
// it is read again). BenchmarkWriteSegment: 3.8–4.7 ms of CPU to store a
// 4 MiB part durably, against 17.8–20.8 ms through Badger;
// BenchmarkReadSegment: 6.5–8.1 ms to read 64 MiB of parts, every seal
// checked, against 33.5 ms in place with the room's releases.
//
// A file holds the sealed segment (seal and payload, as Badger would), and
// its key in Badger holds a reference: fileRefTag, the seal's CRC-32C, the
// file's size and its name. The file is written and synced, with its
// directory entry, before the transaction that stores the reference commits,
// so a committed key never names a file that is not on disk. A file that no
// key names (its commit failed or was refused, the room stopped between the
// two, or the key was deleted and the room stopped before the file was) is
// removed by Sweep when the room opens.
//
// A read checks the payload against the file's seal, and the seal against
// the reference, so a file damaged, cut short, lengthened or swapped for
// another is ErrCorruptSegment, never read as the segment (Badger's value
// checksum no longer covers these bytes).
type Files struct {
	dir  string
	db   *badger.DB // for Sweep, and to tell a file deleted while read from one lost
	bufs sync.Pool  // *[]byte read buffers
}

const (
	fileRefTag = "fil1"
	// fileNameLen is a file's name: 32 hex digits of a random 128-bit
	// number, then fileSuffix.
	fileSuffix  = ".seg"
	fileNameLen = 32 + len(fileSuffix)
	// fileRefLen is a reference's length: tag, CRC-32C, size, name.
	fileRefLen = len(fileRefTag) + 4 + 8 + fileNameLen
)

// ErrSegmentGone means a segment's key was deleted (its data replaced or
// retired) while it was being read: not damage.
var ErrSegmentGone = errors.New("store: the segment was deleted while it was read")

// NewFiles returns the segment files in dir, for db's keys. MakeDir makes
// dir, before the first Write; a room that never wrote one has none.
func NewFiles(dir string, db *badger.DB) *Files {
	return &Files{dir: dir, db: db}
}

// fileRef is a parsed reference.
type fileRef struct {
	crc  uint32
	size int64
	name string
}

// parseFileRef parses v as a reference, reporting whether it is one: its
// length and tag, a size that holds at least a seal, and a name of exactly
// the form Write gives (so that no damaged value names a path outside the
// directory).
func parseFileRef(v []byte) (fileRef, bool) {
	if len(v) != fileRefLen || string(v[:len(fileRefTag)]) != fileRefTag {
		return fileRef{}, false
	}
	v = v[len(fileRefTag):]
	r := fileRef{crc: binary.BigEndian.Uint32(v), size: int64(binary.BigEndian.Uint64(v[4:])), name: string(v[12:])}
	if r.size < int64(SegmentSeal) || r.size > maxFileSegment || !validFileName(r.name) {
		return fileRef{}, false
	}
	return r, true
}

// maxFileSegment bounds the size a reference may claim, so that a damaged
// one cannot make a read allocate without bound: far above any part
// (api.MaxPartBytes is 64 MiB).
const maxFileSegment = 1 << 30

func validFileName(name string) bool {
	if len(name) != fileNameLen || !strings.HasSuffix(name, fileSuffix) {
		return false
	}
	for _, c := range []byte(name[:32]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (r fileRef) encode() []byte {
	b := make([]byte, 0, fileRefLen)
	b = append(b, fileRefTag...)
	b = binary.BigEndian.AppendUint32(b, r.crc)
	b = binary.BigEndian.AppendUint64(b, uint64(r.size))
	return append(b, r.name...)
}

// Write stores sealed (a sealed segment) in a new file, synced with its
// directory entry, and returns the reference to store at the segment's key.
// Until a committed key holds the reference, the file is the caller's to
// Remove (or Sweep's, after a restart).
func (f *Files) Write(sealed []byte) (ref []byte, err error) {
	if len(sealed) < SegmentSeal || string(sealed[:len(segmentTag)]) != segmentTag {
		return nil, errors.New("store: writing a segment file: not a sealed segment")
	}
	var id [16]byte
	rand.Read(id[:])
	r := fileRef{crc: binary.BigEndian.Uint32(sealed[len(segmentTag):]), size: int64(len(sealed)), name: hex.EncodeToString(id[:]) + fileSuffix}
	path := filepath.Join(f.dir, r.name)
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: writing a segment file: %w", err)
	}
	err = writeInPieces(file, sealed)
	if err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(f.dir)
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("store: writing a segment file: %w", err)
	}
	return r.encode(), nil
}

// writePiece is the most writeInPieces hands the kernel at once.
const writePiece = 256 << 10

// writeInPieces writes b to f at most writePiece bytes a call. Linux
// places a write in page-cache folios as large as the write (ext4 among
// others, from Linux 6.x), up to 2 MiB, and finding free memory in blocks
// that large costs far more than in small ones: on this development
// machine (a virtual machine whose free memory the host takes back in
// 2 MiB blocks) 1 GiB written in 4 MiB calls took 2.2–2.7 s of system
// time, in 256 KiB calls 0.15–0.2 s, and reading it back the same either
// way (BenchmarkFileWrites measures both in one run). Elsewhere the
// sixteen calls a part cost microseconds.
func writeInPieces(f *os.File, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), writePiece)
		if _, err := f.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// MakeDir makes the directory of the files, if it is not there, and makes
// its own name durable: Write syncs a file and the directory's entries, not
// the directory's entry in its parent, so a crash after the first parts
// committed could otherwise lose the directory and every file their keys
// name (POSIX leaves it to the caller; not every file system journals it).
func (f *Files) MakeDir() error {
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return fmt.Errorf("store: making the segment directory: %w", err)
	}
	if err := syncDir(filepath.Dir(f.dir)); err != nil {
		return fmt.Errorf("store: syncing the segment directory's parent: %w", err)
	}
	return nil
}

// syncDir makes the directory's entries durable: a file's own sync does
// not, on every file system, make its name durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Remove removes the files that refs (values Write returned, or Named
// found) name. A file already gone is not an error.
func (f *Files) Remove(refs ...[]byte) error {
	var errs []error
	for _, v := range refs {
		r, ok := parseFileRef(v)
		if !ok {
			continue
		}
		if err := os.Remove(filepath.Join(f.dir, r.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Named returns the references held by those of keys that name a file, for
// removing the files once the keys are deleted.
func (f *Files) Named(txn *badger.Txn, keys [][]byte) ([][]byte, error) {
	var refs [][]byte
	for _, k := range keys {
		it, err := txn.Get(k)
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store: reading %s: %w", k, err)
		}
		if v, ok, err := refOf(it); err != nil {
			return nil, err
		} else if ok {
			refs = append(refs, v)
		}
	}
	return refs, nil
}

// refOf returns the item's value if it is a file reference. Only a small
// value is read, not a segment kept in Badger; the bound is loose because
// ValueSize is approximate for a value in the value log, and a reference
// taken for something else would let Sweep remove its file.
func refOf(it *badger.Item) ([]byte, bool, error) {
	if it.ValueSize() > 4*int64(fileRefLen) {
		return nil, false, nil
	}
	v, err := it.ValueCopy(nil)
	if err != nil {
		return nil, false, fmt.Errorf("store: reading %s: %w", it.Key(), err)
	}
	_, ok := parseFileRef(v)
	return v, ok, nil
}

// Sweep removes the segment files that no key names, and reports how many
// it removed. It must run before anything writes segment files (when the
// room opens): a file written and not yet named by its commit would look
// unnamed.
func (f *Files) Sweep() (int, error) {
	entries, err := os.ReadDir(f.dir)
	if errors.Is(err, fs.ErrNotExist) || err == nil && len(entries) == 0 {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: listing segment files: %w", err)
	}
	named := map[string]bool{}
	err = f.db.View(func(txn *badger.Txn) error {
		for _, p := range segmentPrefixes {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(p)})
			for it.Rewind(); it.Valid(); it.Next() {
				v, ok, err := refOf(it.Item())
				if err != nil {
					it.Close()
					return err
				}
				if ok {
					r, _ := parseFileRef(v)
					named[r.name] = true
				}
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, e := range entries {
		// A directory of a file's name is not one Write made: left for the
		// operator (a read of it is damage), never a reason not to open.
		if name := e.Name(); validFileName(name) && !named[name] && !e.IsDir() {
			if err := os.Remove(filepath.Join(f.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, fmt.Errorf("store: removing an unnamed segment file: %w", err)
			}
			removed++
		}
	}
	return removed, nil
}

// ReadSegment calls fn with the checked payload of the segment at key, read
// from its file if the key names one, else from Badger through inDB
// (Resident.ReadSegment): b is valid only during fn. txn must be
// read-only.
func (f *Files) ReadSegment(txn *badger.Txn, key []byte, inDB *Resident, fn func(b []byte) error) error {
	it, err := txn.Get(key)
	if err != nil {
		return fmt.Errorf("store: reading %s: %w", key, err)
	}
	v, ok, err := refOf(it)
	if err != nil {
		return err
	}
	if !ok {
		return inDB.readItem(txn, key, it, fn)
	}
	r, _ := parseFileRef(v)
	err = f.read(key, r, fn)
	if errors.Is(err, fs.ErrNotExist) && f.gone(key, v) {
		return fmt.Errorf("%w: %s", ErrSegmentGone, key)
	}
	return err
}

// gone reports whether key, read as naming the file of ref, names it no
// more: deleted (or replaced) since, so its file went with it.
// A key that cannot be read again is not known to be gone: the missing
// file is then damage, never a benign answer.
func (f *Files) gone(key, ref []byte) bool {
	var gone bool
	f.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			gone = true
			return nil
		}
		if err != nil {
			return err
		}
		v, ok, err := refOf(it)
		gone = err == nil && (!ok || string(v) != string(ref))
		return nil
	})
	return gone
}

// read reads the file of r into a buffer and calls fn with its checked
// payload. A missing file wraps both ErrCorruptSegment and fs.ErrNotExist.
func (f *Files) read(key []byte, r fileRef, fn func(b []byte) error) error {
	file, err := os.Open(filepath.Join(f.dir, r.name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s: its file %s is missing: %w", ErrCorruptSegment, key, r.name, err)
	}
	if err != nil {
		return fmt.Errorf("store: reading %s: %w", key, err)
	}
	defer file.Close()
	// The size first, so that a damaged reference allocates nothing; the
	// kind too: a directory or device of the file's name is damage, not a
	// read error.
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("store: reading %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s: its file %s is not a regular file (%s)", ErrCorruptSegment, key, r.name, fi.Mode().Type())
	}
	if fi.Size() != r.size {
		return fmt.Errorf("%w: %s: its file %s holds %d bytes, not %d", ErrCorruptSegment, key, r.name, fi.Size(), r.size)
	}
	bp := f.buffer(int(r.size))
	defer f.bufs.Put(bp)
	n, err := io.ReadFull(file, *bp)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s: its file %s holds %d bytes, not %d", ErrCorruptSegment, key, r.name, n, r.size)
	}
	if err != nil {
		return fmt.Errorf("store: reading %s: %w", key, err)
	}
	b := (*bp)[:n]
	payload, err := OpenSegment(key, b)
	if err != nil {
		return err
	}
	if binary.BigEndian.Uint32(b[len(segmentTag):]) != r.crc {
		return fmt.Errorf("%w: %s: its file %s holds another segment", ErrCorruptSegment, key, r.name)
	}
	return fn(payload)
}

// buffer returns a pooled buffer of length n.
func (f *Files) buffer(n int) *[]byte {
	bp, _ := f.bufs.Get().(*[]byte)
	if bp == nil || cap(*bp) < n {
		b := make([]byte, n)
		return &b
	}
	*bp = (*bp)[:n]
	return bp
}

// checkFile checks the segment at key whose value is v: its file if v is a
// reference, else v itself.
func (f *Files) checkFile(key, v []byte) error {
	r, ok := parseFileRef(v)
	if !ok {
		_, err := OpenSegment(key, v)
		return err
	}
	if f == nil {
		return fmt.Errorf("%w: %s names a file, and no segment directory was given", ErrCorruptSegment, key)
	}
	return f.read(key, r, func([]byte) error { return nil })
}
