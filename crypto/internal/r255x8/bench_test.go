package r255x8

import (
	"crypto/sha512"
	"testing"

	gtank "github.com/gtank/ristretto255"
)

// The comparison the issue sets: decode + multiply + encode, and
// hash-to-element + multiply + encode, per element, against
// gtank/ristretto255 (the library behind the PAIR reference code) in the
// same run. Each benchmark op is one element, on one core.

func benchScalar() (*Scalar, *gtank.Scalar) {
	wide := sha512.Sum512([]byte("benchmark scalar"))
	gs := gtank.NewScalar().FromUniformBytes(wide[:])
	b := [32]byte(gs.Encode(nil))
	return NewScalar(&b), gs
}

func benchElements() [Lanes][32]byte {
	var in [Lanes][32]byte
	for l := range Lanes {
		u := sha512.Sum512([]byte{byte(l)})
		copy(in[l][:], gtank.NewElement().FromUniformBytes(u[:]).Encode(nil))
	}
	return in
}

func BenchmarkMulEncoded(b *testing.B) {
	s, gs := benchScalar()
	in := benchElements()
	b.Run("impl=r255x8", func(b *testing.B) {
		var out [Lanes][32]byte
		for i := 0; i < b.N; i += Lanes {
			MulEncoded(&out, s, &in)
		}
	})
	b.Run("impl=gtank", func(b *testing.B) {
		e, r := gtank.NewElement(), gtank.NewElement()
		out := make([]byte, 0, 32)
		for i := 0; b.Loop(); i++ {
			if err := e.Decode(in[i%Lanes][:]); err != nil {
				b.Fatal(err)
			}
			out = r.ScalarMult(gs, e).Encode(out[:0])
		}
	})
}

func BenchmarkMulUniform(b *testing.B) {
	s, gs := benchScalar()
	var in [Lanes][64]byte
	for l := range Lanes {
		in[l] = sha512.Sum512([]byte{byte(l)})
	}
	b.Run("impl=r255x8", func(b *testing.B) {
		var out [Lanes][32]byte
		for i := 0; i < b.N; i += Lanes {
			MulUniform(&out, s, &in)
		}
	})
	b.Run("impl=gtank", func(b *testing.B) {
		e, r := gtank.NewElement(), gtank.NewElement()
		out := make([]byte, 0, 32)
		for i := 0; b.Loop(); i++ {
			e.FromUniformBytes(in[i%Lanes][:])
			out = r.ScalarMult(gs, e).Encode(out[:0])
		}
	})
}

// BenchmarkField is per eight-lane operation.
func BenchmarkField(b *testing.B) {
	var x, y fe8
	x, y = one8, d8
	b.Run("op=mul", func(b *testing.B) {
		for b.Loop() {
			x.mul(&x, &y)
		}
	})
	b.Run("op=square", func(b *testing.B) {
		for b.Loop() {
			x.square(&x)
		}
	})
	b.Run("op=add", func(b *testing.B) {
		for b.Loop() {
			x.add(&x, &y)
		}
	})
}

// BenchmarkValid is decoding alone, per element: what the room pays to
// check every element it receives.
func BenchmarkValid(b *testing.B) {
	in := benchElements()
	for i := 0; i < b.N; i += Lanes {
		if Valid(&in) != 0xffff {
			b.Fatal("invalid")
		}
	}
}
