package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

// TestSegmentSeals: a sealed segment opens to its payload; one damaged
// anywhere does not, nor one sealed with anything but CRC-32C.
func TestSegmentSeals(t *testing.T) {
	payload := bytes.Repeat([]byte("rows of a part "), 100)
	sum := sha256.Sum256(payload)
	sha := append(sum[:], payload...)
	if got, err := OpenSegment([]byte("seg/x"), SealSegment(nil)); err != nil || len(got) != 0 {
		t.Fatalf("an empty sealed segment: %q, %v", got, err)
	}
	for _, tc := range []struct {
		name   string
		sealed []byte
		ok     bool
	}{
		{"sealed", SealSegment(payload), true},
		{"sealed in place", SealInPlace(append(make([]byte, SegmentSeal), payload...)), true},
		{"a SHA-256 seal is not one", sha, false},
		{"payload changed", flip(SealSegment(payload), SegmentSeal+700), false},
		{"checksum changed", flip(SealSegment(payload), 5), false},
		{"tag changed", flip(SealSegment(payload), 0), false},
		{"cut short", SealSegment(payload)[:SegmentSeal+10], false},
		{"too short for a seal", []byte("crc"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := OpenSegment([]byte("seg/x"), tc.sealed)
			if tc.ok && (err != nil || !bytes.Equal(got, payload)) {
				t.Fatalf("OpenSegment: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrCorruptSegment) {
				t.Fatalf("a damaged segment opened: %v", err)
			}
		})
	}
}

// FuzzOpenSegment: opening never panics, and what opens is what was sealed.
func FuzzOpenSegment(f *testing.F) {
	f.Add(SealSegment([]byte("payload")))
	f.Add([]byte("crc1\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := OpenSegment(nil, b)
		if err == nil && !bytes.Equal(SealSegment(p), b) {
			t.Fatal("an opened segment does not seal back to itself")
		}
	})
}

func flip(b []byte, i int) []byte {
	b[i] ^= 0x01
	return b
}
