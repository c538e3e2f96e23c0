package crypto

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// FuzzDecodeElement: decoding never panics, an accepted encoding re-encodes
// to the same bytes, and every rejection is one of the sentinel errors.
func FuzzDecodeElement(f *testing.F) {
	var v rfc9496Vectors
	readJSON(f, "rfc9496.json", &v)
	for _, h := range append(append(v.Multiples, v.Invalid.NonCanonical...), v.Invalid.NotAnElement...) {
		f.Add(hexBytes(h))
	}
	f.Add([]byte{})
	f.Add(make([]byte, 33))
	k, err := GenerateBlindingKey(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeElement(b)
		if err != nil {
			if !errors.Is(err, ErrElementLength) && !errors.Is(err, ErrNonCanonical) &&
				!errors.Is(err, ErrNotAnElement) && !errors.Is(err, ErrIdentity) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if eb := e.Bytes(); !bytes.Equal(eb[:], b) {
			t.Fatal("accepted encoding does not round-trip")
		}
		re, err := k.Reencrypt(e)
		if err != nil {
			t.Fatalf("Reencrypt of a valid element: %v", err)
		}
		if back, err := k.Decrypt(re); err != nil || back != e {
			t.Fatal("Decrypt(Reencrypt(e)) != e")
		}
	})
}

// FuzzParseElement: the text form never panics and agrees with the binary.
func FuzzParseElement(f *testing.F) {
	f.Add([]byte("NHd2q1BNFcB3SgMZRF48IoWpujsIe7YrUbcI8tL9CTg="))
	f.Add([]byte("NHd2q1BNFcB3SgMZRF48IoWpujsIe7YrUbcI8tL9CTg"))
	f.Add([]byte("===="))
	f.Fuzz(func(t *testing.T, text []byte) {
		e, err := ParseElement(text)
		if err != nil {
			return
		}
		if e.String() != string(text) {
			t.Fatalf("accepted %q but it prints as %q", text, e)
		}
		raw, _ := base64.StdEncoding.DecodeString(string(text))
		if _, err := DecodeElement(raw); err != nil {
			t.Fatal("text accepted, binary rejected")
		}
	})
}

// FuzzParseKeys: key material parsers never panic on any input.
func FuzzParseKeys(f *testing.F) {
	k, _ := GeneratePartnerKey("seed", nil)
	priv, _ := MarshalPartnerKey(k)
	pub, _ := k.Public().MarshalJSON()
	f.Add(priv)
	f.Add(pub)
	f.Add([]byte(k.BlindingKey().Base64()))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParsePartnerKey(b)
		ParsePublicKeys(b)
		ParseBlindingKey(string(b))
		ParseSecret(string(b))
		ParseMatchKey(string(b))
	})
}

// FuzzCheckElements: the eight-lane check agrees with DecodeElement on every
// element of a run (the same verdict, the same error, the first bad index),
// and the batch multiplication with the serial one.
func FuzzCheckElements(f *testing.F) {
	var v rfc9496Vectors
	readJSON(f, "rfc9496.json", &v)
	var run []byte
	for _, h := range v.Multiples[1:] {
		run = append(run, hexBytes(h)...)
	}
	f.Add(run)
	for _, h := range append(v.Invalid.NonCanonical, v.Invalid.NotAnElement...) {
		f.Add(append(append([]byte(nil), run[:5*ElementSize]...), hexBytes(h)...))
	}
	f.Add(make([]byte, 31))
	k, err := GenerateBlindingKey(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckElements(b)
		if len(b)%ElementSize != 0 {
			if !errors.Is(err, ErrElementLength) {
				t.Fatalf("ragged input: %v", err)
			}
			return
		}
		var els []Element
		for i := 0; i < len(b)/ElementSize; i++ {
			e, want := DecodeElement(b[i*ElementSize : (i+1)*ElementSize])
			els = append(els, e)
			if want != nil {
				if !errors.Is(err, want) || !strings.HasPrefix(err.Error(), "element "+strconv.Itoa(i)+":") {
					t.Fatalf("element %d: batch says %v, serial %v", i, err, want)
				}
				return
			}
		}
		if err != nil {
			t.Fatalf("batch rejects what the serial decoder accepts: %v", err)
		}
		got := make([]Element, len(els))
		if err := k.ReencryptBatch(context.Background(), got, els); err != nil {
			t.Fatal(err)
		}
		for i, e := range els {
			if want, _ := k.Reencrypt(e); got[i] != want {
				t.Fatalf("element %d: batch and serial re-encryption differ", i)
			}
		}
	})
}
