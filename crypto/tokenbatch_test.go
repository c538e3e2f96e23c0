package crypto

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/opencleanroom/cleanroom/crypto/internal/sha256x16"
)

// stdToken is the definition, from the standard library alone.
func stdToken(ks *Secret, k MatchKey) Token {
	m := hmac.New(sha256.New, ks.b[:])
	m.Write([]byte(hex.EncodeToString(k[:])))
	return Token(m.Sum(nil))
}

func randomKeys(r *rand.Rand, n int) []MatchKey {
	keys := make([]MatchKey, n)
	for i := range keys {
		for j := range keys[i] {
			keys[i][j] = byte(r.Uint32())
		}
	}
	return keys
}

func randomSecret(t testing.TB, r *rand.Rand) *Secret {
	var b [SecretSize]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	ks, err := SecretFromBytes(b[:])
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// TestTokenBatch holds the sixteen-lane tokens (AVX-512 here, or the
// portable path under -tags purego) to crypto/hmac, for random secrets
// and sixteen different keys a call, the all-zero and all-one keys
// included.
func TestTokenBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	t.Logf("AVX-512: %v", sha256x16.Accelerated())
	for i := range 200 {
		ks := randomSecret(t, r)
		keys := randomKeys(r, sha256x16.Lanes)
		if i == 0 {
			keys[0], keys[15] = MatchKey{}, MatchKey{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		}
		var out [sha256x16.Lanes]Token
		var b tokenBatch
		b.tokens(sha256x16.NewHMACKey(ks.b[:]), out[:], keys)
		for l, k := range keys {
			if want := stdToken(ks, k); out[l] != want {
				t.Fatalf("call %d, lane %d: got %x, want %x", i, l, out[l], want)
			}
		}
	}
}

// TestHashTokensLengths covers whole batches of sixteen, tails, and
// chunk edges: every token equals the Tokenizer's and crypto/hmac's.
func TestHashTokensLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	ks := randomSecret(t, r)
	tk := NewTokenizer(ks)
	for _, n := range []int{0, 1, 15, 16, 17, 31, 33, batchChunk - 1, batchChunk, batchChunk + 1, 3*batchChunk + 21} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			keys := randomKeys(r, n)
			dst := make([]Token, n)
			if err := HashTokens(context.Background(), ks, dst, keys); err != nil {
				t.Fatal(err)
			}
			for i, k := range keys {
				if want := tk.Token(k); dst[i] != want || dst[i] != stdToken(ks, k) {
					t.Fatalf("token %d of %d: got %x, want %x", i, n, dst[i], want)
				}
			}
		})
	}
}

func TestHashTokensVectors(t *testing.T) {
	ks, vectors := readTokenVectors(t)
	// Repeat the vectors to fill several batches of sixteen.
	var keys []MatchKey
	var want []string
	for len(keys) < 3*sha256x16.Lanes {
		for _, x := range vectors {
			mk, err := ParseMatchKey(x.MatchKey)
			if err != nil {
				t.Fatal(err)
			}
			keys, want = append(keys, mk), append(want, x.Token)
		}
	}
	dst := make([]Token, len(keys))
	if err := HashTokens(context.Background(), ks, dst, keys); err != nil {
		t.Fatal(err)
	}
	for i := range dst {
		if got := hex.EncodeToString(dst[i][:]); got != want[i] {
			t.Errorf("token %d: got %s, want %s", i, got, want[i])
		}
	}
}

func TestHashTokensAllocations(t *testing.T) {
	const n = 8 * batchChunk
	ks, _ := NewSecret(nil)
	keys, dst := make([]MatchKey, n), make([]Token, n)
	allocs := testing.AllocsPerRun(3, func() {
		if err := HashTokens(context.Background(), ks, dst, keys); err != nil {
			t.Fatal(err)
		}
	})
	// A few per call (goroutines, closure, the HMAC states) and per chunk
	// that goes through a Tokenizer (all of them without AVX-512) are
	// fine; one per token is not.
	if allocs > 16+8*n/batchChunk {
		t.Fatalf("HashTokens made %.0f allocations for %d tokens", allocs, n)
	}
}

// FuzzHashTokens holds HashTokens to crypto/hmac for any secret and any
// run of keys (the fuzzer's bytes, 32 to a key).
func FuzzHashTokens(f *testing.F) {
	f.Add(make([]byte, SecretSize), make([]byte, 17*32))
	f.Fuzz(func(t *testing.T, secret, data []byte) {
		if len(secret) != SecretSize {
			return
		}
		ks, err := SecretFromBytes(secret)
		if err != nil {
			t.Fatal(err)
		}
		keys := make([]MatchKey, len(data)/32)
		for i := range keys {
			copy(keys[i][:], data[32*i:])
		}
		dst := make([]Token, len(keys))
		if err := HashTokens(context.Background(), ks, dst, keys); err != nil {
			t.Fatal(err)
		}
		for i, k := range keys {
			if want := stdToken(ks, k); dst[i] != want {
				t.Fatalf("token %d of %d: got %x, want %x", i, len(keys), dst[i], want)
			}
		}
	})
}
