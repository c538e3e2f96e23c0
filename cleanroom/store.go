package cleanroom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/dgraph-io/badger/v4"
)

// Key layout of the room's Badger database. The audit log keeps its own
// keys under "audit/" (package audit).
const (
	prefixPrincipal = "principal/" // id → principalRecord
	prefixCollab    = "collab/"    // id → collabRecord
	prefixSecret    = "secret/"    // collab/to → api.SealedSecret
	prefixUpload    = "upload/"    // upload id → uploadRecord
	prefixSegment   = "seg/"       // upload/part → checksummed rows of one part
	prefixLayer     = "layer/"     // collab/owner/layer/part → checksummed (element, row) pairs
	prefixTask      = "task/"      // task id/part → checksummed shuffled elements and their rows
	prefixJoin      = "join/"      // collab/run/part → checksummed rows of matches
	prefixJTI       = "jti/"       // issuer/sha256(jti) → seen (expires with the token)
	prefixBudget    = "budget/"    // collab → budgetRecord
)

// ErrCorruptSegment means stored data no longer matches its checksum. The
// room refuses to use it; restore the data directory from a backup.
var ErrCorruptSegment = errors.New("cleanroom: stored segment fails its checksum")

// errNotFound is returned by Room.get for a missing record.
var errNotFound = errors.New("not found")

// Segments are sealed with a checksum, so that one damaged on disk is
// detected when read, not silently matched or aggregated. The seal is
// sealTag and a big-endian CRC-32C of the payload, the checksum Badger and
// ext4 keep for the same purpose: it guards against decay, not against an
// adversary (who could recompute any unkeyed hash as easily), and every
// query and match reads whole datasets back, which a CRC-32C checks at
// several times SHA-256's speed.
const (
	sealTag  = "crc1"
	sealSize = len(sealTag) + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sealSegment returns payload sealed.
func sealSegment(payload []byte) []byte {
	out := make([]byte, sealSize, sealSize+len(payload))
	return sealInPlace(append(out, payload...))
}

// sealInPlace seals the payload after b's first sealSize bytes, in them.
func sealInPlace(b []byte) []byte {
	copy(b, sealTag)
	binary.BigEndian.PutUint32(b[len(sealTag):sealSize], crc32.Checksum(b[sealSize:], castagnoli))
	return b
}

// openSegment checks a sealed segment and returns its payload (aliasing b).
func openSegment(key []byte, b []byte) ([]byte, error) {
	if len(b) >= sealSize && string(b[:len(sealTag)]) == sealTag &&
		binary.BigEndian.Uint32(b[len(sealTag):sealSize]) == crc32.Checksum(b[sealSize:], castagnoli) {
		return b[sealSize:], nil
	}
	return nil, fmt.Errorf("%w: %s", ErrCorruptSegment, key)
}

// readSegment calls fn with the checked segment at key in place, without
// copying it out of the database: b is valid only during fn.
func readSegment(txn *badger.Txn, key string, fn func(b []byte) error) error {
	it, err := txn.Get([]byte(key))
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	return it.Value(func(v []byte) error {
		b, err := openSegment(it.Key(), v)
		if err != nil {
			return err
		}
		return fn(b)
	})
}

// getSegment reads and checks the segment at key, returning a copy.
func getSegment(txn *badger.Txn, key string) ([]byte, error) {
	var out []byte
	err := readSegment(txn, key, func(b []byte) error { out = bytes.Clone(b); return nil })
	return out, err
}

func partKey(prefix string, part int) string { return fmt.Sprintf("%s/%08d", prefix, part) }
