package cleanroom

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// FuzzTokenForm: checkTokenForm never panics, accepts the tokens
// api.SignRequestToken makes, and accepts nothing that is not three
// canonical base64url segments whose header holds alg EdDSA and at most kid
// and typ, and whose claims are an object.
func FuzzTokenForm(f *testing.F) {
	k, err := crypto.GeneratePartnerKey("alpha", nil)
	if err != nil {
		f.Fatal(err)
	}
	good, err := api.SignRequestToken(k.SigningKey(), "alpha", "room-x", "jti-1", time.Unix(1_800_000_000, 0))
	if err != nil {
		f.Fatal(err)
	}
	if r := checkTokenForm(good); r != "" {
		f.Fatalf("a token of SignRequestToken's is refused: %s", r)
	}
	seg := strings.Split(good, ".")
	enc := base64.RawURLEncoding.EncodeToString
	for _, s := range []string{
		good, "", "..", "a.b.c", good + ".", `{"payload":"` + seg[1] + `"}`,
		enc([]byte(`{"alg":"EdDSA","crit":["x"]}`)) + "." + seg[1] + "." + seg[2],
		seg[0] + "." + enc([]byte(`{"exp":"1"}`)) + "." + seg[2],
		seg[0] + "." + enc([]byte(`{"exp":1,"exp":2}`)) + "." + seg[2],
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if checkTokenForm(raw) != "" {
			return
		}
		parts := strings.Split(raw, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %d segments", len(parts))
		}
		var header map[string]any
		hb, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
		if err != nil || json.Unmarshal(hb, &header) != nil {
			t.Fatalf("accepted a header that does not decode: %v", err)
		}
		if header["alg"] != "EdDSA" {
			t.Fatalf("accepted alg %v", header["alg"])
		}
		for name := range header {
			if name != "alg" && name != "kid" && name != "typ" {
				t.Fatalf("accepted header parameter %q", name)
			}
		}
		var claims map[string]any
		cb, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
		if err != nil || json.Unmarshal(cb, &claims) != nil {
			t.Fatalf("accepted claims that do not decode: %v", err)
		}
		for _, name := range []string{"exp", "iat", "nbf"} {
			if v, ok := claims[name]; ok {
				if _, num := v.(float64); !num {
					t.Fatalf("accepted %s of type %T", name, v)
				}
			}
		}
	})
}

// BenchmarkTokenForm: the form check runs on every request, before jwx.
func BenchmarkTokenForm(b *testing.B) {
	k, err := crypto.GeneratePartnerKey("alpha", nil)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := api.SignRequestToken(k.SigningKey(), "alpha", "room-x", "jti-1", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if checkTokenForm(tok) != "" {
			b.Fatal("refused")
		}
	}
}
