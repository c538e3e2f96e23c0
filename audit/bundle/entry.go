package bundle

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Versions of the canonical entry encoding, written as "v" in every entry.
// An entry with a salt is written as EntryVersion; one without a salt that
// records a budget charge or a spec digest as version 2; one that records
// none of the three keeps the first encoding. Each keeps its encoding byte
// for byte, so that entries logged before a field existed still hash to
// the leaves the room recorded. A verifier that reads only the earlier
// versions refuses a later one by its number rather than by its unknown
// fields.
const (
	entryVersion1 = 1
	entryVersion2 = 2
	EntryVersion  = 3
)

// Entry is one audited action: who did what, to which collaboration, what
// policy decided, and digests of the data touched. It never holds an
// identifier, a token or a data value: data are named and described by their
// SHA-256 digest and size only, and Validate refuses anything longer or
// stranger than a name, a reason or a digest.
type Entry struct {
	Time          time.Time // when the room decided; stored in UTC
	Principal     string    // who acted: a partner id, or "room" for the room itself
	Role          string    // partner, analyst, auditor or operator
	Action        string    // e.g. "dataset.upload", "query.run"
	Collaboration string    // the collaboration acted on, if any
	Decision      Decision
	Data          []DataRef // the data touched, by digest
	// EpsilonMicro is the privacy budget the action charged its
	// collaboration, in micro-epsilon (1 ε = 1,000,000), the budget
	// ledger's unit; 0 when it charged none. ReconcileBudget sums it.
	EpsilonMicro int64
	// SpecDigest is the keyed digest (HMAC-SHA256, hex) of the query spec
	// the action answered, if any: keyed like ResultDigest, because a spec
	// is chosen by an analyst from few plausible ones and a plain hash
	// would tell an auditor which.
	SpecDigest string
	// ResultDigest is the keyed digest (HMAC-SHA256 under the
	// collaboration's digest key, hex) of the result returned, if any:
	// members, who hold the key, check a result against it; nobody else
	// can test guesses of a low-entropy result against it.
	ResultDigest string
	// RequestID names the request the action answered. A caller may
	// choose its request's id (X-Request-Id, as a client does to find its
	// own export in the bundle it gets), so the log keeps no text a caller
	// chose: the log (audit.Log's appends) replaces the id it is given by
	// RequestDigest(RequestToken(key, Principal, id), Salt), under the
	// principal's request key, which the room gives that principal alone:
	// the sender finds its entries, discloses one request by its token,
	// and a reader without either cannot test a guess of the id. Entries
	// logged before ids were keyed hold SaltedRequestDigest(Salt,
	// Principal, id); entries logged before entries had salts, the id
	// itself.
	RequestID string
	// Salt is 128 random bits of the room's, in lowercase hex (SaltSize
	// characters), that the log gives every entry it appends. A reader
	// who may not see an entry still reads its leaf hash in the inclusion
	// proofs of its neighbours; without the salt, an entry whose fields
	// can all be guessed (a refusal: its time, principal, action, policy
	// and one of a few reasons) could be tested against it.
	Salt string
}

// SaltSize is the length of an entry's salt in hex.
const SaltSize = 32

// RequestKeySize is the size of a principal's request key, and of a
// request token, in bytes.
const RequestKeySize = 32

// RequestToken is the token of the request id id of principal's, whose
// request key is key: HMAC-SHA256 with key over
// "cleanroom.dev/request-token/v1", principal and id, each followed by a
// zero byte. The token finds that request's entries (RequestDigest) and no
// other's: the principal hands it, not its key, to whoever is to find the
// request.
func RequestToken(key []byte, principal, id string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(fields("cleanroom.dev/request-token/v1", principal, id))
	return h.Sum(nil)
}

// RequestDigest is what an entry of salt holds for the request of token
// (RequestToken; Entry.RequestID): the first 128 bits, in lowercase hex,
// of HMAC-SHA256 with token over "cleanroom.dev/request-id/v2" and salt,
// each followed by a zero byte. Keyed, so that only whoever holds the
// principal's request key or the request's token (and the room) can find
// the entry of an id or test a guess of one; salted, so that one id's
// digest differs from entry to entry and a reader cannot match an id
// across entries.
func RequestDigest(token []byte, salt string) string {
	h := hmac.New(sha256.New, token)
	h.Write(fields("cleanroom.dev/request-id/v2", salt))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// SaltedRequestDigest is what an entry of salt and principal logged before
// request ids were keyed holds for the request id id: the first 128 bits,
// in lowercase hex, of SHA-256 of "cleanroom.dev/request-id/v1", salt,
// principal and id, each followed by a zero byte. Anyone who reads the
// entry can test a guess of the id against it.
func SaltedRequestDigest(salt, principal, id string) string {
	sum := sha256.Sum256(fields("cleanroom.dev/request-id/v1", salt, principal, id))
	return hex.EncodeToString(sum[:16])
}

// IsRequestToken reports whether e was logged for the request of token
// (RequestToken).
func IsRequestToken(e Entry, token []byte) bool {
	return e.RequestID != "" && e.Salt != "" && len(token) == RequestKeySize &&
		hmac.Equal([]byte(e.RequestID), []byte(RequestDigest(token, e.Salt)))
}

// IsRequest reports whether e was logged for the request id id: under the
// request key key of e's principal (RequestDigest), salted only
// (SaltedRequestDigest), or, for an entry without a salt, as the id
// itself. key may be nil when the caller holds none.
func IsRequest(e Entry, key []byte, id string) bool {
	switch {
	case e.RequestID == "" || id == "":
		return false
	case e.Salt == "":
		return e.RequestID == id
	case len(key) > 0 && IsRequestToken(e, RequestToken(key, e.Principal, id)):
		return true
	default:
		// Unkeyed, its digest is no secret: == will do.
		return e.RequestID == SaltedRequestDigest(e.Salt, e.Principal, id)
	}
}

// fields is ss, each followed by a zero byte.
func fields(ss ...string) []byte {
	b := make([]byte, 0, 128)
	for _, s := range ss {
		b = append(append(b, s...), 0)
	}
	return b
}

// Decision is the policy's verdict on the action.
type Decision struct {
	Allow      bool
	PolicyHash string   // SHA-256 (hex) of the policy that decided
	Reasons    []string // why it was denied (policy sentences, no data)
}

// DataRef describes data an action touched without containing it.
type DataRef struct {
	Name   string // e.g. "dataset/7", "join/3"
	Digest string // SHA-256, 64 lowercase hex characters
	Bytes  int64
	Rows   int64
}

// wireEntry is the canonical encoding: fixed field order, UTC time in RFC
// 3339 with nanoseconds, empty fields omitted. encoding/json writes struct
// fields in declaration order and escapes deterministically, so one Entry
// always encodes to the same bytes, and Verify checks that stored bytes are
// exactly that encoding.
type wireEntry struct {
	V             int        `json:"v"`
	Time          string     `json:"time"`
	Principal     string     `json:"principal"`
	Role          string     `json:"role,omitempty"`
	Action        string     `json:"action"`
	Collaboration string     `json:"collaboration,omitempty"`
	Decision      wireDecis  `json:"decision"`
	Data          []wireData `json:"data,omitempty"`
	EpsilonMicro  int64      `json:"epsilon_micro,omitempty"`
	SpecDigest    string     `json:"spec_digest,omitempty"`
	ResultDigest  string     `json:"result_digest,omitempty"`
	RequestID     string     `json:"request_id,omitempty"`
	Salt          string     `json:"salt,omitempty"`
}

type wireDecis struct {
	Allow      bool     `json:"allow"`
	PolicyHash string   `json:"policy_hash,omitempty"`
	Reasons    []string `json:"reasons,omitempty"`
}

type wireData struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Bytes  int64  `json:"bytes,omitempty"`
	Rows   int64  `json:"rows,omitempty"`
}

// Limits on an entry, so that it can describe an action but not carry data.
const (
	maxName    = 200
	maxReason  = 500
	maxReasons = 32
	maxRefs    = 64
	// MaxEntrySize bounds an encoded entry.
	MaxEntrySize = 32 << 10
)

// ErrInvalidEntry is wrapped by every validation error. The caller's action
// must not proceed: an action that cannot be audited is not taken.
var ErrInvalidEntry = errors.New("invalid audit entry")

func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidEntry, fmt.Sprintf(format, a...))
}

// Validate reports whether e can be logged.
func (e *Entry) Validate() error {
	if e.Time.IsZero() {
		return invalidf("time is zero")
	}
	if e.Principal == "" || e.Action == "" {
		return invalidf("principal and action are required")
	}
	for _, f := range []struct{ name, v string }{
		{"principal", e.Principal}, {"role", e.Role}, {"action", e.Action},
		{"collaboration", e.Collaboration}, {"request id", e.RequestID},
	} {
		if err := checkText(f.name, f.v, maxName); err != nil {
			return err
		}
	}
	if len(e.Decision.Reasons) > maxReasons {
		return invalidf("more than %d reasons", maxReasons)
	}
	for _, r := range e.Decision.Reasons {
		if err := checkText("reason", r, maxReason); err != nil {
			return err
		}
	}
	if e.Decision.PolicyHash != "" && !isDigest(e.Decision.PolicyHash) {
		return invalidf("policy hash is not a SHA-256 in lowercase hex")
	}
	if e.ResultDigest != "" && !isDigest(e.ResultDigest) {
		return invalidf("result digest is not a SHA-256 in lowercase hex")
	}
	if e.SpecDigest != "" && !isDigest(e.SpecDigest) {
		return invalidf("spec digest is not a SHA-256 in lowercase hex")
	}
	if e.Salt != "" && !isHex(e.Salt, SaltSize) {
		return invalidf("salt is not %d lowercase hex digits", SaltSize)
	}
	if e.EpsilonMicro < 0 {
		return invalidf("negative epsilon")
	}
	if len(e.Data) > maxRefs {
		return invalidf("more than %d data references", maxRefs)
	}
	for _, d := range e.Data {
		if err := checkText("data name", d.Name, maxName); err != nil {
			return err
		}
		if d.Name == "" || !isDigest(d.Digest) {
			return invalidf("a data reference needs a name and a SHA-256 digest in lowercase hex")
		}
		if d.Bytes < 0 || d.Rows < 0 {
			return invalidf("negative size")
		}
	}
	return nil
}

func checkText(field, s string, max int) error {
	if len(s) > max {
		return invalidf("%s longer than %d bytes", field, max)
	}
	if !utf8.ValidString(s) {
		return invalidf("%s is not UTF-8", field)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return invalidf("%s contains a control character", field)
		}
	}
	return nil
}

func isDigest(s string) bool { return isHex(s, 64) }

// isHex reports whether s is n lowercase hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// MarshalCanonical validates e and returns its canonical encoding.
func (e *Entry) MarshalCanonical() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	v := entryVersion1
	switch {
	case e.Salt != "":
		v = EntryVersion
	case e.EpsilonMicro != 0 || e.SpecDigest != "":
		v = entryVersion2
	}
	w := wireEntry{
		V:             v,
		Time:          e.Time.UTC().Format(time.RFC3339Nano),
		Principal:     e.Principal,
		Role:          e.Role,
		Action:        e.Action,
		Collaboration: e.Collaboration,
		Decision:      wireDecis{e.Decision.Allow, e.Decision.PolicyHash, e.Decision.Reasons},
		EpsilonMicro:  e.EpsilonMicro,
		SpecDigest:    e.SpecDigest,
		ResultDigest:  e.ResultDigest,
		RequestID:     e.RequestID,
		Salt:          e.Salt,
	}
	for _, d := range e.Data {
		w.Data = append(w.Data, wireData(d))
	}
	b, err := json.Marshal(&w)
	if err != nil {
		return nil, invalidf("encoding: %v", err)
	}
	if len(b) > MaxEntrySize {
		return nil, invalidf("encoded entry larger than %d bytes", MaxEntrySize)
	}
	return b, nil
}

// ParseEntry decodes a canonical entry, refusing bytes that are not exactly
// the canonical encoding of the entry they decode to: two encodings of one
// entry would let a log say different things to different readers.
func ParseEntry(b []byte) (Entry, error) {
	// Unknown fields, other key orders, spacing and escapes all fail the
	// byte comparison with the re-encoding below, so a plain Unmarshal is
	// strict enough (and far cheaper than a Decoder per entry).
	var w wireEntry
	if err := json.Unmarshal(b, &w); err != nil {
		return Entry{}, invalidf("not an entry")
	}
	if w.V < entryVersion1 || w.V > EntryVersion {
		return Entry{}, invalidf("entry version %d, want %d to %d", w.V, entryVersion1, EntryVersion)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return Entry{}, invalidf("bad time")
	}
	e := Entry{
		Time: t, Principal: w.Principal, Role: w.Role, Action: w.Action,
		Collaboration: w.Collaboration,
		Decision:      Decision{w.Decision.Allow, w.Decision.PolicyHash, w.Decision.Reasons},
		EpsilonMicro:  w.EpsilonMicro, SpecDigest: w.SpecDigest,
		ResultDigest: w.ResultDigest, RequestID: w.RequestID, Salt: w.Salt,
	}
	for _, d := range w.Data {
		e.Data = append(e.Data, DataRef(d))
	}
	again, err := e.MarshalCanonical()
	if err != nil {
		return Entry{}, err
	}
	if !bytes.Equal(again, b) {
		return Entry{}, invalidf("not in canonical form")
	}
	return e, nil
}
