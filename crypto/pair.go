package crypto

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	r255 "github.com/bwesterb/go-ristretto"

	"github.com/opencleanroom/cleanroom/crypto/internal/r255x8"
)

// ScalarSize is the size of an encoded ristretto255 scalar.
const ScalarSize = 32

// ErrInvalidScalar means a blinding key is not the base64 of a canonical,
// non-zero, 32-byte little-endian scalar. The caller should check the key file.
var ErrInvalidScalar = errors.New("blinding key must be a canonical non-zero ristretto255 scalar (32 bytes, standard base64)")

// BlindingKey is a partner's PAIR scalar k. Encrypting with it is C = k·P;
// decrypting is k⁻¹·C. It is not comparable with ==, and it does not print.
type BlindingKey struct {
	k, inv r255.Scalar
	// k8 and inv8 are k and k⁻¹ recoded for the batches (crypto/internal/r255x8).
	k8, inv8 r255x8.Scalar
	_        [0]func() // incomparable
}

// GenerateBlindingKey returns a fresh key from r (crypto/rand if nil). The
// scalar is 64 random bytes reduced modulo the group order, so its bias is
// negligible (2^-250).
func GenerateBlindingKey(r io.Reader) (*BlindingKey, error) {
	if r == nil {
		r = rand.Reader
	}
	var wide [64]byte
	for {
		if _, err := io.ReadFull(r, wide[:]); err != nil {
			return nil, fmt.Errorf("crypto: reading randomness: %w", err)
		}
		var s r255.Scalar
		s.SetReduced(&wide)
		if s.IsNonZeroI() == 1 {
			return newBlindingKey(&s), nil
		}
	}
}

// NewBlindingKey returns the key whose canonical 32-byte little-endian
// encoding is b.
func NewBlindingKey(b []byte) (*BlindingKey, error) {
	if len(b) != ScalarSize {
		return nil, ErrInvalidScalar
	}
	var buf [ScalarSize]byte
	copy(buf[:], b)
	var s r255.Scalar
	if !s.SetBytesStrict(&buf) || s.IsNonZeroI() == 0 {
		return nil, ErrInvalidScalar
	}
	return newBlindingKey(&s), nil
}

// ParseBlindingKey parses the standard base64 text form of a key (the PAIR
// key-file form), ignoring surrounding white space.
func ParseBlindingKey(text string) (*BlindingKey, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, ErrInvalidScalar
	}
	return NewBlindingKey(b)
}

func newBlindingKey(s *r255.Scalar) *BlindingKey {
	k := &BlindingKey{k: *s}
	k.inv.Inverse(s) // constant time; computed once so Decrypt costs one multiplication
	b, inv := [ScalarSize]byte(k.k.Bytes()), [ScalarSize]byte(k.inv.Bytes())
	k.k8, k.inv8 = *r255x8.NewScalar(&b), *r255x8.NewScalar(&inv)
	return k
}

// collaborationKeyLabel separates CollaborationKey's HMACs from any other
// use of a partner's scalar as an HMAC key.
const collaborationKeyLabel = "cleanroom.dev/v1/collaboration-blinding-key"

// derive returns the key reduced from HMAC-SHA512(k, label ‖ parts), each
// part after its length, so no two lists of parts share an input. The 64
// bytes reduce modulo the group order with negligible bias (2^-250); the
// counter that follows the parts moves on in the 2^-252 case of zero.
func (k *BlindingKey) derive(label string, parts ...string) *BlindingKey {
	msg := append([]byte(label), 0)
	for _, p := range parts {
		msg = binary.BigEndian.AppendUint32(msg, uint32(len(p)))
		msg = append(msg, p...)
	}
	key := k.k.Bytes()
	for counter := byte(0); ; counter++ {
		mac := hmac.New(sha512.New, key)
		mac.Write(msg)
		mac.Write([]byte{counter})
		var wide [64]byte
		mac.Sum(wide[:0])
		var s r255.Scalar
		s.SetReduced(&wide)
		if s.IsNonZeroI() == 1 {
			return newBlindingKey(&s)
		}
	}
}

// Bytes returns the canonical 32-byte little-endian encoding of the scalar.
func (k *BlindingKey) Bytes() []byte { return k.k.Bytes() }

// Base64 returns the standard base64 text form, as written to key files.
func (k *BlindingKey) Base64() string { return base64.StdEncoding.EncodeToString(k.k.Bytes()) }

func (k *BlindingKey) String() string { return "crypto.BlindingKey(REDACTED)" }

// GoString keeps the key out of %#v.
func (k *BlindingKey) GoString() string { return k.String() }

// LogValue keeps the key out of logs.
func (k *BlindingKey) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// hashToPoint sets p to PAIR's P = FromUniformBytes(SHA-512(SHA-256(Ks ||
// hex(m)))). go-ristretto's DeriveDalek is exactly RFC 9496's one-way map of
// SHA-512(data) (two Elligator maps of the halves, added), as in
// curve25519-dalek's hash_from_bytes::<Sha512>; circl's HashToElement uses an
// expand_message_xmd expander instead, which PAIR does not.
func hashToPoint(p *r255.Point, ks *Secret, m *MatchKey) {
	h := pairHash(ks, m)
	p.DeriveDalek(h[:])
}

// pairHash is SHA-256(Ks || hex(m)), the input of PAIR's one-way map.
func pairHash(ks *Secret, m *MatchKey) [sha256.Size]byte {
	var in [SecretSize + 2*sha256.Size]byte
	copy(in[:SecretSize], ks.b[:])
	m.AppendHex(in[SecretSize:SecretSize])
	return sha256.Sum256(in[:])
}

// uniformBytes sets u to the 64 bytes RFC 9496's FromUniformBytes maps to
// m's point: SHA-512 of pairHash, as DeriveDalek computes it.
func uniformBytes(u *[64]byte, ks *Secret, m *MatchKey) {
	h := pairHash(ks, m)
	*u = sha512.Sum512(h[:])
}

// Encrypt returns k·P for the match key m under the collaboration secret ks.
func (k *BlindingKey) Encrypt(ks *Secret, m MatchKey) (Element, error) {
	var p r255.Point
	hashToPoint(&p, ks, &m)
	return k.mul(&p, &k.k)
}

// Reencrypt returns k·C: another member's encryption, encrypted again.
func (k *BlindingKey) Reencrypt(c Element) (Element, error) {
	var p r255.Point
	if err := c.point(&p); err != nil {
		return Element{}, err
	}
	return k.mul(&p, &k.k)
}

// Decrypt returns k⁻¹·C, removing this key's layer. A publisher uses it to
// turn the doubly encrypted identifiers an advertiser returns into PAIR IDs
// that only it can read.
func (k *BlindingKey) Decrypt(c Element) (Element, error) {
	var p r255.Point
	if err := c.point(&p); err != nil {
		return Element{}, err
	}
	return k.mul(&p, &k.inv)
}

func (k *BlindingKey) mul(p *r255.Point, s *r255.Scalar) (Element, error) {
	p.ScalarMult(p, s)
	e := elementOf(p)
	if e.b == [ElementSize]byte{} {
		// Only when P itself is the identity: FromUniformBytes reaches it
		// with probability about 2^-250.
		return Element{}, ErrIdentity
	}
	return e, nil
}
