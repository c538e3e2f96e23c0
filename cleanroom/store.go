package cleanroom

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"

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

// errNotFound is returned by getJSON for a missing key.
var errNotFound = errors.New("not found")

func getJSON(txn *badger.Txn, key string, v any) error {
	it, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	return it.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

func putJSON(txn *badger.Txn, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set([]byte(key), b)
}

// sealSegment prefixes payload with its SHA-256, so that a segment damaged
// on disk is detected when read, not silently matched or aggregated.
func sealSegment(payload []byte) []byte {
	sum := sha256.Sum256(payload)
	out := make([]byte, 0, len(sum)+len(payload))
	return append(append(out, sum[:]...), payload...)
}

// openSegment checks a sealed segment and returns its payload (aliasing b).
func openSegment(key []byte, b []byte) ([]byte, error) {
	if len(b) < sha256.Size {
		return nil, fmt.Errorf("%w: %s", ErrCorruptSegment, key)
	}
	sum := sha256.Sum256(b[sha256.Size:])
	if subtle.ConstantTimeCompare(sum[:], b[:sha256.Size]) != 1 {
		return nil, fmt.Errorf("%w: %s", ErrCorruptSegment, key)
	}
	return b[sha256.Size:], nil
}

// getSegment reads and checks the segment at key, returning a copy.
func getSegment(txn *badger.Txn, key string) ([]byte, error) {
	it, err := txn.Get([]byte(key))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	b, err := it.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	return openSegment(it.Key(), b)
}

func partKey(prefix string, part int) string { return fmt.Sprintf("%s/%08d", prefix, part) }
