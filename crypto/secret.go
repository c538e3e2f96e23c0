package crypto

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// SecretSize is the size of a collaboration secret.
const SecretSize = 32

// ErrInvalidSecret means a collaboration secret is not 32 bytes (64 hex
// characters). The caller should check the secret file.
var ErrInvalidSecret = errors.New("collaboration secret must be 32 bytes (64 hex characters)")

// Secret is a collaboration secret Ks: the HMAC key in hashed mode and the
// PAIR salt in blinded mode. Members share it; the room never sees it.
// It is not comparable with ==, and it does not print.
type Secret struct {
	b [SecretSize]byte
	_ [0]func() // incomparable
}

// NewSecret returns a fresh random secret read from r (crypto/rand if nil).
func NewSecret(r io.Reader) (*Secret, error) {
	if r == nil {
		r = rand.Reader
	}
	s := new(Secret)
	if _, err := io.ReadFull(r, s.b[:]); err != nil {
		return nil, fmt.Errorf("crypto: reading randomness: %w", err)
	}
	return s, nil
}

// SecretFromBytes returns the secret whose bytes are b.
func SecretFromBytes(b []byte) (*Secret, error) {
	if len(b) != SecretSize {
		return nil, ErrInvalidSecret
	}
	s := new(Secret)
	copy(s.b[:], b)
	return s, nil
}

// ParseSecret parses 64 hex characters, ignoring surrounding white space.
func ParseSecret(text string) (*Secret, error) {
	text = strings.TrimSpace(text)
	if len(text) != 2*SecretSize {
		return nil, ErrInvalidSecret
	}
	s := new(Secret)
	if _, err := hex.Decode(s.b[:], []byte(text)); err != nil {
		return nil, ErrInvalidSecret
	}
	return s, nil
}

// Bytes returns a copy of the secret's bytes.
func (s *Secret) Bytes() []byte { return append([]byte(nil), s.b[:]...) }

// Hex returns the secret as 64 lowercase hex characters, the salt-file form.
func (s *Secret) Hex() string { return hex.EncodeToString(s.b[:]) }

// Equal reports in constant time whether s and t are the same secret.
func (s *Secret) Equal(t *Secret) bool { return subtle.ConstantTimeCompare(s.b[:], t.b[:]) == 1 }

func (s *Secret) String() string { return "crypto.Secret(REDACTED)" }

// LogValue keeps the secret out of logs.
func (s *Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// GoString keeps the secret out of %#v.
func (s *Secret) GoString() string { return s.String() }
