package crypto

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"testing"

	r255 "github.com/bwesterb/go-ristretto"
)

// collabKeyRoot is the scalar 7: a partner key of known scalar, so the
// vector below can be checked by anyone.
func collabKeyRoot(t *testing.T) *PartnerKey {
	t.Helper()
	k, err := GeneratePartnerKey("coursely", nil)
	if err != nil {
		t.Fatal(err)
	}
	seven := make([]byte, ScalarSize)
	seven[0] = 7
	if k.blinding, err = NewBlindingKey(seven); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestCollaborationKeyVector pins the derivation: a change of it would
// leave a partner unable to re-encrypt for, or upload again to, a
// collaboration it joined before. The vector is recomputed here from its
// definition, HMAC-SHA512 keyed with the scalar over the label and the
// length-prefixed parts, reduced.
func TestCollaborationKeyVector(t *testing.T) {
	const room, collab = "room-test+1a2b3c4d+AQID", "alliance"
	const want = "fywz+p4HfKEXrJtTCI+1TOzPGAdclIx6qYpRiEZh/wM=" // Python: hmac + int.from_bytes(…, "little") % ℓ
	k := collabKeyRoot(t)
	got := k.CollaborationKey(room, collab)

	msg := append([]byte("cleanroom.dev/v1/collaboration-blinding-key"), 0)
	for _, p := range []string{room, collab} {
		msg = binary.BigEndian.AppendUint32(msg, uint32(len(p)))
		msg = append(msg, p...)
	}
	mac := hmac.New(sha512.New, k.BlindingKey().Bytes())
	mac.Write(append(msg, 0))
	var wide [64]byte
	mac.Sum(wide[:0])
	var s r255.Scalar
	s.SetReduced(&wide)
	if b64 := base64.StdEncoding.EncodeToString(s.Bytes()); got.Base64() != b64 {
		t.Fatalf("CollaborationKey = %s, its definition gives %s", got.Base64(), b64)
	}
	if got.Base64() != want {
		t.Fatalf("CollaborationKey = %s, want the pinned %s", got.Base64(), want)
	}
}

// TestCollaborationKeyDiffers: each room, collaboration and partner has
// its own key, none the partner's scalar, and moving a byte from one part
// to the other changes it.
func TestCollaborationKeyDiffers(t *testing.T) {
	k := collabKeyRoot(t)
	other, err := GeneratePartnerKey("fitapp", nil)
	if err != nil {
		t.Fatal(err)
	}
	base := k.CollaborationKey("room-a+1+AA", "c1")
	if again := k.CollaborationKey("room-a+1+AA", "c1"); again.Base64() != base.Base64() {
		t.Fatal("the same collaboration's key differs from call to call")
	}
	for _, c := range []struct {
		name string
		key  *BlindingKey
	}{
		{"the partner's scalar", k.BlindingKey()},
		{"another collaboration", k.CollaborationKey("room-a+1+AA", "c2")},
		{"another room", k.CollaborationKey("room-b+1+AA", "c1")},
		{"a byte moved between the parts", k.CollaborationKey("room-a+1+AAc", "1")},
		{"another partner", other.CollaborationKey("room-a+1+AA", "c1")},
	} {
		if c.key.Base64() == base.Base64() {
			t.Errorf("%s has the collaboration's key", c.name)
		}
	}
}

// TestCollaborationKeysCommute: keys derived for one collaboration
// encrypt and re-encrypt as any PAIR keys do.
func TestCollaborationKeysCommute(t *testing.T) {
	a, b := collabKeyRoot(t), collabKeyRoot(t)
	b.blinding, _ = GenerateBlindingKey(nil)
	ka, kb := a.CollaborationKey("room+1+AA", "c1"), b.CollaborationKey("room+1+AA", "c1")
	ks, err := NewSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	m := MatchKey{1, 2, 3}
	ea, _ := ka.Encrypt(ks, m)
	eb, _ := kb.Encrypt(ks, m)
	ab, _ := kb.Reencrypt(ea)
	ba, _ := ka.Reencrypt(eb)
	if ab.String() != ba.String() {
		t.Fatal("k_b·k_a·P differs from k_a·k_b·P")
	}
}
