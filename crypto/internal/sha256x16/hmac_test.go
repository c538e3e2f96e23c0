package sha256x16

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

func stdHMACHex(key []byte, msg *[HexSize]byte) [Size]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(hex.EncodeToString(msg[:])))
	return [Size]byte(m.Sum(nil))
}

// TestHMACHex holds HMACHex to crypto/hmac on both paths: random keys of
// every length to past two blocks (so both of RFC 2104's key cases), and
// sixteen different messages a call, with every byte value in every
// position of some lane (the hex table's edges, 0x09/0x0a and 0xf0/0xff).
func TestHMACHex(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	forEachPath(t, func(t *testing.T) {
		for n := 0; n <= 2*BlockSize+1; n++ {
			key := make([]byte, n)
			for i := range key {
				key[i] = byte(r.Uint32())
			}
			for call := range 16 {
				var msgs [Lanes][HexSize]byte
				for l := range msgs {
					for i := range msgs[l] {
						msgs[l][i] = byte(r.Uint32())
						if n == 0 {
							msgs[l][i] = byte(call*Lanes + l) // every byte value, everywhere
						}
					}
				}
				var out [Lanes][Size]byte
				HMACHex(&out, NewHMACKey(key), &msgs)
				for l := range Lanes {
					if want := stdHMACHex(key, &msgs[l]); out[l] != want {
						t.Fatalf("%d-byte key, lane %d: got %x, want %x", n, l, out[l], want)
					}
				}
			}
		}
	})
}

func FuzzHMACHex(f *testing.F) {
	f.Add([]byte("key"), []byte("messages"))
	f.Fuzz(func(t *testing.T, key, seed []byte) {
		var msgs [Lanes][HexSize]byte
		for l := range msgs {
			for i := range msgs[l] {
				if len(seed) > 0 {
					msgs[l][i] = seed[(l*HexSize+i)%len(seed)] ^ byte(l)
				}
			}
		}
		var out [Lanes][Size]byte
		HMACHex(&out, NewHMACKey(key), &msgs)
		for l := range Lanes {
			if want := stdHMACHex(key, &msgs[l]); out[l] != want {
				t.Fatalf("lane %d: got %x, want %x", l, out[l], want)
			}
		}
	})
}

func TestHexEncode(t *testing.T) {
	for v := range 256 {
		var m [HexSize]byte
		for i := range m {
			m[i] = byte(v + i)
		}
		var got [BlockSize]byte
		hexEncode(&got, &m)
		if want := hex.EncodeToString(m[:]); string(got[:]) != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
}
