package cleanroom

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

// TestSegmentSeals: a sealed segment opens to its payload; one damaged
// anywhere does not; a segment sealed before CRC-32C seals (SHA-256 first)
// still opens.
func TestSegmentSeals(t *testing.T) {
	payload := bytes.Repeat([]byte("rows of a part "), 100)
	sum := sha256.Sum256(payload)
	legacy := append(sum[:], payload...)
	if got, err := openSegment([]byte("seg/x"), sealSegment(nil)); err != nil || len(got) != 0 {
		t.Fatalf("an empty sealed segment: %q, %v", got, err)
	}
	for _, tc := range []struct {
		name   string
		sealed []byte
		ok     bool
	}{
		{"sealed", sealSegment(payload), true},
		{"a SHA-256 seal is not one", legacy, false},
		{"payload changed", flip(sealSegment(payload), sealSize+700), false},
		{"checksum changed", flip(sealSegment(payload), 5), false},
		{"tag changed", flip(sealSegment(payload), 0), false},
		{"cut short", sealSegment(payload)[:sealSize+10], false},
		{"too short for a seal", []byte("crc"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := openSegment([]byte("seg/x"), tc.sealed)
			if tc.ok && (err != nil || !bytes.Equal(got, payload)) {
				t.Fatalf("openSegment: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrCorruptSegment) {
				t.Fatalf("a damaged segment opened: %v", err)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	b[i] ^= 0x01
	return b
}
