package crypto

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"

	"github.com/cloudflare/circl/kem"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/x25519"
)

// PartnerKeyFormat names and versions the partner key file format:
//
//	{
//	  "format": "cleanroom.dev/partner-key/v1",
//	  "name": "coursely",
//	  "keys": {"keys": [
//	    {"kty":"OKP","crv":"Ed25519","use":"sig","alg":"EdDSA","kid":"...","x":"...","d":"..."},
//	    {"kty":"OKP","crv":"X25519","use":"enc","kid":"...","x":"...","d":"..."}
//	  ]},
//	  "blinding_scalar": "<standard base64 of the 32-byte little-endian scalar>"
//	}
//
// "keys" is a JWK set (RFC 7517, RFC 8037) of private keys; each kid is the
// key's RFC 7638 thumbprint. The Ed25519 key signs the partner's JWTs; the
// X25519 key receives collaboration secrets sealed with HPKE (RFC 9180). The
// file is secret: it is written with mode 0600 and refused when group or
// others may read it.
const PartnerKeyFormat = "cleanroom.dev/partner-key/v1"

// ErrPartnerKey means a key file or public key set is malformed. The caller
// should check that the file is a cleanroom partner key and not damaged.
var ErrPartnerKey = errors.New("malformed partner key")

var partnerName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ValidPartnerName reports whether name can name a partner: 1 to 63 of
// a-z 0-9 . _ -, starting with a letter or digit.
func ValidPartnerName(name string) bool { return partnerName.MatchString(name) }

// PartnerKey is a partner's private key material. It does not print.
type PartnerKey struct {
	name     string
	signing  jwk.Key // Ed25519 private, kid = thumbprint
	hpke     jwk.Key // X25519 private, kid = thumbprint
	kemPriv  kem.PrivateKey
	blinding *BlindingKey
	_        [0]func()
}

// GeneratePartnerKey makes a new key for the partner called name, reading
// randomness from r (crypto/rand if nil).
func GeneratePartnerKey(name string, r io.Reader) (*PartnerKey, error) {
	if !ValidPartnerName(name) {
		return nil, fmt.Errorf("crypto: partner name must be 1-63 of a-z 0-9 . _ - (got %d bytes)", len(name))
	}
	if r == nil {
		r = rand.Reader
	}
	_, sig, err := ed25519.GenerateKey(r)
	if err != nil {
		return nil, fmt.Errorf("crypto: generating signing key: %w", err)
	}
	_, enc, err := x25519.GenerateKey(r)
	if err != nil {
		return nil, fmt.Errorf("crypto: generating HPKE key: %w", err)
	}
	blind, err := GenerateBlindingKey(r)
	if err != nil {
		return nil, err
	}
	return newPartnerKey(name, sig, enc, blind)
}

func newPartnerKey(name string, sig ed25519.PrivateKey, enc x25519.PrivateKey, blind *BlindingKey) (*PartnerKey, error) {
	sj, err := jwkOf(sig, jwk.ForSignature, jwa.EdDSA)
	if err != nil {
		return nil, err
	}
	ej, err := jwkOf(enc, jwk.ForEncryption, "")
	if err != nil {
		return nil, err
	}
	kp, err := hpkeSuite.kem.Scheme().UnmarshalBinaryPrivateKey(enc.Seed())
	if err != nil {
		return nil, fmt.Errorf("crypto: HPKE private key: %w", err)
	}
	return &PartnerKey{name: name, signing: sj, hpke: ej, kemPriv: kp, blinding: blind}, nil
}

func jwkOf(raw any, use jwk.KeyUsageType, alg jwa.SignatureAlgorithm) (jwk.Key, error) {
	k, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, fmt.Errorf("crypto: making JWK: %w", err)
	}
	if err := jwk.AssignKeyID(k); err != nil {
		return nil, fmt.Errorf("crypto: JWK thumbprint: %w", err)
	}
	if err := k.Set(jwk.KeyUsageKey, use); err != nil {
		return nil, err
	}
	if alg != "" {
		if err := k.Set(jwk.AlgorithmKey, alg); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Name returns the partner's name.
func (k *PartnerKey) Name() string { return k.name }

// SigningKey returns the Ed25519 private key as a JWK (alg EdDSA, kid set),
// ready for jwt.Sign.
func (k *PartnerKey) SigningKey() jwk.Key { return k.signing }

// BlindingKey returns the partner's PAIR scalar: the root its
// collaborations' keys are derived from (CollaborationKey), and the key of
// PAIR exchanges outside a room.
func (k *PartnerKey) BlindingKey() *BlindingKey { return k.blinding }

// CollaborationKey returns the partner's PAIR key in one collaboration of
// one room, named by the room's verifier key (which a room proves it holds)
// and the collaboration's id (which a room never gives twice): the
// scalar reduced from HMAC-SHA512, keyed with the partner's scalar, of
// both. Every set the partner encrypts or re-encrypts there uses it.
//
// A member is shown the partner's first list in a collaboration under the
// partner's key alone (the room masks only later offers), and the member
// that creates a second collaboration with the partner can give it the
// first one's secret. Under one scalar the two first lists would be
// comparable element by element: who the partner kept and who it added.
// Under keys from a PRF they are not: k₁·P and k₂·P are unrelated to
// anyone without the scalar (DDH), and so is k₁/k₂, which a derivation
// like k·H(collab) would make public.
func (k *PartnerKey) CollaborationKey(room, collab string) *BlindingKey {
	return k.blinding.derive(collaborationKeyLabel, room, collab)
}

// Public returns the partner's public keys.
func (k *PartnerKey) Public() *PublicKeys {
	sig, _ := k.signing.PublicKey()
	enc, _ := k.hpke.PublicKey()
	pk := k.kemPriv.Public()
	return &PublicKeys{signing: sig, hpke: enc, kemPub: pk}
}

func (k *PartnerKey) String() string { return "crypto.PartnerKey(" + k.name + ", REDACTED)" }

// GoString keeps the key out of %#v.
func (k *PartnerKey) GoString() string { return k.String() }

// LogValue keeps the key out of logs.
func (k *PartnerKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

type partnerKeyFile struct {
	Format   string          `json:"format"`
	Name     string          `json:"name"`
	Keys     json.RawMessage `json:"keys"`
	Blinding string          `json:"blinding_scalar"`
}

// MarshalPartnerKey encodes k in the PartnerKeyFormat.
func MarshalPartnerKey(k *PartnerKey) ([]byte, error) {
	set := jwk.NewSet()
	set.AddKey(k.signing)
	set.AddKey(k.hpke)
	keys, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("crypto: encoding key set: %w", err)
	}
	return json.MarshalIndent(partnerKeyFile{
		Format: PartnerKeyFormat, Name: k.name, Keys: keys, Blinding: k.blinding.Base64(),
	}, "", "  ")
}

// ParsePartnerKey decodes a key file in the PartnerKeyFormat.
func ParsePartnerKey(data []byte) (*PartnerKey, error) {
	var f partnerKeyFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: not JSON", ErrPartnerKey)
	}
	if f.Format != PartnerKeyFormat {
		return nil, fmt.Errorf("%w: format is not %s", ErrPartnerKey, PartnerKeyFormat)
	}
	if !ValidPartnerName(f.Name) {
		return nil, fmt.Errorf("%w: bad name", ErrPartnerKey)
	}
	set, err := jwk.Parse(f.Keys)
	if err != nil {
		return nil, fmt.Errorf("%w: keys is not a JWK set", ErrPartnerKey)
	}
	var (
		sig ed25519.PrivateKey
		enc x25519.PrivateKey
	)
	for i := range set.Len() {
		key, _ := set.Key(i)
		var raw any
		if err := key.Raw(&raw); err != nil {
			return nil, fmt.Errorf("%w: key %d unreadable", ErrPartnerKey, i)
		}
		switch r := raw.(type) {
		case ed25519.PrivateKey:
			sig = r
		case x25519.PrivateKey:
			enc = r
		}
	}
	if sig == nil || enc == nil {
		return nil, fmt.Errorf("%w: want one Ed25519 and one X25519 private key", ErrPartnerKey)
	}
	blind, err := ParseBlindingKey(f.Blinding)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPartnerKey, err)
	}
	return newPartnerKey(f.Name, sig, enc, blind)
}

// PublicKeys is a partner's public half: what the room registers and what
// other members seal the collaboration secret to.
type PublicKeys struct {
	signing jwk.Key // Ed25519 public, kid set
	hpke    jwk.Key // X25519 public, kid set
	kemPub  kem.PublicKey
}

// SigningKey returns the Ed25519 public key as a JWK, for verifying JWTs.
func (p *PublicKeys) SigningKey() jwk.Key { return p.signing }

// Fingerprint is what partners compare out of band to pin each other's
// keys: 43 characters of base64url, SHA-256 over both keys' RFC 7638
// thumbprints. It covers the X25519 key too, which is the one a secret is
// sealed to: a fingerprint of the signing key alone would let a room show a
// member's real signing key beside an X25519 key of its own, pass the pin,
// and be sealed the collaboration secret.
func (p *PublicKeys) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte("cleanroom.dev/v1/key-fingerprint\x00" + p.signing.KeyID() + "\x00" + p.hpke.KeyID()))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// Set returns the public keys as a JWK set.
func (p *PublicKeys) Set() jwk.Set {
	set := jwk.NewSet()
	set.AddKey(p.signing)
	set.AddKey(p.hpke)
	return set
}

// MarshalJSON encodes the public keys as a JWK set.
func (p *PublicKeys) MarshalJSON() ([]byte, error) { return json.Marshal(p.Set()) }

// ParsePublicKeys decodes a partner's public JWK set: exactly one Ed25519
// signing key and one X25519 encryption key, no private parts.
func ParsePublicKeys(data []byte) (*PublicKeys, error) {
	set, err := jwk.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w: not a JWK set", ErrPartnerKey)
	}
	var p PublicKeys
	for i := range set.Len() {
		key, _ := set.Key(i)
		var raw any
		if err := key.Raw(&raw); err != nil {
			return nil, fmt.Errorf("%w: key %d unreadable", ErrPartnerKey, i)
		}
		switch r := raw.(type) {
		case ed25519.PublicKey:
			if p.signing != nil {
				return nil, fmt.Errorf("%w: more than one Ed25519 key", ErrPartnerKey)
			}
			if p.signing, err = jwkOf(r, jwk.ForSignature, jwa.EdDSA); err != nil {
				return nil, err
			}
		case x25519.PublicKey:
			if p.hpke != nil {
				return nil, fmt.Errorf("%w: more than one X25519 key", ErrPartnerKey)
			}
			if p.hpke, err = jwkOf(r, jwk.ForEncryption, ""); err != nil {
				return nil, err
			}
			if p.kemPub, err = hpkeSuite.kem.Scheme().UnmarshalBinaryPublicKey(r); err != nil {
				return nil, fmt.Errorf("%w: X25519 key", ErrPartnerKey)
			}
		default:
			return nil, fmt.Errorf("%w: key %d is not a public Ed25519 or X25519 key", ErrPartnerKey, i)
		}
	}
	if p.signing == nil || p.hpke == nil {
		return nil, fmt.Errorf("%w: want one Ed25519 and one X25519 public key", ErrPartnerKey)
	}
	return &p, nil
}
