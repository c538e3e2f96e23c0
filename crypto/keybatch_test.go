package crypto

import (
	"fmt"
	"strings"
	"testing"
)

// keyBatchProfiles are the profiles a KeyBatch is held to MatchKey under.
func keyBatchProfiles(tb testing.TB) []Profile {
	return []Profile{
		mustProfile(tb, ProfilePAIRv1, 0), mustProfile(tb, ProfilePAIRv1, 1),
		mustProfile(tb, ProfileGmailv1, 0), mustProfile(tb, ProfileGmailv1, 44),
	}
}

// sameKeys adds ids to a KeyBatch under p, with the sixteen lanes or
// without, and fails unless every identifier gets MatchKey's key or error,
// in order.
func sameKeys(t *testing.T, p Profile, lanes bool, k Kind, ids []string) {
	t.Helper()
	b := p.NewKeyBatch(0)
	b.lanes = lanes
	var want []MatchKey
	for i, id := range ids {
		mk, err := p.MatchKey(k, id)
		berr := b.Add(k, id)
		if (err == nil) != (berr == nil) || err != nil && err.Error() != berr.Error() {
			t.Fatalf("%s %s lanes=%v: identifier %d (%q): Add = %v, MatchKey = %v", p.Name(), k, lanes, i, id, berr, err)
		}
		if err == nil {
			want = append(want, mk)
		}
	}
	if b.Len() != len(want) {
		t.Fatalf("%s %s lanes=%v: %d keys, want %d", p.Name(), k, lanes, b.Len(), len(want))
	}
	for i, got := range b.Keys() {
		if got != want[i] {
			t.Fatalf("%s %s lanes=%v: key %d differs from MatchKey's", p.Name(), k, lanes, i)
		}
	}
}

// keyBatchCases are identifiers of every kind, of every normalized length
// from 0 to 64 bytes and beyond one block, with Unicode, quoted local
// parts, hashes passed through and refusals among them.
func keyBatchCases() map[Kind][]string {
	cases := map[Kind][]string{
		KindEmail: {
			" Alice.Smith+news@Example.com ", "\"john doe\"@example.com", "\"a@b\"@example.com", "Zoë@Exämple.de",
			"İstanbul@örnek.tr", "用户@例子.广告", "a.b.c+d@GMail.com", "x@googlemail.com", "not-an-email", "",
			"   ", "a@b", "a b@c.d", "\xff@x.io", strings.Repeat("A", 64), strings.Repeat("0", 64),
			"LPmfNlxYm1Kvh9BG3TwGcK6VpRoLMjNHJ0X9wsMQg2c=", strings.Repeat("é", 30) + "@x.io",
		},
		KindPhone:  {"+1 (415) 555-0132", "415-555-0132", "+44 20 7946 0958", "+999", "call me", "+1 415 555 0132 ext 9"},
		KindMAID:   {"6D92078A-8246-4BA4-AE5B-76104861E7DC", "{6d92078a-8246-4ba4-ae5b-76104861e7dc}", "6d92078a82464ba4ae5b76104861e7dc", "00000000-0000-0000-0000-000000000000", "nope"},
		KindCustom: {"", " x ", "ünïcödé", strings.Repeat("z", 200)},
	}
	for n := range 66 {
		// Normalized lengths 0..65 around the one-block limit of 55.
		cases[KindCustom] = append(cases[KindCustom], strings.Repeat("c", n), strings.Repeat("é", n/2))
		if n >= 5 {
			local := strings.Repeat("u", n-4)
			cases[KindEmail] = append(cases[KindEmail], local+"@x.io", strings.ToUpper(local)+"@X.IO",
				"\""+local+"\"@x.io", local+"+tag@gmail.com", " "+local[:len(local)/2]+".ü@x.io ")
		}
	}
	return cases
}

// TestKeyBatchSameAsMatchKey: a KeyBatch gives every identifier the key and
// the error MatchKey gives it, for every profile and kind, with the sixteen
// lanes and without, however many wait at the end.
func TestKeyBatchSameAsMatchKey(t *testing.T) {
	for k, ids := range keyBatchCases() {
		for _, p := range keyBatchProfiles(t) {
			for _, lanes := range []bool{true, false} {
				sameKeys(t, p, lanes, k, ids)
				for n := range 34 { // every count of messages left waiting
					sameKeys(t, p, lanes, k, ids[:min(n, len(ids))])
				}
			}
		}
	}
}

// TestKeyBatchReset: a batch used again after Reset starts from nothing,
// with no message from before waiting.
func TestKeyBatchReset(t *testing.T) {
	p := mustProfile(t, ProfileGmailv1, 0)
	b := p.NewKeyBatch(4)
	b.lanes = true
	for i := range 20 {
		if err := b.Add(KindEmail, fmt.Sprintf("first%d@x.io", i)); err != nil {
			t.Fatal(err)
		}
	}
	b.Reset()
	if err := b.Add(KindEmail, "second@x.io"); err != nil {
		t.Fatal(err)
	}
	want, _ := p.MatchKey(KindEmail, "second@x.io")
	if keys := b.Keys(); len(keys) != 1 || keys[0] != want {
		t.Fatalf("after Reset: %d keys, want the one added since", len(keys))
	}
	var zero Profile
	if err := zero.NewKeyBatch(1).Add(KindCustom, "x"); err == nil {
		t.Fatal("a KeyBatch of the zero Profile took an identifier")
	}
}

// FuzzKeyBatch: any identifiers, one a line, get MatchKey's keys and errors
// from a KeyBatch, with the sixteen lanes and without.
func FuzzKeyBatch(f *testing.F) {
	for k, ids := range keyBatchCases() {
		f.Add(byte(len(k)), strings.Join(ids[:min(20, len(ids))], "\n"))
	}
	kinds := []Kind{KindEmail, KindPhone, KindMAID, KindCustom}
	profiles := keyBatchProfiles(f)
	f.Fuzz(func(t *testing.T, kind byte, in string) {
		ids := strings.Split(in, "\n")
		k := kinds[int(kind)%len(kinds)]
		for _, p := range profiles {
			sameKeys(t, p, true, k, ids)
			sameKeys(t, p, false, k, ids)
		}
	})
}

func TestKeyBatchAllocations(t *testing.T) {
	p := mustProfile(t, ProfileGmailv1, 0)
	b := p.NewKeyBatch(64)
	if n := testing.AllocsPerRun(100, func() {
		b.Reset()
		for range 40 {
			b.Add(KindEmail, " Customer0000042@Example.com ")
		}
		b.Keys()
	}); n != 0 {
		t.Fatalf("a KeyBatch of plain emails allocates %.0f times", n)
	}
}

// BenchmarkKeyBatch: the match keys of 1,024 plain emails, one a row, by a
// KeyBatch (sixteen at a time where the CPU can) and by MatchKey one at a
// time, in the same run.
func BenchmarkKeyBatch(b *testing.B) {
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf(" Customer%07d@Example.com ", i)
	}
	p := mustProfile(b, ProfileGmailv1, 0)
	b.Run("impl=batch", func(b *testing.B) {
		kb := p.NewKeyBatch(len(ids))
		b.ReportAllocs()
		for b.Loop() {
			kb.Reset()
			for _, id := range ids {
				if err := kb.Add(KindEmail, id); err != nil {
					b.Fatal(err)
				}
			}
			kb.Keys()
		}
		reportRows(b, len(ids))
	})
	b.Run("impl=matchkey", func(b *testing.B) {
		keys := make([]MatchKey, len(ids))
		b.ReportAllocs()
		for b.Loop() {
			for i, id := range ids {
				k, err := p.MatchKey(KindEmail, id)
				if err != nil {
					b.Fatal(err)
				}
				keys[i] = k
			}
		}
		reportRows(b, len(ids))
	})
}
