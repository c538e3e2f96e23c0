package crypto

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func mustProfile(t testing.TB, name string, code int) Profile {
	t.Helper()
	p, err := LookupProfile(name, ProfileOptions{DefaultCountryCode: code})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNormalize(t *testing.T) {
	const sha = "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3" // SHA-256("123")
	shaB64 := "pmWkWSBCL51Bfkhn79xPuKBKHz//H6B+mY6G9/eieuM="
	tests := []struct {
		profile string
		code    int
		kind    Kind
		in      string
		want    string // "" means an error is expected
	}{
		// email, pair-v1
		{ProfilePAIRv1, 0, KindEmail, " Alice.Smith@Example.com ", "alice.smith@example.com"},
		{ProfilePAIRv1, 0, KindEmail, "\tBOB+News@Gmail.COM\r\n", "bob+news@gmail.com"},
		{ProfilePAIRv1, 0, KindEmail, "b.o.b@gmail.com", "b.o.b@gmail.com"}, // pair-v1 keeps dots
		{ProfilePAIRv1, 0, KindEmail, "ÉLODIE@Exemple.FR", "élodie@exemple.fr"},
		{ProfilePAIRv1, 0, KindEmail, "frank@xn--bcher-kva.example", "frank@xn--bcher-kva.example"},
		{ProfilePAIRv1, 0, KindEmail, "\u00a0carol@hello.org\u3000", "carol@hello.org"}, // unicode spaces trimmed
		{ProfilePAIRv1, 0, KindEmail, "eve.o'neil@mail.example", "eve.o'neil@mail.example"},
		{ProfilePAIRv1, 0, KindEmail, "no-at-sign.example.com", ""},
		{ProfilePAIRv1, 0, KindEmail, "a@b@example.com", ""},
		{ProfilePAIRv1, 0, KindEmail, "@example.com", ""},
		{ProfilePAIRv1, 0, KindEmail, "alice@", ""},
		{ProfilePAIRv1, 0, KindEmail, "alice@localhost", ""},
		{ProfilePAIRv1, 0, KindEmail, "alice@example..com", ""},
		{ProfilePAIRv1, 0, KindEmail, "alice smith@example.com", ""},
		{ProfilePAIRv1, 0, KindEmail, "alice\x00@example.com", ""},
		{ProfilePAIRv1, 0, KindEmail, "   ", ""},
		{ProfilePAIRv1, 0, KindEmail, strings.Repeat("a", 250) + "@x.io", ""},
		// email, gmail-v1
		{ProfileGmailv1, 0, KindEmail, "B.O.B+news@Gmail.com", "bob@gmail.com"},
		{ProfileGmailv1, 0, KindEmail, "bob@googlemail.com", "bob@gmail.com"},
		{ProfileGmailv1, 0, KindEmail, "b.o.b+x+y@gmail.com", "bob@gmail.com"},
		{ProfileGmailv1, 0, KindEmail, "b.o.b+x@example.com", "b.o.b+x@example.com"}, // other domains untouched
		{ProfileGmailv1, 0, KindEmail, "+tag@gmail.com", ""},
		{ProfileGmailv1, 0, KindEmail, "...@gmail.com", ""},
		// phone
		{ProfilePAIRv1, 0, KindPhone, "+1 (415) 555-0132", "+14155550132"},
		{ProfilePAIRv1, 0, KindPhone, "+44 20 7946 0018", "+442079460018"},
		{ProfilePAIRv1, 44, KindPhone, "020 7946 0018", "+442079460018"}, // national, trunk 0 dropped
		{ProfilePAIRv1, 33, KindPhone, "06.12.34.56.78", "+33612345678"},
		{ProfilePAIRv1, 1, KindPhone, "415-555-0132", "+14155550132"},
		{ProfilePAIRv1, 1, KindPhone, "+33 6 12 34 56 78", "+33612345678"}, // explicit code beats the default
		{ProfilePAIRv1, 0, KindPhone, "415-555-0132", ""},                  // national, no default
		{ProfilePAIRv1, 0, KindPhone, "+1 415 555", ""},
		{ProfilePAIRv1, 0, KindPhone, "call +1 415 555 0132", ""},
		{ProfilePAIRv1, 0, KindPhone, "+99 123 456 789", ""},
		// maid
		{ProfilePAIRv1, 0, KindMAID, "6D92078A-8246-4BA4-AE5B-76104861E7DC", "6d92078a-8246-4ba4-ae5b-76104861e7dc"},
		{ProfilePAIRv1, 0, KindMAID, "{6d92078a-8246-4ba4-ae5b-76104861e7dc}", "6d92078a-8246-4ba4-ae5b-76104861e7dc"},
		{ProfilePAIRv1, 0, KindMAID, "6d92078a82464ba4ae5b76104861e7dc", "6d92078a-8246-4ba4-ae5b-76104861e7dc"},
		{ProfilePAIRv1, 0, KindMAID, "00000000-0000-0000-0000-000000000000", ""},
		{ProfilePAIRv1, 0, KindMAID, "6d92078a-8246-4ba4-ae5b-76104861e7d", ""},
		{ProfilePAIRv1, 0, KindMAID, "6d92078a+8246-4ba4-ae5b-76104861e7dc", ""},
		{ProfilePAIRv1, 0, KindMAID, "zd92078a-8246-4ba4-ae5b-76104861e7dc", ""},
		// custom
		{ProfilePAIRv1, 0, KindCustom, "  Loyalty#00123 ", "Loyalty#00123"},
		{ProfilePAIRv1, 0, KindCustom, "\t\n", ""},
		// already hashed, any kind
		{ProfilePAIRv1, 0, KindEmail, strings.ToUpper(sha), sha},
		{ProfilePAIRv1, 0, KindPhone, " " + sha + " ", sha},
		{ProfilePAIRv1, 0, KindMAID, shaB64, sha},
		{ProfilePAIRv1, 0, KindCustom, sha, sha},
		{ProfilePAIRv1, 0, KindEmail, "zz" + sha[2:], ""}, // 64 characters, not hex, not an email
	}
	for _, tt := range tests {
		t.Run(tt.profile+"/"+string(tt.kind)+"/"+tt.in, func(t *testing.T) {
			p := mustProfile(t, tt.profile, tt.code)
			got, err := p.Normalize(tt.kind, tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Normalize = %q, want an error", got)
				}
				checkIdentifierError(t, err, tt.in)
				return
			}
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Normalize = %q, want %q", got, tt.want)
			}
			again, err := p.Normalize(tt.kind, got)
			if err != nil || again != got {
				t.Fatalf("not idempotent: %q -> %q, %v", got, again, err)
			}
			mk, err := p.MatchKey(tt.kind, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			wantKey := sha256.Sum256([]byte(tt.want))
			if tt.want == sha {
				wantKey = MatchKey(must(hex.DecodeString(sha)))
			}
			if mk != wantKey {
				t.Fatalf("MatchKey = %s, want %x", mk, wantKey)
			}
		})
	}
}

func must(b []byte, err error) [32]byte {
	if err != nil || len(b) != 32 {
		panic("bad test constant")
	}
	return [32]byte(b)
}

// knownReasons is every reason an IdentifierError may give. Errors are built
// only from these and the kind, so no input can reach an error's text; a new
// reason must be added here.
var knownReasons = map[string]bool{
	"empty": true, "want 64 hex characters": true, "not hexadecimal": true,
	"longer than 254 bytes": true, "no @ sign": true, "more than one @ sign": true,
	"empty local part": true, "malformed domain": true,
	"contains white space or a control character": true,
	"not a UUID": true, "the all-zero id (ad tracking limited)": true,
	"no country code and no default country code set":               true,
	"contains characters other than digits, spaces and + - ( ) . /": true,
	"not a phone number": true, "not a valid number in its country's numbering plan": true,
}

func checkIdentifierError(t testing.TB, err error, input string) {
	t.Helper()
	var ie *IdentifierError
	if !errors.As(err, &ie) || !errors.Is(err, ErrInvalidIdentifier) {
		t.Fatalf("error %v is not an IdentifierError", err)
	}
	if !knownReasons[ie.Reason] {
		t.Fatalf("unknown reason %q: errors must use fixed reasons", ie.Reason)
	}
	if s := strings.TrimSpace(input); len(s) > 12 && strings.Contains(err.Error(), s) {
		t.Fatalf("error %q echoes the identifier", err)
	}
}

func TestLookupProfile(t *testing.T) {
	for _, name := range Profiles() {
		p := mustProfile(t, name, 0)
		if p.Name() != name {
			t.Errorf("Name = %q, want %q", p.Name(), name)
		}
	}
	if _, err := LookupProfile("pair-v2", ProfileOptions{}); err == nil {
		t.Error("unknown profile accepted")
	}
	if _, err := LookupProfile(ProfilePAIRv1, ProfileOptions{DefaultCountryCode: 999}); err == nil {
		t.Error("unknown country calling code accepted")
	}
	if _, err := (Profile{}).Normalize(KindEmail, "a@b.co"); err == nil {
		t.Error("zero Profile accepted")
	}
	if _, err := mustProfile(t, ProfilePAIRv1, 0).Normalize("ssn", "123"); err == nil {
		t.Error("unknown kind accepted")
	}
	for _, k := range []string{"email", "phone", "maid", "custom"} {
		if _, err := ParseKind(k); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseKind("EMAIL"); err == nil {
		t.Error("ParseKind accepted EMAIL")
	}
}

func TestParseMatchKey(t *testing.T) {
	const h = "7dcd3a39ad3a8d2145645ec612ed4f6fa3f297b47bdcf7e0aeb76040f5e24e89"
	k, err := ParseMatchKey(strings.ToUpper(h))
	if err != nil || k.String() != h {
		t.Fatalf("ParseMatchKey = %v, %v", k, err)
	}
	for _, bad := range []string{"", h[:63], h + "0", "g" + h[1:]} {
		if _, err := ParseMatchKey(bad); !errors.Is(err, ErrInvalidIdentifier) {
			t.Errorf("ParseMatchKey(%q) = %v", bad, err)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		" Alice.Smith@Example.com ", "b.o.b+x@googlemail.com", "+1 (415) 555-0132", "020 7946 0018",
		"6D92078A-8246-4BA4-AE5B-76104861E7DC", "pmWkWSBCL51Bfkhn79xPuKBKHz//H6B+mY6G9/eieuM=",
		"a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3", "İ@x.io", "\xff@x.io",
	} {
		f.Add(s)
	}
	profiles := []Profile{mustProfile(f, ProfilePAIRv1, 0), mustProfile(f, ProfileGmailv1, 44)}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range profiles {
			for _, k := range []Kind{KindEmail, KindPhone, KindMAID, KindCustom} {
				got, err := p.Normalize(k, s)
				if err != nil {
					checkIdentifierError(t, err, s)
					continue
				}
				again, err := p.Normalize(k, got)
				if err != nil || again != got {
					t.Fatalf("%s/%s: not idempotent: %q -> %q -> %q (%v)", p.Name(), k, s, got, again, err)
				}
				if _, err := p.MatchKey(k, s); err != nil {
					t.Fatalf("MatchKey fails where Normalize succeeds: %v", err)
				}
			}
		}
	})
}
