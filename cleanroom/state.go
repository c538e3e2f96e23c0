package cleanroom

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// Sealed state (package store has the format): every record that decides
// what a member may do or has spent is sealed to the audit entry that wrote
// it, under a key derived from the room's checkpoint key, with a high-water
// mark beside it. At open the room checks every record against its log
// (checkState), so a record that went back to an older version, or a mark
// without its record (a budget that vanished), stops the room from
// starting; the log itself is checked against its signed checkpoints and
// the anchor file (audit.Options.Anchor), which catches the whole database
// going back.

// ErrCorruptState means a state record failed its check: damaged on disk,
// or not the version its audit log says it should be. The room refuses to
// use it; cleanroom doctor says what is wrong and what to do.
var ErrCorruptState = store.ErrCorruptState

// ErrCorruptSegment means stored data no longer matches its checksum. The
// room refuses to use it; restore the data directory from a backup.
var ErrCorruptSegment = store.ErrCorruptSegment

// stateKeyFrom derives the state key from the room's checkpoint key.
func stateKeyFrom(seed []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, seed, nil, store.Label, sha256.Size)
}

// dataDigestLabel separates the room's commitments to data it names in the
// audit log (dataDigest) from every other hash.
const dataDigestLabel = "cleanroom.dev/data-digest/v1"

// dataDigest commits, in the audit log, to data the room holds that a
// reader of the log could otherwise test guesses against: an upload part
// (in hashed mode, a part of one row is a token any member can compute and
// a few values), a join (an empty one hashes the same every time), the keys
// a deletion removed. It is HMAC-SHA256 under the state key, over the
// reference's name and the data's own digest: the room can show later which
// data an entry names, nobody else can tell anything from it, and no two
// references share one.
func (r *Room) dataDigest(name, digest string) string {
	m := hmac.New(sha256.New, r.stateKey)
	m.Write([]byte(dataDigestLabel))
	m.Write([]byte{0})
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(digest))
	return hex.EncodeToString(m.Sum(nil))
}

// StateProblem is one disagreement between the room's state and its log.
type StateProblem = store.Problem

// checkState checks every sealed record against the audit log
// (store.Check) and returns the problems found, the first hundred.
func (r *Room) checkState() (problems []StateProblem, err error) {
	// Badger slices a damaged block before it can fail its checksum, and
	// panics: on this goroutine, that is a damaged database, not a crash.
	defer func() {
		if p := recover(); p != nil {
			problems, err = nil, fmt.Errorf("reading it failed (%v)", p)
		}
	}()
	size := r.audit.Size()
	err = r.db.View(func(txn *badger.Txn) error {
		problems, err = store.Check(r.txn(txn), size)
		return err
	})
	return problems, err
}

// stateMismatch is the error of a room whose state disagrees with its log:
// the first problems, by record.
func stateMismatch(problems []StateProblem) error {
	var b strings.Builder
	for i, p := range problems {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(problems)-5)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Key + " " + p.Reason)
	}
	return fmt.Errorf("%w: %s; run cleanroom doctor", ErrStateMismatch, b.String())
}
