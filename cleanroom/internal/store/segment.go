package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/y"
)

// ErrCorruptSegment means stored data no longer matches its checksum.
var ErrCorruptSegment = errors.New("cleanroom: stored segment fails its checksum")

// Segments are sealed with a checksum, so that one damaged on disk is
// detected, not silently matched or aggregated: by the whole-database check
// (CheckSegments), and on every read by Badger's checksum of the same bytes
// (see openChecked). The seal is segmentTag and a big-endian CRC-32C of the
// payload, the checksum Badger and ext4 keep for the same purpose: it
// guards against decay, not against an adversary (who could recompute any
// unkeyed hash as easily), and every query and match reads whole datasets
// back, which a CRC-32C checks at several times SHA-256's speed.
const (
	segmentTag = "crc1"
	// SegmentSeal is the size of a segment's seal, before its payload.
	SegmentSeal = len(segmentTag) + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SealSegment returns payload sealed.
func SealSegment(payload []byte) []byte {
	out := make([]byte, SegmentSeal, SegmentSeal+len(payload))
	return SealInPlace(append(out, payload...))
}

// SealInPlace seals the payload that follows b's first SegmentSeal bytes,
// writing the seal in them: a payload read into place after room for its
// seal is stored without a copy.
func SealInPlace(b []byte) []byte {
	copy(b, segmentTag)
	binary.BigEndian.PutUint32(b[len(segmentTag):SegmentSeal], crc32.Checksum(b[SegmentSeal:], castagnoli))
	return b
}

// OpenSegment checks a sealed segment and returns its payload (aliasing b).
func OpenSegment(key, b []byte) ([]byte, error) {
	if len(b) >= SegmentSeal && string(b[:len(segmentTag)]) == segmentTag &&
		binary.BigEndian.Uint32(b[len(segmentTag):SegmentSeal]) == crc32.Checksum(b[SegmentSeal:], castagnoli) {
		return b[SegmentSeal:], nil
	}
	return nil, fmt.Errorf("%w: %s", ErrCorruptSegment, key)
}

// openChecked returns the payload of a sealed segment read through the
// room's database, checking its tag and length but not its CRC again: the
// room opens its database with Badger's value checksum on (every value read
// from the value log is checked against its CRC-32C, the seal's checksum)
// and its block checksum on every block read (every value stored in a
// table), so by the time Badger hands out a segment its bytes are those it
// wrote, and a second pass over them would find nothing the first did not.
// The seal's CRC is checked where every segment at rest is read
// (CheckSegments, cleanroom doctor). A database opened without those
// options must check each read with OpenSegment.
func openChecked(key, b []byte) ([]byte, error) {
	if len(b) >= SegmentSeal && string(b[:len(segmentTag)]) == segmentTag {
		return b[SegmentSeal:], nil
	}
	return nil, fmt.Errorf("%w: %s", ErrCorruptSegment, key)
}

// PutSegment writes payload, sealed, at key.
func PutSegment(txn *badger.Txn, key, payload []byte) error {
	return txn.Set(key, SealSegment(payload))
}

// ReadSegment calls fn with the payload of the segment at key, in place,
// without copying it out of the database: b is valid only during fn. The
// payload has been checked once, by Badger, not again by its seal (see
// openChecked); a checksum Badger finds wrong is ErrCorruptSegment: Badger
// v4 reports it by handing out the value empty, without an error, which is
// shorter than a seal (TestDamagedValueArrivesEmpty). Afterwards
// the segment's pages may leave the process's resident memory (see
// Resident).
func ReadSegment(txn *badger.Txn, key []byte, fn func(b []byte) error) error {
	return (*Resident)(nil).ReadSegment(txn, key, fn)
}

// ReadSegment is store.ReadSegment, releasing pages as r decides; txn must
// be read-only (see Resident.settle).
func (r *Resident) ReadSegment(txn *badger.Txn, key []byte, fn func(b []byte) error) error {
	it, err := txn.Get(key)
	if err != nil {
		return fmt.Errorf("store: reading %s: %w", key, err)
	}
	return r.readItem(txn, key, it, fn)
}

// readItem is ReadSegment of the item txn found at key.
func (r *Resident) readItem(txn *badger.Txn, key []byte, it *badger.Item, fn func(b []byte) error) error {
	var settle bool
	err := it.Value(func(v []byte) error {
		b, err := openChecked(it.Key(), v)
		if err != nil {
			return err
		}
		err = fn(b)
		settle = r.noteRead(key, v)
		return err
	})
	if settle && err == nil {
		r.settle(txn)
	}
	// Badger v4 returns no such error today (see above), and y.Wrapf
	// does not wrap with %w; kept for a version that does.
	if errors.Is(err, y.ErrChecksumMismatch) {
		return fmt.Errorf("%w: %s: %w", ErrCorruptSegment, key, err)
	}
	return err
}

// ReleaseSegment drops the pages of the segment at key, once written, from
// the process's resident memory, keeping them in the page cache (see
// releaseMapped): a part stored is not read again until the match.
func ReleaseSegment(txn *badger.Txn, key []byte) error {
	it, err := txn.Get(key)
	if err != nil {
		return fmt.Errorf("store: reading %s: %w", key, err)
	}
	return it.Value(func(v []byte) error { releaseMapped(v); return nil })
}

// GetSegment returns a copy of the checked payload of the segment at key.
func GetSegment(txn *badger.Txn, key []byte) ([]byte, error) {
	var out []byte
	err := ReadSegment(txn, key, func(b []byte) error { out = bytes.Clone(b); return nil })
	return out, err
}
