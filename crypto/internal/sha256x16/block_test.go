package sha256x16

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
)

// forEachPath runs f on the portable path and, where the CPU has it, on
// AVX-512.
func forEachPath(t *testing.T, f func(t *testing.T)) {
	defer func(u bool) { useAVX512 = u }(useAVX512)
	useAVX512 = false
	t.Run("generic", f)
	if haveAVX512 {
		useAVX512 = true
		t.Run("avx512", f)
	} else {
		t.Log("no AVX-512 path in this build or on this CPU: the assembly is not tested here")
	}
}

// sum16 hashes sixteen messages of one length, continuing from the
// chaining value h0 after prefix bytes (a multiple of the block size)
// were compressed into it. Odd blocks go through BlockWords, even ones
// through Block, so that both entry points are held to the standard.
func sum16(h0 *[8]uint32, prefix int, msgs *[Lanes][]byte) [Lanes][Size]byte {
	n := len(msgs[0])
	total := (n + 9 + BlockSize - 1) / BlockSize * BlockSize
	var padded [Lanes][]byte
	for l, m := range msgs {
		if len(m) != n {
			panic("sum16: lengths differ")
		}
		p := make([]byte, total)
		copy(p, m)
		p[n] = 0x80
		binary.BigEndian.PutUint64(p[total-8:], uint64(prefix+n)*8)
		padded[l] = p
	}
	var s State
	s.Broadcast(h0)
	for b := 0; b < total/BlockSize; b++ {
		if b%2 == 0 {
			var blk [Lanes][BlockSize]byte
			for l := range Lanes {
				copy(blk[l][:], padded[l][b*BlockSize:])
			}
			s.Block(&blk)
		} else {
			var w Words
			for l := range Lanes {
				for t := range 16 {
					w[t][l] = binary.BigEndian.Uint32(padded[l][b*BlockSize+4*t:])
				}
			}
			s.BlockWords(&w)
		}
	}
	var out [Lanes][Size]byte
	for l := range Lanes {
		s.Digest(l, &out[l])
	}
	return out
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNIST(t *testing.T) {
	var f struct {
		Vectors []struct{ Msg, Digest string }
	}
	readJSON(t, "nist.json", &f)
	forEachPath(t, func(t *testing.T) {
		for _, v := range f.Vectors {
			var msgs [Lanes][]byte
			for l := range msgs {
				msgs[l] = unhex(t, v.Msg)
			}
			for l, d := range sum16(&IV, 0, &msgs) {
				if got := hex.EncodeToString(d[:]); got != v.Digest {
					t.Errorf("%d-byte message, lane %d: got %s, want %s", len(msgs[0]), l, got, v.Digest)
				}
			}
		}
	})
}

// hmac16 is HMAC-SHA256 (RFC 2104) of sixteen messages of one length
// under one key, built on the sixteen-lane compression.
func hmac16(key []byte, msgs *[Lanes][]byte) [Lanes][Size]byte {
	if len(key) > BlockSize {
		k := sha256.Sum256(key)
		key = k[:]
	}
	var ipad, opad [BlockSize]byte
	for i := range ipad {
		var b byte
		if i < len(key) {
			b = key[i]
		}
		ipad[i], opad[i] = b^0x36, b^0x5c
	}
	hi, ho := IV, IV
	Compress(&hi, &ipad)
	Compress(&ho, &opad)
	inner := sum16(&hi, BlockSize, msgs)
	var outer [Lanes][]byte
	for l := range outer {
		outer[l] = inner[l][:]
	}
	return sum16(&ho, BlockSize, &outer)
}

func TestRFC4231(t *testing.T) {
	var f struct {
		Vectors []struct{ Section, Key, Data, MAC string }
	}
	readJSON(t, "rfc4231.json", &f)
	forEachPath(t, func(t *testing.T) {
		for _, v := range f.Vectors {
			var msgs [Lanes][]byte
			for l := range msgs {
				msgs[l] = unhex(t, v.Data)
			}
			for l, d := range hmac16(unhex(t, v.Key), &msgs) {
				if got := hex.EncodeToString(d[:]); got != v.MAC {
					t.Errorf("section %s, lane %d: got %s, want %s", v.Section, l, got, v.MAC)
				}
			}
		}
	})
}

// TestDifferential holds both paths to crypto/sha256 and crypto/hmac on
// random messages, every lane different, at every length up to four
// blocks (the edges of the padding included: 55, 56, 63, 64, 119, 120).
func TestDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	forEachPath(t, func(t *testing.T) {
		for n := 0; n <= 4*BlockSize; n++ {
			var msgs [Lanes][]byte
			for l := range msgs {
				msgs[l] = make([]byte, n)
				for i := range msgs[l] {
					msgs[l][i] = byte(r.Uint32())
				}
			}
			key := make([]byte, r.IntN(2*BlockSize))
			for i := range key {
				key[i] = byte(r.Uint32())
			}
			sums, macs := sum16(&IV, 0, &msgs), hmac16(key, &msgs)
			for l := range Lanes {
				if want := sha256.Sum256(msgs[l]); sums[l] != want {
					t.Fatalf("SHA-256, %d bytes, lane %d: got %x, want %x", n, l, sums[l], want)
				}
				m := hmac.New(sha256.New, key)
				m.Write(msgs[l])
				if want := m.Sum(nil); !bytes.Equal(macs[l][:], want) {
					t.Fatalf("HMAC, %d-byte key, %d bytes, lane %d: got %x, want %x", len(key), n, l, macs[l], want)
				}
			}
		}
	})
}

// TestLanesIndependent changes one byte of one lane's block and checks
// that only that lane's state changes: a transpose that mixed lanes up
// could still pass tests whose lanes all hold the same message.
func TestLanesIndependent(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		var blk [Lanes][BlockSize]byte
		for l := range blk {
			for i := range blk[l] {
				blk[l][i] = byte(l*BlockSize + i)
			}
		}
		var base State
		base.Broadcast(&IV)
		base.Block(&blk)
		for l := range Lanes {
			for i := range BlockSize {
				blk[l][i] ^= 1
				var s State
				s.Broadcast(&IV)
				s.Block(&blk)
				blk[l][i] ^= 1
				for j := range Lanes {
					var a, b [Size]byte
					s.Digest(j, &a)
					base.Digest(j, &b)
					if (a != b) != (j == l) {
						t.Fatalf("byte %d of lane %d flipped: lane %d changed = %v", i, l, j, a != b)
					}
				}
			}
		}
	})
}

// TestAVX512Taken fails if this machine's CPU lists AVX-512 F and BW but
// the package runs the portable path: a build or detection fault would
// otherwise only show as slowness.
func TestAVX512Taken(t *testing.T) {
	if runtime.GOARCH != "amd64" || !haveAsm {
		t.Skip("no assembly in this build")
	}
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skip("no /proc/cpuinfo")
	}
	flags := map[string]bool{}
	for _, line := range strings.Split(string(info), "\n") {
		if strings.HasPrefix(line, "flags") {
			for _, f := range strings.Fields(line) {
				flags[f] = true
			}
			break
		}
	}
	if flags["avx512f"] && flags["avx512bw"] && !Accelerated() {
		t.Fatal("the CPU has AVX-512 F and BW, but the portable path is in use")
	}
	t.Logf("avx512f=%v avx512bw=%v accelerated=%v", flags["avx512f"], flags["avx512bw"], Accelerated())
}

func FuzzBlock(f *testing.F) {
	f.Add([]byte("abc"), uint8(3))
	f.Fuzz(func(t *testing.T, seed []byte, n uint8) {
		// Sixteen different messages of length n from the seed.
		var msgs [Lanes][]byte
		for l := range msgs {
			msgs[l] = make([]byte, n)
			for i := range msgs[l] {
				if len(seed) > 0 {
					msgs[l][i] = seed[(l*int(n)+i)%len(seed)] + byte(l)
				}
			}
		}
		sums := sum16(&IV, 0, &msgs)
		for l := range Lanes {
			if want := sha256.Sum256(msgs[l]); sums[l] != want {
				t.Fatalf("lane %d, %d bytes: got %x, want %x", l, n, sums[l], want)
			}
		}
	})
}
