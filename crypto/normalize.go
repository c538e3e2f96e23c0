package crypto

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Kind is the kind of identifier a column holds.
type Kind string

// The identifier kinds a profile knows how to normalize.
const (
	KindEmail  Kind = "email"
	KindPhone  Kind = "phone"
	KindMAID   Kind = "maid" // mobile advertising id (IDFA, GAID): a UUID
	KindCustom Kind = "custom"
)

// ParseKind returns the Kind named s.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindEmail, KindPhone, KindMAID, KindCustom:
		return k, nil
	}
	return "", fmt.Errorf("crypto: unknown identifier kind %q (want email, phone, maid or custom)", s)
}

// Profile names. A profile's rules never change once published: a new rule
// set gets a new name, so that match keys made under different rules are never
// silently compared. The room records the profile of every upload and refuses
// to match datasets made under different profiles.
const (
	// ProfilePAIRv1: email trimmed and lowercased; phone in E.164; maid as
	// a lowercase UUID; custom trimmed. This is PAIR's normalization.
	ProfilePAIRv1 = "pair-v1"
	// ProfileGmailv1 is pair-v1, and for gmail.com and googlemail.com
	// addresses also removes dots and any "+suffix" from the local part and
	// writes the domain as gmail.com, because Gmail delivers all those
	// spellings to the same mailbox.
	ProfileGmailv1 = "gmail-v1"
)

// Profiles lists the names of the known profiles.
func Profiles() []string { return []string{ProfilePAIRv1, ProfileGmailv1} }

// Profile is a named, versioned set of normalization rules.
type Profile struct {
	name        string
	gmailFolds  bool
	defaultCode int // default phone country calling code; 0 means none
}

// ProfileOptions tune a profile without changing its rules.
type ProfileOptions struct {
	// DefaultCountryCode is the country calling code (1 for the US, 44 for
	// the UK, ...) assumed for phone numbers written without one. Zero means
	// national numbers are rejected.
	DefaultCountryCode int
}

// LookupProfile returns the profile called name.
func LookupProfile(name string, opts ProfileOptions) (Profile, error) {
	p := Profile{name: name, defaultCode: opts.DefaultCountryCode}
	switch name {
	case ProfilePAIRv1:
	case ProfileGmailv1:
		p.gmailFolds = true
	default:
		return Profile{}, fmt.Errorf("crypto: unknown normalization profile %q (known: %s)",
			name, strings.Join(Profiles(), ", "))
	}
	if opts.DefaultCountryCode != 0 && phoneRegion(opts.DefaultCountryCode) == "" {
		return Profile{}, fmt.Errorf("crypto: unknown country calling code %d", opts.DefaultCountryCode)
	}
	return p, nil
}

// Name returns the profile's versioned name.
func (p Profile) Name() string { return p.name }

// ErrInvalidIdentifier is wrapped by every normalization error. The caller
// should skip or reject the row; the error never contains the identifier.
var ErrInvalidIdentifier = errors.New("invalid identifier")

// IdentifierError says why an identifier was rejected. It holds the kind and
// a fixed reason, never the value.
type IdentifierError struct {
	Kind   Kind
	Reason string
}

func (e *IdentifierError) Error() string {
	return fmt.Sprintf("invalid %s: %s", e.Kind, e.Reason)
}

func (e *IdentifierError) Unwrap() error { return ErrInvalidIdentifier }

func invalid(k Kind, reason string) error { return &IdentifierError{Kind: k, Reason: reason} }

// MatchKey is the SHA-256 of a normalized identifier. It is sensitive (a plain
// hash of an email can be reversed by a dictionary) and must not leave the
// partner's machine; its LogValue redacts it.
type MatchKey [sha256.Size]byte

// AppendHex appends the 64 lowercase hex characters of k, the form that PAIR
// and the HMAC tokens hash.
func (k MatchKey) AppendHex(dst []byte) []byte { return hex.AppendEncode(dst, k[:]) }

// String returns the lowercase hex form of k.
func (k MatchKey) String() string { return hex.EncodeToString(k[:]) }

// LogValue keeps match keys out of logs.
func (k MatchKey) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// ParseMatchKey parses 64 hex characters (either case).
func ParseMatchKey(s string) (MatchKey, error) {
	var k MatchKey
	if len(s) != 2*len(k) {
		return k, invalid("match key", "want 64 hex characters")
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, invalid("match key", "not hexadecimal")
	}
	return k, nil
}

// Normalize returns the normalized form of raw, an identifier of kind k.
// An input that is already a SHA-256 is returned as 64 lowercase hex
// characters. Normalize is idempotent: normalizing its output again returns
// the same string.
func (p Profile) Normalize(k Kind, raw string) (string, error) {
	v, _, err := p.normalize(k, raw)
	return v, err
}

// MatchKey returns the match key of raw, an identifier of kind k.
func (p Profile) MatchKey(k Kind, raw string) (MatchKey, error) {
	if k == KindEmail && p.name != "" {
		if mk, ok := p.asciiEmailKey(raw); ok {
			return mk, nil
		}
	}
	return p.matchKey(k, raw)
}

// matchKey is MatchKey by the general path: normalize, then hash.
func (p Profile) matchKey(k Kind, raw string) (MatchKey, error) {
	v, hashed, err := p.normalize(k, raw)
	if err != nil {
		return MatchKey{}, err
	}
	if hashed {
		var mk MatchKey
		hex.Decode(mk[:], []byte(v)) // v is known-good lowercase hex
		return mk, nil
	}
	return sha256.Sum256([]byte(v)), nil
}

// normalize returns the normalized value, and whether it is a pass-through
// SHA-256 (in lowercase hex) rather than an identifier still to be hashed.
func (p Profile) normalize(k Kind, raw string) (string, bool, error) {
	if p.name == "" {
		return "", false, errors.New("crypto: zero Profile; use LookupProfile")
	}
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", false, invalid(k, "empty")
	}
	if h, ok := prehashed(s); ok {
		return h, true, nil
	}
	var (
		v   string
		err error
	)
	switch k {
	case KindEmail:
		v, err = p.email(s)
	case KindPhone:
		v, err = p.phone(s)
	case KindMAID:
		v, err = maid(s)
	case KindCustom:
		v = s
	default:
		return "", false, fmt.Errorf("crypto: unknown identifier kind %q", k)
	}
	return v, false, err
}

// prehashed reports whether s is already a SHA-256 digest, as 64 hex
// characters or 44 characters of padded standard base64, and returns it as
// lowercase hex.
func prehashed(s string) (string, bool) {
	var d [sha256.Size]byte
	switch len(s) {
	case 64:
		if _, err := hex.Decode(d[:], []byte(s)); err != nil {
			return "", false
		}
	case 44:
		var buf [sha256.Size + 1]byte // 44 unpadded characters decode to 33 bytes
		n, err := base64.StdEncoding.Strict().Decode(buf[:], []byte(s))
		if err != nil || n != len(d) {
			return "", false
		}
		copy(d[:], buf[:n])
	default:
		return "", false
	}
	return hex.EncodeToString(d[:]), true
}

func (p Profile) email(s string) (string, error) {
	s = strings.ToLower(s)
	if len(s) > 254 {
		return "", invalid(KindEmail, "longer than 254 bytes")
	}
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return "", invalid(KindEmail, "no @ sign")
	}
	local, domain := s[:at], s[at+1:]
	switch {
	case strings.IndexByte(domain, '@') >= 0:
		return "", invalid(KindEmail, "more than one @ sign")
	case local == "":
		return "", invalid(KindEmail, "empty local part")
	case domain == "" || !strings.Contains(domain, ".") ||
		strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, ".."):
		return "", invalid(KindEmail, "malformed domain")
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '\u00a0' || r == '\u2028' || r == '\u2029' {
			return "", invalid(KindEmail, "contains white space or a control character")
		}
	}
	if p.gmailFolds && (domain == "gmail.com" || domain == "googlemail.com") {
		if plus := strings.IndexByte(local, '+'); plus >= 0 {
			local = local[:plus]
		}
		local = strings.ReplaceAll(local, ".", "")
		if local == "" {
			return "", invalid(KindEmail, "empty local part")
		}
		return local + "@gmail.com", nil
	}
	return s, nil
}

// maid normalizes a mobile advertising id: a UUID written in lowercase with
// dashes. The all-zero id is refused: it is what iOS and Android report when a
// user limits ad tracking, so it is shared by millions of people and would
// match them all to each other.
func maid(s string) (string, error) {
	s = strings.ToLower(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	var raw [16]byte
	switch len(s) {
	case 32:
		if _, err := hex.Decode(raw[:], []byte(s)); err != nil {
			return "", invalid(KindMAID, "not a UUID")
		}
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return "", invalid(KindMAID, "not a UUID")
		}
		compact := s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
		if _, err := hex.Decode(raw[:], []byte(compact)); err != nil {
			return "", invalid(KindMAID, "not a UUID")
		}
	default:
		return "", invalid(KindMAID, "not a UUID")
	}
	if raw == [16]byte{} {
		return "", invalid(KindMAID, "the all-zero id (ad tracking limited)")
	}
	h := hex.EncodeToString(raw[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}
