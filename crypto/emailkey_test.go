package crypto

import (
	"strings"
	"testing"
)

// FuzzEmailKey: the one-pass ASCII path gives the general path's key for
// every address it accepts, and accepts every plain-ASCII address the
// general path does (but the lengths of a SHA-256 passed through).
func FuzzEmailKey(f *testing.F) {
	for _, s := range []string{
		" Alice.Smith+news@Example.com ", "b.o.b+x@googlemail.com", "\t.+@gmail.com", "a@b..c", "a@.b.c", "a@b.c.",
		"@b.c", "a@b@c.d", "a b@c.d", "A@B.C\r\n", "x@gmail.com", "İ@x.io", "\xff@x.io", "a\x7f@b.c", "a@bc",
		strings.Repeat("a", 40) + "@b.c", strings.Repeat("a", 250) + "@b.c",
	} {
		f.Add(s)
	}
	profiles := []Profile{mustProfile(f, ProfilePAIRv1, 0), mustProfile(f, ProfileGmailv1, 44)}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range profiles {
			sameEmailKey(t, p, s)
		}
	})
}

// sameEmailKey fails unless the ASCII path and the general path agree on
// the address s under p, as FuzzEmailKey says.
func sameEmailKey(t *testing.T, p Profile, s string) {
	t.Helper()
	fast, ok := p.asciiEmailKey(s)
	slow, err := p.matchKey(KindEmail, s)
	if ok && (err != nil || fast != slow) {
		t.Fatalf("%s: %q: the ASCII path's key differs from the general path's (%v)", p.Name(), s, err)
	}
	trimmed := strings.TrimSpace(s)
	plain := !strings.ContainsFunc(trimmed, func(r rune) bool { return r >= 0x7f })
	if !ok && err == nil && plain && len(trimmed) != 44 && len(trimmed) != 64 {
		t.Fatalf("%s: %q: the ASCII path refuses a plain address the general path takes", p.Name(), s)
	}
}

// TestEmailKeyEveryByte: every byte value, at every offset of the first
// two eight-byte words and the tail after them, in the local part and the
// domain, gets the same treatment from the ASCII path as from the general
// path.
func TestEmailKeyEveryByte(t *testing.T) {
	profiles := []Profile{mustProfile(t, ProfilePAIRv1, 0), mustProfile(t, ProfileGmailv1, 0)}
	for _, base := range []string{"abcdefghijklmnopq@example.com", "ab@cdefghijklmnopqrstu.io", "abcdefgh.jklmnopq@gmail.com"} {
		for i := range len(base) {
			for c := range 256 {
				s := base[:i] + string([]byte{byte(c)}) + base[i+1:]
				for _, p := range profiles {
					sameEmailKey(t, p, s)
				}
			}
		}
	}
}

func TestEmailKeyAllocations(t *testing.T) {
	p := mustProfile(t, ProfileGmailv1, 0)
	if n := testing.AllocsPerRun(100, func() { p.MatchKey(KindEmail, " Customer0000042@Example.com ") }); n != 0 {
		t.Fatalf("MatchKey of a plain email allocates %.0f times", n)
	}
}
