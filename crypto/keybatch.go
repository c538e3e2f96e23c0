package crypto

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"

	"github.com/opencleanroom/cleanroom/crypto/internal/sha256x16"
)

// A match key is SHA-256 of the normalized identifier, and nearly every
// normalized email, phone number and device id fits, with SHA-256's
// padding, in one 64-byte block. KeyBatch pads those into sixteen lanes
// and hashes them in one sha256x16.Sum1 call; longer identifiers, and the
// few left at the end, go through crypto/sha256 one at a time. Where the
// CPU has no AVX-512, crypto/sha256 on the SHA extensions is the faster
// and does all.

// maxShort is the longest message one SHA-256 block holds with its padding:
// a 0x80 byte and the 8-byte length.
const maxShort = sha256x16.BlockSize - 1 - 8

// KeyBatch computes the match keys of many identifiers in order, sixteen at
// a time where it can. Add normalizes an identifier and gives it the next
// place; Keys hashes what is still waiting and returns the keys, each the
// one Profile.MatchKey returns. A KeyBatch is not safe for concurrent use.
type KeyBatch struct {
	p     Profile
	keys  []MatchKey
	lanes bool // hash short messages sixteen at a time

	n    int                                        // messages waiting
	at   [sha256x16.Lanes]int                       // their places in keys
	size [sha256x16.Lanes]uint8                     // their lengths
	msg  [sha256x16.Lanes][sha256x16.BlockSize]byte // padded, one block each
	out  [sha256x16.Lanes][sha256x16.Size]byte
	buf  [254]byte // asciiEmail's output
}

// NewKeyBatch returns a KeyBatch under p with room for rows keys.
func (p Profile) NewKeyBatch(rows int) *KeyBatch {
	return &KeyBatch{p: p, keys: make([]MatchKey, 0, rows), lanes: sha256x16.Accelerated()}
}

// Add normalizes raw, an identifier of kind k, and appends its match key.
// An identifier that MatchKey refuses gets MatchKey's error and no place.
// The key itself may be computed later, by Add or Keys.
func (b *KeyBatch) Add(k Kind, raw string) error {
	if b.p.name == "" {
		return errors.New("crypto: zero Profile; use LookupProfile")
	}
	if k == KindEmail {
		if v, ok := b.p.asciiEmail(raw, &b.buf); ok {
			addMessage(b, v)
			return nil
		}
	}
	v, hashed, err := b.p.normalize(k, raw)
	if err != nil {
		return err
	}
	if hashed {
		var mk MatchKey
		hex.Decode(mk[:], []byte(v)) // v is known-good lowercase hex
		b.keys = append(b.keys, mk)
		return nil
	}
	addMessage(b, v)
	return nil
}

// addMessage gives the normalized identifier v the next place, and hashes
// it now or queues it for the next sixteen.
func addMessage[S ~string | ~[]byte](b *KeyBatch, v S) {
	i := len(b.keys)
	b.keys = append(b.keys, MatchKey{})
	if !b.lanes || len(v) > maxShort {
		b.keys[i] = sha256.Sum256([]byte(v))
		return
	}
	m := &b.msg[b.n]
	n := copy(m[:], v)
	m[n] = 0x80
	clear(m[n+1 : maxShort+1])
	binary.BigEndian.PutUint64(m[maxShort+1:], 8*uint64(n))
	b.at[b.n], b.size[b.n] = i, uint8(n)
	if b.n++; b.n == sha256x16.Lanes {
		b.hashLanes()
	}
}

// hashLanes hashes the sixteen waiting messages, one block each, into
// their places.
func (b *KeyBatch) hashLanes() {
	sha256x16.Sum1(&b.out, &b.msg)
	for l, i := range b.at {
		b.keys[i] = b.out[l]
	}
	b.n = 0
}

// Len is the number of keys added since the last Reset.
func (b *KeyBatch) Len() int { return len(b.keys) }

// Keys hashes the messages still waiting, one at a time (fewer than
// sixteen), and returns the keys in the order they were added. The slice
// is the KeyBatch's: valid until the next Add or Reset.
func (b *KeyBatch) Keys() []MatchKey {
	for l := range b.n {
		b.keys[b.at[l]] = sha256.Sum256(b.msg[l][:b.size[l]])
	}
	b.n = 0
	return b.keys
}

// Reset empties the batch, keeping its memory.
func (b *KeyBatch) Reset() {
	b.keys = b.keys[:0]
	b.n = 0
}
