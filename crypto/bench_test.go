package crypto

import (
	"context"
	"crypto/sha256"
	"runtime"
	"strconv"
	"testing"

	gtank "github.com/gtank/ristretto255"
)

// Single-item calls are single-threaded by design. Batch benchmarks run at
// 1 and 2 cores through sub-benchmarks that set GOMAXPROCS themselves: in our
// runs, go test's -cpu flag was sometimes not yet in force for the first
// measurement of a benchmark, which mislabels exactly the figure compared.

// atCores runs f as sub-benchmarks "cores=1" and "cores=N" (N = the machine's
// GOMAXPROCS), restoring GOMAXPROCS afterwards.
func atCores(b *testing.B, f func(b *testing.B)) {
	max := runtime.GOMAXPROCS(0)
	for _, n := range []int{1, max} {
		b.Run("cores="+strconv.Itoa(n), func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n))
			f(b)
		})
		if max == 1 {
			return
		}
	}
}

func reportRows(b *testing.B, rowsPerOp int) {
	b.ReportMetric(float64(rowsPerOp)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkNormalize(b *testing.B) {
	for _, c := range []struct {
		kind Kind
		in   string
	}{
		{KindEmail, " Alice.Smith+news@Example.com "},
		{KindPhone, "+1 (415) 555-0132"},
		{KindMAID, "6D92078A-8246-4BA4-AE5B-76104861E7DC"},
	} {
		p := mustProfile(b, ProfileGmailv1, 0)
		b.Run(string(c.kind), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.MatchKey(c.kind, c.in); err != nil {
					b.Fatal(err)
				}
			}
			reportRows(b, 1)
		})
	}
	// The general path, which the email case above bypasses for plain ASCII.
	b.Run("email-general", func(b *testing.B) {
		p := mustProfile(b, ProfileGmailv1, 0)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.matchKey(KindEmail, " Alice.Smith+news@Example.com "); err != nil {
				b.Fatal(err)
			}
		}
		reportRows(b, 1)
	})
}

func BenchmarkToken(b *testing.B) {
	ks, _ := NewSecret(nil)
	tk := NewTokenizer(ks)
	var mk MatchKey
	b.ReportAllocs()
	for b.Loop() {
		tk.Token(mk)
	}
	reportRows(b, 1)
}

const benchBatch = 4096

func benchKeys(n int) []MatchKey {
	keys := make([]MatchKey, n)
	for i := range keys {
		keys[i] = sha256.Sum256([]byte(strconv.Itoa(i)))
	}
	return keys
}

// BenchmarkHashTokens is HashTokens on a batch ("x16": sixteen at a time
// where the CPU has AVX-512) next to the same batch through one Tokenizer
// per chunk ("tokenizer": crypto/hmac on the CPU's SHA extensions), in one
// run so that the ratio holds on a shared machine.
func BenchmarkHashTokens(b *testing.B) {
	ks, _ := NewSecret(nil)
	keys := benchKeys(benchBatch)
	dst := make([]Token, len(keys))
	for _, c := range []struct {
		name string
		hash func(context.Context, *Secret, []Token, []MatchKey) error
	}{
		{"x16", HashTokens},
		{"tokenizer", hashTokensTokenizer},
	} {
		b.Run(c.name, func(b *testing.B) {
			atCores(b, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := c.hash(context.Background(), ks, dst, keys); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/token")
				b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "tokens/s")
			})
		})
	}
}

// hashTokensTokenizer is HashTokens without the sixteen lanes: a Tokenizer
// per chunk, on all cores.
func hashTokensTokenizer(ctx context.Context, ks *Secret, dst []Token, keys []MatchKey) error {
	return parallel(ctx, len(keys), func(lo, hi int) (int, error) {
		t := NewTokenizer(ks)
		for i := lo; i < hi; i++ {
			dst[i] = t.Token(keys[i])
		}
		return 0, nil
	})
}

func BenchmarkEncrypt(b *testing.B) {
	k, _ := GenerateBlindingKey(nil)
	ks, _ := NewSecret(nil)
	var mk MatchKey
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Encrypt(ks, mk); err != nil {
			b.Fatal(err)
		}
	}
	reportRows(b, 1)
}

func BenchmarkReencrypt(b *testing.B) {
	k, _ := GenerateBlindingKey(nil)
	ks, _ := NewSecret(nil)
	e, _ := k.Encrypt(ks, MatchKey{})
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if e, err = k.Reencrypt(e); err != nil {
			b.Fatal(err)
		}
	}
	reportRows(b, 1)
}

func BenchmarkEncryptBatch(b *testing.B) {
	atCores(b, func(b *testing.B) {
		k, _ := GenerateBlindingKey(nil)
		ks, _ := NewSecret(nil)
		keys := benchKeys(benchBatch)
		dst := make([]Element, len(keys))
		b.ReportAllocs()
		for b.Loop() {
			if err := k.EncryptBatch(context.Background(), ks, dst, keys); err != nil {
				b.Fatal(err)
			}
		}
		reportRows(b, benchBatch)
	})
}

func BenchmarkReencryptBatch(b *testing.B) {
	atCores(b, func(b *testing.B) {
		k, _ := GenerateBlindingKey(nil)
		ks, _ := NewSecret(nil)
		src := make([]Element, benchBatch)
		if err := k.EncryptBatch(context.Background(), ks, src, benchKeys(benchBatch)); err != nil {
			b.Fatal(err)
		}
		dst := make([]Element, len(src))
		b.ReportAllocs()
		for b.Loop() {
			if err := k.ReencryptBatch(context.Background(), dst, src); err != nil {
				b.Fatal(err)
			}
		}
		reportRows(b, benchBatch)
	})
}

// BenchmarkGtankReencrypt is the comparison point: decode, multiply and
// encode with gtank/ristretto255, the library behind the PAIR reference code.
// It is only a benchmark; the product does not use gtank.
func BenchmarkGtankReencrypt(b *testing.B) {
	k, _ := GenerateBlindingKey(nil)
	ks, _ := NewSecret(nil)
	e, _ := k.Encrypt(ks, MatchKey{})
	enc := e.Bytes()
	buf := enc[:]
	s := gtank.NewScalar()
	if err := s.Decode(k.Bytes()); err != nil {
		b.Fatal(err)
	}
	p := gtank.NewElement()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Decode(buf); err != nil {
			b.Fatal(err)
		}
		buf = p.ScalarMult(s, p).Encode(buf[:0])
	}
	reportRows(b, 1)
}

// BenchmarkCheckElements is the room's check of every element it receives,
// eight lanes at a time, against DecodeElement one at a time (per element).
func BenchmarkCheckElements(b *testing.B) {
	k, _ := GenerateBlindingKey(nil)
	ks, _ := NewSecret(nil)
	els := make([]Element, 4096)
	if err := k.EncryptBatch(context.Background(), ks, els, benchKeys(len(els))); err != nil {
		b.Fatal(err)
	}
	raw := make([]byte, 0, len(els)*ElementSize)
	for _, e := range els {
		eb := e.Bytes()
		raw = append(raw, eb[:]...)
	}
	b.Run("impl=batch", func(b *testing.B) {
		for b.Loop() {
			if err := CheckElements(raw); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(els)), "ns/element")
	})
	b.Run("impl=serial", func(b *testing.B) {
		for b.Loop() {
			for i := range els {
				if _, err := DecodeElement(raw[i*ElementSize : (i+1)*ElementSize]); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(els)), "ns/element")
	})
}
