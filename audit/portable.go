package audit

import (
	"crypto/ed25519"
	"io"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/opencleanroom/cleanroom/audit/bundle"
)

// The log's portable half (entries, checkpoints, bundles and their offline
// verification) lives in package audit/bundle, which a verifier imports
// without the storage engine. These names keep it one API with the log.

// Entries and their canonical encoding.
type (
	Entry    = bundle.Entry
	Decision = bundle.Decision
	DataRef  = bundle.DataRef
)

// EntryVersion is the version of the canonical entry encoding that the log
// writes: every entry it appends has a salt (bundle.EntryVersion).
const EntryVersion = bundle.EntryVersion

// MaxEntrySize bounds an encoded entry (bundle.MaxEntrySize).
const MaxEntrySize = bundle.MaxEntrySize

// ErrInvalidEntry is wrapped by every validation error (bundle.ErrInvalidEntry):
// an action that cannot be audited is not taken.
var ErrInvalidEntry = bundle.ErrInvalidEntry

// ParseEntry decodes a canonical entry (bundle.ParseEntry).
func ParseEntry(b []byte) (Entry, error) { return bundle.ParseEntry(b) }

// Checkpoints and proofs.
type Checkpoint = bundle.Checkpoint

// ErrCheckpoint means a checkpoint is malformed or its signature does not
// verify (bundle.ErrCheckpoint).
var ErrCheckpoint = bundle.ErrCheckpoint

// ErrProof means a proof does not check out (bundle.ErrProof).
var ErrProof = bundle.ErrProof

// ParseCheckpoint verifies a signed checkpoint with v and parses it.
func ParseCheckpoint(signed []byte, v note.Verifier) (*Checkpoint, error) {
	return bundle.ParseCheckpoint(signed, v)
}

// VerifierKey returns the signed-note verifier key for a room's public key.
func VerifierKey(origin string, pub ed25519.PublicKey) (string, error) {
	return bundle.VerifierKey(origin, pub)
}

// CheckInclusion verifies that entry is entry index of the tree c signs.
func CheckInclusion(c *Checkpoint, index int64, entry []byte, p tlog.RecordProof) error {
	return bundle.CheckInclusion(c, index, entry, p)
}

// CheckConsistency verifies that the tree older signs is a prefix of newer's.
func CheckConsistency(older, newer *Checkpoint, p tlog.TreeProof) error {
	return bundle.CheckConsistency(older, newer, p)
}

// Bundles and their verification.
const (
	BundleFormat       = bundle.BundleFormat
	SparseBundleFormat = bundle.SparseBundleFormat
)

type (
	Report      = bundle.Report
	VerifyError = bundle.VerifyError
)

// Verify checks an export bundle of either format offline (bundle.Verify).
func Verify(r io.Reader, v note.Verifier, since []byte) (*Report, error) {
	return bundle.Verify(r, v, since)
}

// VerifyEntries is Verify that also hands fn every entry (bundle.VerifyEntries).
func VerifyEntries(r io.Reader, v note.Verifier, since []byte, fn func(index int64, e Entry) error) (*Report, error) {
	return bundle.VerifyEntries(r, v, since, fn)
}

// The privacy budget as the log tells it.
const MicroEpsilon = bundle.MicroEpsilon

// BudgetLedger is what each collaboration was charged (bundle.BudgetLedger).
type BudgetLedger = bundle.BudgetLedger

// ReconcileBudget sums what the entries charged each collaboration.
func ReconcileBudget(entries []Entry) BudgetLedger { return bundle.ReconcileBudget(entries) }

// parseUnverified reads a checkpoint the log itself stored. Its signature
// is checked by whoever relies on it (Verify, checkAgainstCheckpoint).
func parseUnverified(signed []byte) (*Checkpoint, error) { return bundle.ParseUnverified(signed) }

// RequestToken is the token of a request id of principal's, whose request
// key is key: it finds that request's entries (IsRequestToken).
func RequestToken(key []byte, principal, id string) []byte {
	return bundle.RequestToken(key, principal, id)
}

// RequestDigest is what an entry of salt holds for the request of token
// (Entry.RequestID).
func RequestDigest(token []byte, salt string) string { return bundle.RequestDigest(token, salt) }

// IsRequestToken reports whether e was logged for the request of token.
func IsRequestToken(e Entry, token []byte) bool { return bundle.IsRequestToken(e, token) }

// IsRequest reports whether e was logged for the request id id, its
// principal's request key being key (nil if the caller holds none).
func IsRequest(e Entry, key []byte, id string) bool { return bundle.IsRequest(e, key, id) }
