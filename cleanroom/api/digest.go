package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
)

// Keyed digests. The room writes a digest of every result it returns (and
// of every query spec it answers) into its audit log, where auditors read
// them. A result is often low-entropy (a count, a rate, an answer without
// noise) and a spec is one of few an analyst would plausibly ask, so a plain
// hash of either would let whoever reads the log find it by trying
// candidates. Each digest is therefore an HMAC-SHA256 under the
// collaboration's digest key, which the room makes at random and gives to
// the collaboration's members only (GET /v1/collaborations/{id}/digest-key):
//
//	digest = hex(HMAC-SHA256(key, label || 0x00 || body))
//
// with a versioned label per kind of body, so that a digest of one kind
// never stands for another.
const (
	ResultDigestLabel = "cleanroom.dev/result-digest/v1"
	SpecDigestLabel   = "cleanroom.dev/spec-digest/v1"
	// ModelSpecDigestLabel and SegmentDigestLabel digest a model spec
	// (ModelSpec) and an activation's segment (SegmentSpec), as
	// SpecDigestLabel a query spec.
	ModelSpecDigestLabel = "cleanroom.dev/model-spec-digest/v1"
	SegmentDigestLabel   = "cleanroom.dev/segment-digest/v1"
	// DigestKeyIDLabel names a digest key in the audit log without
	// revealing it: hex(SHA-256(label || 0x00 || key)).
	DigestKeyIDLabel = "cleanroom.dev/digest-key-id/v1"
)

// DigestKeySize is the size of a collaboration's digest key in bytes.
const DigestKeySize = 32

// ErrDigestMismatch means a result or spec does not match the digest the
// room logged for it: the room returned something other than what it
// recorded, or the digest belongs to another result. The caller should not
// rely on the result.
var ErrDigestMismatch = errors.New("the result does not match the digest in the audit log")

// DigestKey is a collaboration's digest key, as members receive it. It is
// a secret of the members: its String and LogValue do not print it.
type DigestKey struct {
	Collaboration string `json:"collaboration"`
	Key           []byte `json:"key"` // DigestKeySize bytes, standard base64 in JSON
	ID            string `json:"id"`  // DigestKeyID of the key, as the audit log names it
}

func (k DigestKey) String() string { return "digest key " + k.ID + " of " + k.Collaboration }

// GoString keeps the key out of %#v.
func (k DigestKey) GoString() string { return k.String() }

// LogValue keeps the key out of structured logs.
func (k DigestKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// DigestKeyID names a digest key without revealing it.
func DigestKeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte(DigestKeyIDLabel))
	h.Write([]byte{0})
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil))
}

// KeyedDigest returns hex(HMAC-SHA256(key, label || 0x00 || body)).
func KeyedDigest(key []byte, label string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ResultBody returns the bytes the room digests for a result it returned:
// the JSON of a *MatchResult, *QueryResult or *ModelResult without its
// budget (which the room fills in after the entry is written, so that it
// shows the debit), or of an *Audience without the activations left.
func ResultBody(result any) ([]byte, error) {
	switch r := result.(type) {
	case *MatchResult:
		c := *r
		c.Budget = nil
		return json.Marshal(&c)
	case *QueryResult:
		c := *r
		c.Budget = BudgetInfo{}
		return json.Marshal(&c)
	case *ModelResult:
		c := *r
		c.Budget = BudgetInfo{}
		return json.Marshal(&c)
	case *Audience:
		c := *r
		c.ActivationsLeftToday, c.ActivationsLeft = 0, 0
		return json.Marshal(&c)
	}
	return nil, fmt.Errorf("api: no result digest is defined for %T", result)
}

// SpecBody returns the bytes the room digests for a query spec: its JSON.
func SpecBody(spec *QuerySpec) ([]byte, error) { return json.Marshal(spec) }

// CheckDigest reports whether body has the keyed digest want under label,
// comparing in constant time.
func CheckDigest(key []byte, label, want string, body []byte) error {
	if len(key) != DigestKeySize {
		return fmt.Errorf("api: a digest key has %d bytes", DigestKeySize)
	}
	if !hmac.Equal([]byte(KeyedDigest(key, label, body)), []byte(want)) {
		return ErrDigestMismatch
	}
	return nil
}
