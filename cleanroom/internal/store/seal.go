package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// Sealed records. Everything that decides what a member may do or has
// spent (principals, collaborations with their datasets and match runs,
// the privacy ledger, uploads, delivered secrets, policy sources, digest
// keys) is a record sealed to the audit entry that wrote it:
//
//	"st1" | index (8 bytes, big-endian) | leaf hash (32) | MAC (32) | JSON
//	MAC = HMAC-SHA256(K, Label | 0x00 | key | 0x00 | index | leaf | JSON)
//
// where index and leaf are those of the entry committed in the same
// transaction (audit.Log.AppendTxAt), and K is the room's state key, so
// nothing without it can make a record the room accepts. Beside each record,
// in the same transaction, Tx.Put writes its high-water mark:
// statehw/<key> = index. A read checks the MAC, so a damaged record is
// refused, never used (ErrCorruptState); Check compares every record with
// the log and its mark. Digest keys are written once, outside any entry:
// their index is -1 and only their MAC is checked (Unbound).
const (
	// Label separates the state MAC from every other use of the key.
	Label = "cleanroom.dev/state/v1"

	sealTag    = "st1"
	sealHeader = len(sealTag) + 8 + tlog.HashSize + sha256.Size
)

// ErrCorruptState means a state record failed its check: damaged on disk,
// or not the version its audit log says it should be.
var ErrCorruptState = errors.New("cleanroom: stored state fails its integrity check")

// ErrNotFound is returned for a record that is not stored.
var ErrNotFound = errors.New("store: not found")

// Sealer seals and opens state records under the room's state key.
type Sealer struct{ key []byte }

// NewSealer returns a Sealer keyed with key (32 bytes, secret).
func NewSealer(key []byte) *Sealer { return &Sealer{key: key} }

func (s *Sealer) mac(key string, index int64, leaf tlog.Hash, body []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(Label))
	m.Write([]byte{0})
	m.Write([]byte(key))
	m.Write([]byte{0})
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(index)))
	m.Write(leaf[:])
	m.Write(body)
	return m.Sum(nil)
}

// Seal returns body sealed under key to the entry (index, leaf).
func (s *Sealer) Seal(key string, index int64, leaf tlog.Hash, body []byte) []byte {
	out := make([]byte, 0, sealHeader+len(body))
	out = append(out, sealTag...)
	out = binary.BigEndian.AppendUint64(out, uint64(index))
	out = append(out, leaf[:]...)
	out = append(out, s.mac(key, index, leaf, body)...)
	return append(out, body...)
}

// Sealed is a record's seal, opened.
type Sealed struct {
	Index int64     // the audit entry that wrote it; -1 for an unbound record
	Leaf  tlog.Hash // that entry's leaf hash
	Body  []byte    // aliases the stored value
}

// Open checks the seal of v, stored at key, and returns it.
func (s *Sealer) Open(key string, v []byte) (Sealed, error) {
	if len(v) < sealHeader || string(v[:len(sealTag)]) != sealTag {
		return Sealed{}, fmt.Errorf("%w: %s is not a sealed record", ErrCorruptState, key)
	}
	rec := Sealed{Index: int64(binary.BigEndian.Uint64(v[len(sealTag):])), Body: v[sealHeader:]}
	copy(rec.Leaf[:], v[len(sealTag)+8:])
	mac := v[len(sealTag)+8+tlog.HashSize : sealHeader]
	if !hmac.Equal(mac, s.mac(key, rec.Index, rec.Leaf, rec.Body)) {
		return Sealed{}, fmt.Errorf("%w: %s fails its seal", ErrCorruptState, key)
	}
	return rec, nil
}

// decode opens the sealed record v, stored at key, into out.
func (s *Sealer) decode(key string, v []byte, out any) error {
	rec, err := s.Open(key, v)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(rec.Body, out); err != nil {
		return fmt.Errorf("%w: %s is sealed but not the record it should be", ErrCorruptState, key)
	}
	return nil
}

// Txn is a Badger transaction read (and, for unbound records, written)
// with the room's Sealer.
type Txn struct {
	*badger.Txn
	Sealer *Sealer
}

// get reads the sealed record at key into out; ErrNotFound if there is none.
func (t Txn) get(key string, out any) error {
	it, err := t.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: reading %s: %w", key, err)
	}
	return it.Value(func(b []byte) error { return t.Sealer.decode(key, b, out) })
}

// Tx is the transaction of an audit entry: the records it writes are
// sealed to that entry, each with its high-water mark.
type Tx struct {
	Txn
	Index int64
	Leaf  tlog.Hash
}

func (tx *Tx) put(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := tx.Set([]byte(key), tx.Sealer.Seal(key, tx.Index, tx.Leaf, b)); err != nil {
		return err
	}
	return tx.Set(highWaterKey(key), binary.BigEndian.AppendUint64(nil, uint64(tx.Index)))
}

func (tx *Tx) del(key string) error {
	if err := tx.Delete([]byte(key)); err != nil {
		return err
	}
	return tx.Delete(highWaterKey(key))
}

func highWaterKey(key string) []byte { return []byte(highWaterPrefix + key) }
