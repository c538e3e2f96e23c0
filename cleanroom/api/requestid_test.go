package api

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidRequestID: the ids the room takes are those of the pattern the
// API documents, and no others.
func TestValidRequestID(t *testing.T) {
	documented := regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	for _, id := range []string{
		"", "a", "ticket-7", "A.b_c-9", strings.Repeat("z", 64), strings.Repeat("z", 65),
		"a b", "a/b", "a@b", "ä", "a\x00", "a\n", "%41", "+", "~",
	} {
		if got, want := ValidRequestID(id), documented.MatchString(id); got != want {
			t.Errorf("ValidRequestID(%q) = %v, want %v", id, got, want)
		}
	}
}

func FuzzValidRequestID(f *testing.F) {
	documented := regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	f.Add("ticket-7")
	f.Add("a b")
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := ValidRequestID(id), documented.MatchString(id); got != want {
			t.Errorf("ValidRequestID(%q) = %v, want %v", id, got, want)
		}
	})
}
