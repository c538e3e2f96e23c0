package crypto

import "testing"

// FuzzValid: Valid accepts exactly what MatchKey accepts, for every kind
// and profile.
func FuzzValid(f *testing.F) {
	for _, s := range []string{
		" Alice.Smith+news@Example.com ", "\t.+@gmail.com", "a@b..c", "@b.c", "İ@x.io", "\xff@x.io", "",
		"+44 20 7946 0958", "020 7946 0958", "6F9619FF-8B86-D011-B42D-00C04FC964FF", "not-a-uuid",
		"5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8", "XohImNooBHFR0OVvjcYpJ3NgPQ1qq73WKhHvch0VQtg=",
	} {
		f.Add(s)
	}
	profiles := []Profile{mustProfile(f, ProfilePAIRv1, 0), mustProfile(f, ProfileGmailv1, 44)}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range profiles {
			for _, k := range []Kind{KindEmail, KindPhone, KindMAID, KindCustom} {
				_, err := p.MatchKey(k, s)
				if p.Valid(k, s) != (err == nil) {
					t.Fatalf("%s, %s: %q: Valid says %v, MatchKey's error is %v", p.Name(), k, s, p.Valid(k, s), err)
				}
			}
		}
	})
}

func TestValidAllocations(t *testing.T) {
	p := mustProfile(t, ProfileGmailv1, 0)
	if n := testing.AllocsPerRun(100, func() { p.Valid(KindEmail, " Customer0000042@Example.com ") }); n != 0 {
		t.Fatalf("Valid of a plain email allocates %.0f times", n)
	}
}

// BenchmarkValid checks a plain email, as WriteAudience does for every row
// of a list; BenchmarkNormalize/email is its match key.
func BenchmarkValid(b *testing.B) {
	p := mustProfile(b, ProfileGmailv1, 0)
	b.ReportAllocs()
	for b.Loop() {
		p.Valid(KindEmail, "customer0000042@example.com")
	}
}
