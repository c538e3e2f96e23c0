package bundle

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestRequestDigestSpec: the token and the digests are what the API
// documents, computed here from their definition; IsRequestToken and
// IsRequest find an entry by each form and by nothing else.
func TestRequestDigestSpec(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	salt, principal, id := "00112233445566778899aabbccddeeff", "pulsefit", "ticket-7"
	m := hmac.New(sha256.New, key)
	m.Write([]byte("cleanroom.dev/request-token/v1\x00" + principal + "\x00" + id + "\x00"))
	token := m.Sum(nil)
	m = hmac.New(sha256.New, token)
	m.Write([]byte("cleanroom.dev/request-id/v2\x00" + salt + "\x00"))
	keyed := hex.EncodeToString(m.Sum(nil)[:16])
	plain := sha256.Sum256([]byte("cleanroom.dev/request-id/v1\x00" + salt + "\x00" + principal + "\x00" + id + "\x00"))
	salted := hex.EncodeToString(plain[:16])
	if got := RequestToken(key, principal, id); !hmac.Equal(got, token) {
		t.Errorf("RequestToken = %x, want %x", got, token)
	}
	if got := RequestDigest(token, salt); got != keyed {
		t.Errorf("RequestDigest = %s, want %s", got, keyed)
	}
	e := Entry{Principal: principal, Salt: salt, RequestID: keyed}
	if !IsRequestToken(e, token) || IsRequestToken(e, RequestToken(key, principal, "ticket-8")) || IsRequestToken(e, nil) ||
		IsRequestToken(Entry{Principal: principal, RequestID: keyed}, token) {
		t.Error("IsRequestToken finds the entry by another token, or not by its own")
	}
	if got := SaltedRequestDigest(salt, principal, id); got != salted {
		t.Errorf("SaltedRequestDigest = %s, want %s", got, salted)
	}
	other := []byte("fedcba9876543210fedcba9876543210")
	for _, tc := range []struct {
		name string
		e    Entry
		key  []byte
		id   string
		want bool
	}{
		{"keyed, its key", Entry{Principal: principal, Salt: salt, RequestID: keyed}, key, id, true},
		{"keyed, another key", Entry{Principal: principal, Salt: salt, RequestID: keyed}, other, id, false},
		{"keyed, no key", Entry{Principal: principal, Salt: salt, RequestID: keyed}, nil, id, false},
		{"keyed, another id", Entry{Principal: principal, Salt: salt, RequestID: keyed}, key, "ticket-8", false},
		{"keyed, another principal", Entry{Principal: "coursely", Salt: salt, RequestID: keyed}, key, id, false},
		{"salted, no key", Entry{Principal: principal, Salt: salt, RequestID: salted}, nil, id, true},
		{"salted, a key", Entry{Principal: principal, Salt: salt, RequestID: salted}, key, id, true},
		{"unsalted", Entry{Principal: principal, RequestID: id}, nil, id, true},
		{"unsalted, another id", Entry{Principal: principal, RequestID: id}, nil, "ticket-8", false},
		{"no id", Entry{Principal: principal, Salt: salt}, key, "", false},
		{"no id in the entry", Entry{Principal: principal, Salt: salt}, key, id, false},
	} {
		if got := IsRequest(tc.e, tc.key, tc.id); got != tc.want {
			t.Errorf("%s: IsRequest = %v, want %v", tc.name, got, tc.want)
		}
	}
}
