package crypto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/x25519"
)

func TestPartnerKeyRoundTrip(t *testing.T) {
	k, err := GeneratePartnerKey("coursely", nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := MarshalPartnerKey(k)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParsePartnerKey(data)
	if err != nil {
		t.Fatal(err)
	}
	if k2.Name() != "coursely" || !bytes.Equal(k2.BlindingKey().Bytes(), k.BlindingKey().Bytes()) {
		t.Fatal("name or blinding key changed in a round trip")
	}
	if k.SigningKey().KeyID() == "" || k.SigningKey().KeyID() != k2.SigningKey().KeyID() {
		t.Fatal("signing kid missing or changed")
	}

	// A JWS made with the file's key verifies with the public set.
	msg := []byte("hello room")
	sig, err := jws.Sign(msg, jws.WithKey(jwa.EdDSA, k2.SigningKey()))
	if err != nil {
		t.Fatal(err)
	}
	pubJSON, err := json.Marshal(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKeys(pubJSON)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(sig, jws.WithKey(jwa.EdDSA, pub.SigningKey())); err != nil {
		t.Fatalf("verify with public key: %v", err)
	}
	if strings.Contains(string(pubJSON), `"d"`) {
		t.Fatal("public key set contains a private part")
	}

	// The X25519 JWK and the HPKE KEM key are the same key.
	enc, _ := k.Public().Set().Key(1)
	var raw any
	if err := enc.Raw(&raw); err != nil {
		t.Fatal(err)
	}
	kemPub, _ := k.Public().kemPub.MarshalBinary()
	if !bytes.Equal([]byte(raw.(x25519.PublicKey)), kemPub) {
		t.Fatal("JWK X25519 public key differs from the HPKE public key")
	}
}

func TestParsePartnerKeyRejects(t *testing.T) {
	k, _ := GeneratePartnerKey("fitapp", nil)
	good, _ := MarshalPartnerKey(k)
	var doc map[string]json.RawMessage
	json.Unmarshal(good, &doc)
	with := func(field, value string) []byte {
		d := map[string]json.RawMessage{}
		for k, v := range doc {
			d[k] = v
		}
		if value == "" {
			delete(d, field)
		} else {
			d[field] = json.RawMessage(value)
		}
		b, _ := json.Marshal(d)
		return b
	}
	pubSet, _ := json.Marshal(k.Public())
	for name, data := range map[string][]byte{
		"not json":       []byte("{"),
		"wrong format":   with("format", `"cleanroom.dev/partner-key/v0"`),
		"bad name":       with("name", `"Fit App"`),
		"public keys":    with("keys", string(pubSet)),
		"no keys":        with("keys", `{"keys":[]}`),
		"zero scalar":    with("blinding_scalar", `"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="`),
		"missing scalar": with("blinding_scalar", ""),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParsePartnerKey(data); !errors.Is(err, ErrPartnerKey) {
				t.Fatalf("ParsePartnerKey = %v, want ErrPartnerKey", err)
			}
		})
	}
	if _, err := GeneratePartnerKey("Bad Name", nil); err == nil {
		t.Error("bad partner name accepted")
	}
}

func TestParsePublicKeysRejects(t *testing.T) {
	k, _ := GeneratePartnerKey("a", nil)
	full, _ := MarshalPartnerKey(k)
	var doc struct{ Keys json.RawMessage }
	json.Unmarshal(full, &doc)
	pub, _ := json.Marshal(k.Public())
	var set struct{ Keys []json.RawMessage }
	json.Unmarshal(pub, &set)
	one := func(keys ...json.RawMessage) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}
	for name, data := range map[string][]byte{
		"garbage":      []byte("nope"),
		"private keys": doc.Keys,
		"only sig":     one(set.Keys[0]),
		"only enc":     one(set.Keys[1]),
		"two sig":      one(set.Keys[0], set.Keys[0], set.Keys[1]),
		"symmetric":    one(set.Keys[0], set.Keys[1], json.RawMessage(`{"kty":"oct","k":"AAAA"}`)),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParsePublicKeys(data); !errors.Is(err, ErrPartnerKey) {
				t.Fatalf("ParsePublicKeys = %v, want ErrPartnerKey", err)
			}
		})
	}
}

// TestFingerprint: a fingerprint is the same for the same keys however they
// travel, and changes when either key does, the X25519 key a secret is
// sealed to included.
func TestFingerprint(t *testing.T) {
	a, _ := GeneratePartnerKey("a", nil)
	b, _ := GeneratePartnerKey("a", nil)
	keys := func(k *PartnerKey) []json.RawMessage {
		pub, _ := json.Marshal(k.Public())
		var set struct{ Keys []json.RawMessage }
		json.Unmarshal(pub, &set)
		return set.Keys
	}
	parse := func(keys ...json.RawMessage) *PublicKeys {
		t.Helper()
		data, _ := json.Marshal(map[string]any{"keys": keys})
		p, err := ParsePublicKeys(data)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ka, kb := keys(a), keys(b)
	fp := a.Public().Fingerprint()
	if len(fp) != 43 || strings.ContainsAny(fp, "+/=") {
		t.Fatalf("fingerprint %q: want 43 characters of unpadded base64url", fp)
	}
	if got := parse(ka[1], ka[0]).Fingerprint(); got != fp {
		t.Fatalf("the same keys, parsed in another order: %s, want %s", got, fp)
	}
	for name, p := range map[string]*PublicKeys{
		"another X25519 key":  parse(ka[0], kb[1]),
		"another signing key": parse(kb[0], ka[1]),
		"another partner":     b.Public(),
	} {
		if p.Fingerprint() == fp {
			t.Errorf("%s: the fingerprint did not change", name)
		}
	}
}

func TestSealSecret(t *testing.T) {
	alice, _ := GeneratePartnerKey("alice", nil)
	bob, _ := GeneratePartnerKey("bob", nil)
	mallory, _ := GeneratePartnerKey("mallory", nil)
	ks, _ := NewSecret(nil)
	aad := []byte("collab-1/alice/bob")

	sealed, err := SealSecret(nil, ks, alice, bob.Public(), aad)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenSecret(sealed, bob, alice.Public(), aad)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(ks) {
		t.Fatal("opened a different secret")
	}

	forged, _ := SealSecret(nil, ks, mallory, bob.Public(), aad)
	flipped := append([]byte(nil), sealed...)
	flipped[len(flipped)-1] ^= 1
	cases := map[string]func() (*Secret, error){
		"wrong recipient": func() (*Secret, error) { return OpenSecret(sealed, mallory, alice.Public(), aad) },
		"wrong sender":    func() (*Secret, error) { return OpenSecret(sealed, bob, mallory.Public(), aad) },
		"forged sender":   func() (*Secret, error) { return OpenSecret(forged, bob, alice.Public(), aad) },
		"wrong context":   func() (*Secret, error) { return OpenSecret(sealed, bob, alice.Public(), []byte("collab-2/alice/bob")) },
		"tampered":        func() (*Secret, error) { return OpenSecret(flipped, bob, alice.Public(), aad) },
		"truncated":       func() (*Secret, error) { return OpenSecret(sealed[:32], bob, alice.Public(), aad) },
		"empty":           func() (*Secret, error) { return OpenSecret(nil, bob, alice.Public(), aad) },
	}
	for name, open := range cases {
		t.Run(name, func(t *testing.T) {
			if s, err := open(); !errors.Is(err, ErrSealedSecret) || s != nil {
				t.Fatalf("OpenSecret = %v, %v; want ErrSealedSecret", s, err)
			}
		})
	}
}

func TestSecretsDoNotPrint(t *testing.T) {
	ks, _ := NewSecret(nil)
	bk, _ := GenerateBlindingKey(nil)
	pk, _ := GeneratePartnerKey("p", nil)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	log.Info("keys", "ks", ks, "bk", bk, "pk", pk, "mk", MatchKey{1, 2, 3})
	out := fmt.Sprintf("%v %+v %#v %s %v %#v %v", ks, ks, ks, bk, bk, bk, pk) + logs.String()
	for _, secret := range []string{ks.Hex(), bk.Base64(), pk.BlindingKey().Base64(), MatchKey{1, 2, 3}.String()} {
		if strings.Contains(out, secret) {
			t.Fatalf("secret printed: %s", out)
		}
	}
	if !strings.Contains(out, "REDACTED") {
		t.Fatal("expected redaction markers")
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := WriteSecretFile(path, []byte("s3cret"), false); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", st.Mode().Perm())
	}
	if got, err := ReadSecretFile(path); err != nil || string(got) != "s3cret" {
		t.Fatalf("ReadSecretFile = %q, %v", got, err)
	}
	if err := WriteSecretFile(path, []byte("other"), false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwrite without permission: %v", err)
	}
	if err := WriteSecretFile(path, []byte("other"), true); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		os.Chmod(path, mode)
		if _, err := ReadSecretFile(path); !errors.Is(err, ErrInsecurePermissions) {
			t.Errorf("mode %v: ReadSecretFile = %v, want ErrInsecurePermissions", mode, err)
		}
	}
	os.Chmod(path, 0o400)
	if _, err := ReadSecretFile(path); err != nil {
		t.Errorf("mode 0400 refused: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestSecretParse(t *testing.T) {
	for _, bad := range []string{"", "00", strings.Repeat("g", 64), strings.Repeat("0", 66)} {
		if _, err := ParseSecret(bad); !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("ParseSecret(%q) = %v", bad, err)
		}
	}
	if _, err := SecretFromBytes(make([]byte, 31)); !errors.Is(err, ErrInvalidSecret) {
		t.Error("31-byte secret accepted")
	}
	s, err := ParseSecret(" " + strings.Repeat("ab", 32) + "\n")
	if err != nil || s.Hex() != strings.Repeat("ab", 32) {
		t.Fatalf("ParseSecret = %v, %v", s, err)
	}
}
