package cleanroom

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/opencleanroom/cleanroom/audit"
)

// Sealed state. Everything that decides what a member may do or has spent
// (principals, collaborations with their datasets and match runs, the
// privacy ledger, uploads, delivered secrets, digest keys) is a record
// sealed to the audit entry that wrote it:
//
//	"st1" | index (8 bytes, big-endian) | leaf hash (32) | MAC (32) | JSON
//	MAC = HMAC-SHA256(K, stateLabel | 0x00 | key | 0x00 | index | leaf | JSON)
//
// where index and leaf are those of the entry committed in the same
// transaction (audit.AppendTxAt), and K is derived from the room's
// checkpoint key, so nothing without that key can make a record the room
// accepts. Beside each record, in the same transaction, the room writes its
// high-water mark: statehw/<key> = index. A read checks the MAC, so a
// damaged record is refused, never used (ErrCorruptState). At open the room
// checks every record against its log (checkState): the MAC, the entry's
// leaf hash as the log stores it, and that the record is the one its
// high-water mark names, so a record that went back to an older version,
// or a mark without its record (a budget that vanished), stops the room
// from starting. The log itself is checked against its signed checkpoints
// and the anchor file (audit.Options.Anchor), which catches the whole
// database going back. Digest keys are written once, outside any entry:
// their index is -1 and only their MAC is checked.
const (
	stateLabel    = "cleanroom.dev/state/v1"
	stateTag      = "st1"
	stateHeader   = len(stateTag) + 8 + tlog.HashSize + sha256.Size
	prefixStateHW = "statehw/"
)

// ErrCorruptState means a state record failed its check: damaged on disk,
// or not the version its audit log says it should be. The room refuses to
// use it; cleanroom doctor says what is wrong and what to do.
var ErrCorruptState = errors.New("cleanroom: stored state fails its integrity check")

// stateKeyFrom derives the sealing key from the room's checkpoint key.
func stateKeyFrom(seed []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, seed, nil, stateLabel, sha256.Size)
}

// dataDigestLabel separates the room's commitments to data it names in the
// audit log (dataDigest) from every other hash.
const dataDigestLabel = "cleanroom.dev/data-digest/v1"

// dataDigest commits, in the audit log, to data the room holds that a
// reader of the log could otherwise test guesses against: an upload part
// (in hashed mode, a part of one row is a token any member can compute and
// a few values), a join (an empty one hashes the same every time), the keys
// a deletion removed. It is HMAC-SHA256 under a key derived from the room's
// checkpoint key, over the reference's name and the data's own digest: the
// room can show later which data an entry names, nobody else can tell
// anything from it, and no two references share one.
func (r *Room) dataDigest(name, digest string) string {
	m := hmac.New(sha256.New, r.stateKey)
	m.Write([]byte(dataDigestLabel))
	m.Write([]byte{0})
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(digest))
	return hex.EncodeToString(m.Sum(nil))
}

// sealedPrefixes are the key families whose records are sealed.
var sealedPrefixes = []string{prefixPrincipal, prefixCollab, prefixBudget, prefixUpload, prefixSecret, prefixDigestKey, prefixPolicySource, prefixActivation}

func isSealed(key string) bool {
	for _, p := range sealedPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

func (r *Room) stateMAC(key string, index int64, leaf tlog.Hash, body []byte) []byte {
	m := hmac.New(sha256.New, r.stateKey)
	m.Write([]byte(stateLabel))
	m.Write([]byte{0})
	m.Write([]byte(key))
	m.Write([]byte{0})
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(index)))
	m.Write(leaf[:])
	m.Write(body)
	return m.Sum(nil)
}

// seal returns body sealed to the entry (index, leaf) under key.
func (r *Room) seal(key string, index int64, leaf tlog.Hash, body []byte) []byte {
	out := make([]byte, 0, stateHeader+len(body))
	out = append(out, stateTag...)
	out = binary.BigEndian.AppendUint64(out, uint64(index))
	out = append(out, leaf[:]...)
	out = append(out, r.stateMAC(key, index, leaf, body)...)
	return append(out, body...)
}

// sealedRecord is a record's seal, opened.
type sealedRecord struct {
	index int64
	leaf  tlog.Hash
	body  []byte // aliases the stored value
}

// open checks a sealed record's MAC and returns it.
func (r *Room) open(key string, v []byte) (sealedRecord, error) {
	if len(v) < stateHeader || string(v[:len(stateTag)]) != stateTag {
		return sealedRecord{}, fmt.Errorf("%w: %s is not a sealed record", ErrCorruptState, key)
	}
	rec := sealedRecord{index: int64(binary.BigEndian.Uint64(v[len(stateTag):])), body: v[stateHeader:]}
	copy(rec.leaf[:], v[len(stateTag)+8:])
	mac := v[len(stateTag)+8+tlog.HashSize : stateHeader]
	if !hmac.Equal(mac, r.stateMAC(key, rec.index, rec.leaf, rec.body)) {
		return sealedRecord{}, fmt.Errorf("%w: %s fails its seal", ErrCorruptState, key)
	}
	return rec, nil
}

// get reads the sealed record at key into v; errNotFound if there is none.
func (r *Room) get(txn *badger.Txn, key string, v any) error {
	it, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return errNotFound
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	return it.Value(func(b []byte) error { return r.decode(key, b, v) })
}

// decode opens the sealed record b, stored at key, into v.
func (r *Room) decode(key string, b []byte, v any) error {
	rec, err := r.open(key, b)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(rec.body, v); err != nil {
		return fmt.Errorf("%w: %s is sealed but not the record it should be", ErrCorruptState, key)
	}
	return nil
}

// stateTx is the transaction of an audit entry: the state records it writes
// are sealed to that entry.
type stateTx struct {
	*badger.Txn
	r     *Room
	index int64
	leaf  tlog.Hash
}

// get reads a sealed record in the transaction (seeing its own writes).
func (tx *stateTx) get(key string, v any) error { return tx.r.get(tx.Txn, key, v) }

// put writes v as the sealed record at key, and its high-water mark.
func (tx *stateTx) put(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := tx.Set([]byte(key), tx.r.seal(key, tx.index, tx.leaf, b)); err != nil {
		return err
	}
	return tx.Set([]byte(prefixStateHW+key), binary.BigEndian.AppendUint64(nil, uint64(tx.index)))
}

// del deletes the sealed record at key, and its high-water mark.
func (tx *stateTx) del(key string) error {
	if err := tx.Delete([]byte(key)); err != nil {
		return err
	}
	return tx.Delete([]byte(prefixStateHW + key))
}

// putUnbound writes a record that no audit entry writes (a digest key, made
// once): sealed with index -1, its MAC alone checked.
func (r *Room) putUnbound(txn *badger.Txn, key string, body []byte) error {
	return txn.Set([]byte(key), r.seal(key, -1, tlog.Hash{}, body))
}

// getUnbound reads a record written with putUnbound.
func (r *Room) getUnbound(txn *badger.Txn, key string) ([]byte, error) {
	it, err := txn.Get([]byte(key))
	if err != nil {
		return nil, err
	}
	var out []byte
	err = it.Value(func(b []byte) error {
		rec, err := r.open(key, b)
		if err == nil && rec.index != -1 {
			err = fmt.Errorf("%w: %s claims an audit entry it was never written with", ErrCorruptState, key)
		}
		out = bytes.Clone(rec.body)
		return err
	})
	return out, err
}

// StateProblem is one disagreement between the room's state and its log.
type StateProblem struct {
	Key    string // the record, e.g. "budget/alliance"
	Reason string
}

// checkState checks every sealed record against the audit log: its seal,
// the leaf hash its entry has in the log, that the entry is within the log,
// and that its high-water mark names it; and that every high-water mark has
// its record. It returns the problems found, the first hundred.
func (r *Room) checkState() ([]StateProblem, error) {
	var problems []StateProblem
	add := func(key, reason string) {
		if len(problems) < 100 {
			problems = append(problems, StateProblem{Key: key, Reason: reason})
		}
	}
	size := r.audit.Size()
	err := r.db.View(func(txn *badger.Txn) error {
		seen := map[string]int64{}
		for _, p := range sealedPrefixes {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(p), PrefetchValues: true})
			for it.Rewind(); it.Valid(); it.Next() {
				key := string(it.Item().Key())
				var rec sealedRecord
				err := it.Item().Value(func(v []byte) (err error) { rec, err = r.open(key, v); return })
				switch {
				case err != nil:
					add(key, "fails its seal (damaged on disk, or not written by this room)")
					continue
				case rec.index == -1:
					if p != prefixDigestKey {
						add(key, "is not bound to the audit entry that wrote it")
					}
					continue
				case rec.index < 0 || rec.index >= size:
					add(key, fmt.Sprintf("was written by audit entry %d, beyond the log's %d entries (the log went back)", rec.index, size))
					continue
				}
				seen[key] = rec.index
				leaf, err := audit.LeafHash(txn, rec.index)
				if err != nil || leaf != rec.leaf {
					add(key, fmt.Sprintf("does not match audit entry %d, which wrote it", rec.index))
				}
			}
			it.Close()
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixStateHW), PrefetchValues: true})
		defer it.Close()
		marks := map[string]bool{}
		for it.Rewind(); it.Valid(); it.Next() {
			key := strings.TrimPrefix(string(it.Item().Key()), prefixStateHW)
			marks[key] = true
			var hw int64 = -1
			it.Item().Value(func(v []byte) error {
				if len(v) == 8 {
					hw = int64(binary.BigEndian.Uint64(v))
				}
				return nil
			})
			at, ok := seen[key]
			switch {
			case !ok:
				if _, err := txn.Get([]byte(key)); errors.Is(err, badger.ErrKeyNotFound) {
					add(key, fmt.Sprintf("is missing, though audit entry %d wrote it", hw))
				}
			case hw != at:
				add(key, fmt.Sprintf("is the version of audit entry %d, but entry %d wrote it last (it went back)", at, hw))
			}
		}
		for key := range seen {
			if !marks[key] {
				add(key, "has no high-water mark: its latest write is unknown")
			}
		}
		return nil
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

// eachRecord decodes every sealed record under prefix into a new T and
// passes it to fn.
func eachRecord[T any](r *Room, txn *badger.Txn, prefix string, fn func(*T)) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		v := new(T)
		if err := it.Item().Value(func(b []byte) error { return r.decode(string(it.Item().Key()), b, v) }); err != nil {
			return err
		}
		fn(v)
	}
	return nil
}
