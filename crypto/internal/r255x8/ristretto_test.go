package r255x8

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/cloudflare/circl/group"
	gtank "github.com/gtank/ristretto255"
)

type rfc9496Vectors struct {
	Multiples []string `json:"multiples_of_generator"`
	Invalid   struct {
		NonCanonical []string `json:"non_canonical"`
		NotAnElement []string `json:"not_an_element"`
	} `json:"invalid_encodings"`
	OneWayMap []struct {
		Label   string `json:"label"`
		Element string `json:"element"`
	} `json:"one_way_map"`
}

func readVectors(t *testing.T) rfc9496Vectors {
	b, err := os.ReadFile("../../testdata/rfc9496.json")
	if err != nil {
		t.Fatal(err)
	}
	var v rfc9496Vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Multiples) != 16 || len(v.OneWayMap) != 7 {
		t.Fatal("vector file incomplete")
	}
	return v
}

func hex32(t *testing.T, s string) (b [32]byte) {
	if n, err := hex.Decode(b[:], []byte(s)); err != nil || n != 32 {
		t.Fatalf("bad hex %q", s)
	}
	return b
}

func scalarOf(x uint64) *Scalar {
	var b [32]byte
	for i := range 8 {
		b[i] = byte(x >> (8 * i))
	}
	return NewScalar(&b)
}

// TestRFC9496 runs the RFC's vectors through every lane: multiples of the
// generator (decoded, doubled, encoded), the invalid encodings, and the
// one-way map.
func TestRFC9496(t *testing.T) {
	v := readVectors(t)
	forEachField(t, func(t *testing.T) {
		// Lane l holds k·B, k = l%7 + 1; times 2 it must be 2k·B (the
		// vectors stop at 15·B).
		var in, out [Lanes][32]byte
		for l := range Lanes {
			in[l] = hex32(t, v.Multiples[l%7+1])
		}
		if valid := MulEncoded(&out, scalarOf(2), &in); valid != 0xffff {
			t.Fatalf("valid multiples reported as %016b", valid)
		}
		for l := range Lanes {
			k := l%7 + 1
			if want := hex32(t, v.Multiples[2*k]); out[l] != want {
				t.Errorf("lane %d: 2·%d·B = %x, want %x", l, k, out[l], want)
			}
		}
		// 7 · (2B) = 14B, and the identity encodes as zero bytes (1·0 = 0),
		// in both batches of the pair.
		for _, l := range []int{0, lanes + 3} {
			in[l] = hex32(t, v.Multiples[2])
			in[l+1] = hex32(t, v.Multiples[0])
		}
		MulEncoded(&out, scalarOf(7), &in)
		for _, l := range []int{0, lanes + 3} {
			if out[l] != hex32(t, v.Multiples[14]) || out[l+1] != [32]byte{} {
				t.Errorf("lanes %d, %d: 7·2B = %x; 7·O = %x", l, l+1, out[l], out[l+1])
			}
		}

		bad := append(v.Invalid.NonCanonical, v.Invalid.NotAnElement...)
		for i := 0; i < len(bad); i += Lanes / 2 {
			valid := 0
			for l := range Lanes {
				// Alternate bad encodings with a good one in every batch, so a
				// lane's verdict cannot leak into its neighbours.
				if l%2 == 0 && i+l/2 < len(bad) {
					in[l] = hex32(t, bad[i+l/2])
				} else {
					in[l] = hex32(t, v.Multiples[3])
					valid |= 1 << l
				}
			}
			if got := MulEncoded(&out, scalarOf(1), &in); int(got) != valid {
				t.Errorf("bad encodings from %d: valid = %016b, want %016b", i, got, valid)
			}
		}
	})
	forEachField(t, func(t *testing.T) {
		var in [Lanes][64]byte
		var out [Lanes][32]byte
		for l := range Lanes {
			in[l] = sha512.Sum512([]byte(v.OneWayMap[l%len(v.OneWayMap)].Label))
		}
		MulUniform(&out, scalarOf(1), &in)
		for l := range Lanes {
			if want := hex32(t, v.OneWayMap[l%len(v.OneWayMap)].Element); out[l] != want {
				t.Errorf("map(%q) = %x, want %x", v.OneWayMap[l%len(v.OneWayMap)].Label, out[l], want)
			}
		}
	})
}

// diffCount is how many inputs TestDifferential checks per path with the
// field this CPU uses: 100,000 normally, fewer under the race detector
// (which .ci/run also runs this test without).
func diffCount() int {
	if raceEnabled || testing.Short() {
		return 4000
	}
	return 100_000
}

// TestDifferential compares both paths with gtank/ristretto255 and the
// decoding path also with circl's group, on random inputs and a new random
// scalar for every call (sixteen lanes). One lane in each batch of eight is
// random bytes, almost never a valid encoding, so validity is compared too.
func TestDifferential(t *testing.T) {
	n := diffCount()
	t.Run("field=default", func(t *testing.T) { differential(t, n) })
	if haveAVX512 {
		defer func() { useAVX512 = true }()
		useAVX512 = false
		t.Run("field=generic", func(t *testing.T) { differential(t, 2000) })
	}
}

func differential(t *testing.T, n int) {
	rng := rand.NewChaCha8([32]byte{'r', '2', '5', '5', 'x', '8'})
	edge := []*gtank.Scalar{
		gtank.NewScalar(), // 0
		scalarFromBytes(1),
		gtank.NewScalar().Negate(scalarFromBytes(1)), // ℓ - 1
		gtank.NewScalar().Negate(scalarFromBytes(8)),
	}
	var (
		inE, outE [Lanes][32]byte
		inU       [Lanes][64]byte
		outU      [Lanes][32]byte
		wide      [64]byte
	)
	for batch := 0; batch*Lanes < n; batch++ {
		gs := gtank.NewScalar()
		if batch < len(edge) {
			gs = edge[batch]
		} else {
			rng.Read(wide[:])
			gs.FromUniformBytes(wide[:])
		}
		sb := [32]byte(gs.Encode(nil))
		s := NewScalar(&sb)
		cs := group.Ristretto255.NewScalar()
		if err := cs.UnmarshalBinary(sb[:]); err != nil {
			t.Fatal(err)
		}

		for l := range Lanes {
			rng.Read(inU[l][:])
			if l == batch%lanes {
				rng.Read(inE[l][:])
			} else {
				rng.Read(wide[:])
				copy(inE[l][:], gtank.NewElement().FromUniformBytes(wide[:]).Encode(nil))
			}
		}
		valid := MulEncoded(&outE, s, &inE)
		MulUniform(&outU, s, &inU)

		for l := range Lanes {
			ge := gtank.NewElement()
			ok := ge.Decode(inE[l][:]) == nil
			if ok != (valid>>l&1 == 1) {
				t.Fatalf("batch %d lane %d: valid = %v, gtank says %v (input %x)", batch, l, !ok, ok, inE[l])
			}
			if ok {
				want := gtank.NewElement().ScalarMult(gs, ge).Encode(nil)
				if string(outE[l][:]) != string(want) {
					t.Fatalf("batch %d lane %d: s·%x = %x, gtank %x (s = %x)", batch, l, inE[l], outE[l], want, sb)
				}
				ce := group.Ristretto255.NewElement()
				if err := ce.UnmarshalBinary(inE[l][:]); err != nil {
					t.Fatalf("circl rejects %x: %v", inE[l], err)
				}
				cw, _ := group.Ristretto255.NewElement().Mul(ce, cs).MarshalBinary()
				if string(outE[l][:]) != string(cw) {
					t.Fatalf("batch %d lane %d: circl disagrees", batch, l)
				}
			}
			want := gtank.NewElement().ScalarMult(gs, gtank.NewElement().FromUniformBytes(inU[l][:])).Encode(nil)
			if string(outU[l][:]) != string(want) {
				t.Fatalf("batch %d lane %d: s·map(%x) = %x, gtank %x", batch, l, inU[l], outU[l], want)
			}
		}
	}
}

func scalarFromBytes(x byte) *gtank.Scalar {
	var b [32]byte
	b[0] = x
	s := gtank.NewScalar()
	if err := s.Decode(b[:]); err != nil {
		panic(err)
	}
	return s
}
