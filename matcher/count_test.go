package matcher

import (
	"context"
	"crypto/aes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestPrinterPaths holds the fingerprints of macs16VAES (where the CPU
// has it) and of the portable path to AES-128's CBC-MAC through crypto/aes
// under random keys, for batches that do and do not fill sixteen lanes.
func TestPrinterPaths(t *testing.T) {
	if !haveVAES {
		t.Log("no AVX-512 VAES here: the portable path only")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	for trial := range 50 {
		var key [16]byte
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		f := newPrinterKey(&key)
		in := make([]Pair, 1+rng.IntN(100))
		for i := range in {
			for j := range in[i].Token {
				in[i].Token[j] = byte(rng.Uint32())
			}
			in[i].Row = rng.Uint32()
		}
		b, _ := aes.NewCipher(key[:])
		for _, vaes := range []bool{false, haveVAES} {
			useVAES = vaes
			out, part := make([]print, len(in)), make([]uint8, len(in))
			f.parts(in, out, part)
			for i := range in {
				var x [16]byte
				b.Encrypt(x[:], in[i].Token[:16])
				for j := range x {
					x[j] ^= in[i].Token[16+j]
				}
				b.Encrypt(x[:], x[:])
				want := print{hi: le64(x[:8]), lo: le64(x[8:])}
				if out[i] != want || part[i] != uint8(want.hi>>56) {
					t.Fatalf("trial %d, VAES %v, token %d of %d: %x (part %d), want %x", trial, vaes, i, len(in), out[i], part[i], want)
				}
			}
		}
		useVAES = haveVAES
	}
}

func le64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// TestCountPortable runs the counting path's reference checks with the
// portable fingerprints, on a machine that has VAES too.
func TestCountPortable(t *testing.T) {
	defer func(v bool) { useVAES = v }(useVAES)
	useVAES = false
	rng := rand.New(rand.NewPCG(23, 24))
	sets := genSets(rng, []int{3000, 2000}, 0.5, 0.2)
	checkReference(t, sets, Options{CardinalityOnly: true})
	checkReference(t, sets, Options{CardinalityOnly: true, MemoryBudget: 1, TempDir: t.TempDir(), chunk: 16})
}

// TestCountMatchesJoin holds the count (fingerprints) to the join (pairs)
// on the same sets: matches and every set's duplicates, for one set to
// the most a count takes, and one more, which the join counts.
func TestCountMatchesJoin(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, n := range []int{1, 2, 3, maxCountSets, maxCountSets + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			sizes := make([]int, n)
			for i := range sizes {
				sizes[i] = 500 + rng.IntN(3000)
			}
			sets := genSets(rng, sizes, 0.6, 0.15)
			readers := func() []Reader {
				rs := make([]Reader, n)
				for i := range rs {
					rs[i] = &SliceReader{Pairs: sets[i]}
				}
				return rs
			}
			join, err := intersect(context.Background(), readers(), Options{DuplicateRows: true}, func([]uint32) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			counted, err := intersect(context.Background(), readers(), Options{CardinalityOnly: true, MemoryBudget: 1, TempDir: t.TempDir(), chunk: 8, maxTable: 50}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if counted.Matches != join.Matches || !counted.Spilled {
				t.Fatalf("counted %d matches (spilled %v), joined %d", counted.Matches, counted.Spilled, join.Matches)
			}
			for k := range sets {
				if counted.Sets[k].Rows != join.Sets[k].Rows || counted.Sets[k].Duplicates != join.Sets[k].Duplicates {
					t.Fatalf("set %d: counted %+v, joined %+v", k, counted.Sets[k], join.Sets[k])
				}
			}
		})
	}
}

// TestCountUnsplittable: a partition with more distinct fingerprints than
// a table may hold, all sharing every bit a split could use (which only a
// broken key makes), is refused rather than counted beyond the bound.
func TestCountUnsplittable(t *testing.T) {
	s := newSetStore[print](&budget{limit: 1 << 30}, "", 4)
	prints := []print{{hi: 5, lo: 1}, {hi: 5, lo: 2}, {hi: 5, lo: 3}}
	if err := s.appendPairs(0, prints); err != nil {
		t.Fatal(err)
	}
	w := newCountWorker(1, 4, 2)
	if err := w.join(0, []*setStore[print]{s}, 0, 0); err != errPartitionUnsplittable {
		t.Fatalf("got %v, want %v", err, errPartitionUnsplittable)
	}
	w = newCountWorker(1, 4, 3)
	if err := w.join(0, []*setStore[print]{s}, 0, 0); err != nil || w.matches != 3 {
		t.Fatalf("%d distinct, %v; want 3", w.matches, err)
	}
}

// BenchmarkPrints is the fingerprints of a count: AES-128 CBC-MAC of a
// token, sixteen at a time in VAES where the CPU has it, and through
// crypto/aes.
func BenchmarkPrints(b *testing.B) {
	in := make([]Pair, readBatch)
	for i := range in {
		in[i].Token = tok(uint64(i))
	}
	out, part := make([]print, len(in)), make([]uint8, len(in))
	f := newPrinter()
	for _, vaes := range []bool{false, true} {
		if vaes && !haveVAES {
			continue
		}
		name := "crypto-aes"
		if vaes {
			name = "vaes"
		}
		b.Run(name, func(b *testing.B) {
			defer func(v bool) { useVAES = v }(useVAES)
			useVAES = vaes
			for b.Loop() {
				f.parts(in, out, part)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/token")
		})
	}
}

// TestExpandKey checks the key schedule against FIPS 197's example
// (appendix A.1): the first, second and last round keys.
func TestExpandKey(t *testing.T) {
	key := [16]byte{0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c}
	rk := expandKey(&key)
	for _, c := range []struct {
		round int
		want  string
	}{
		{0, "2b7e151628aed2a6abf7158809cf4f3c"},
		{1, "a0fafe1788542cb123a339392a6c7605"},
		{10, "d014f9a8c9ee2589e13f0cc8b6630ca6"},
	} {
		if got := fmt.Sprintf("%x", rk[c.round]); got != c.want {
			t.Errorf("round key %d: %s, want %s", c.round, got, c.want)
		}
	}
}
