package crypto

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	r255 "github.com/bwesterb/go-ristretto"

	"github.com/opencleanroom/cleanroom/crypto/internal/r255x8"
	"github.com/opencleanroom/cleanroom/crypto/internal/sha256x16"
)

// batchChunk is how many elements a worker takes at a time: large enough that
// handing out chunks costs nothing next to ~5 µs of group arithmetic per
// element, small enough that cores finish together and cancellation is quick.
// A multiple of r255x8.Lanes, so only a batch's last chunk has idle lanes.
const batchChunk = 256

// EncryptBatch sets dst[i] to k's encryption of keys[i] under ks, on all
// cores, sixteen elements at a time (see crypto/internal/r255x8). It allocates
// nothing per element.
func (k *BlindingKey) EncryptBatch(ctx context.Context, ks *Secret, dst []Element, keys []MatchKey) error {
	if len(dst) != len(keys) {
		return fmt.Errorf("crypto: EncryptBatch: %d outputs for %d inputs", len(dst), len(keys))
	}
	return parallel(ctx, len(keys), func(lo, hi int) (int, error) {
		var (
			in  [r255x8.Lanes][64]byte
			out [r255x8.Lanes][ElementSize]byte
		)
		for i := lo; i < hi; i += r255x8.Lanes {
			n := min(r255x8.Lanes, hi-i)
			for l := range r255x8.Lanes {
				// Lanes past the end repeat the last key; their results are dropped.
				uniformBytes(&in[l], ks, &keys[i+min(l, n-1)])
			}
			r255x8.MulUniform(&out, &k.k8, &in)
			for l := range n {
				if out[l] == [ElementSize]byte{} {
					return i + l, ErrIdentity // as in mul: P itself was the identity
				}
				dst[i+l].b = out[l]
			}
		}
		return 0, nil
	})
}

// ReencryptBatch sets dst[i] = k·src[i] on all cores; dst may be src. On an
// invalid element it returns an error naming its index; dst is then
// partially written.
func (k *BlindingKey) ReencryptBatch(ctx context.Context, dst, src []Element) error {
	return k.mulBatch(ctx, dst, src, &k.k8)
}

// DecryptBatch sets dst[i] = k⁻¹·src[i] on all cores; dst may be src.
func (k *BlindingKey) DecryptBatch(ctx context.Context, dst, src []Element) error {
	return k.mulBatch(ctx, dst, src, &k.inv8)
}

func (k *BlindingKey) mulBatch(ctx context.Context, dst, src []Element, s *r255x8.Scalar) error {
	if len(dst) != len(src) {
		return fmt.Errorf("crypto: %d outputs for %d inputs", len(dst), len(src))
	}
	return mulEncodings(ctx, len(src), s,
		func(i int) *[ElementSize]byte { return &src[i].b },
		func(i int) *[ElementSize]byte { return &dst[i].b })
}

// ReencryptBytes is ReencryptBatch on runs of 32-byte encodings, as they
// arrive from the room: each element is validated by the decoding the
// multiplication does anyway, so the caller need not decode them first.
// dst may be src.
func (k *BlindingKey) ReencryptBytes(ctx context.Context, dst, src []byte) error {
	if len(src)%ElementSize != 0 {
		return ErrElementLength
	}
	if len(dst) != len(src) {
		return fmt.Errorf("crypto: %d output bytes for %d input bytes", len(dst), len(src))
	}
	return mulEncodings(ctx, len(src)/ElementSize, &k.k8,
		func(i int) *[ElementSize]byte { return (*[ElementSize]byte)(src[i*ElementSize:]) },
		func(i int) *[ElementSize]byte { return (*[ElementSize]byte)(dst[i*ElementSize:]) })
}

// DecryptBytes is DecryptBatch on runs of 32-byte encodings, validating
// each element as ReencryptBytes does. dst may be src.
func (k *BlindingKey) DecryptBytes(ctx context.Context, dst, src []byte) error {
	if len(src)%ElementSize != 0 {
		return ErrElementLength
	}
	if len(dst) != len(src) {
		return fmt.Errorf("crypto: %d output bytes for %d input bytes", len(dst), len(src))
	}
	return mulEncodings(ctx, len(src)/ElementSize, &k.inv8,
		func(i int) *[ElementSize]byte { return (*[ElementSize]byte)(src[i*ElementSize:]) },
		func(i int) *[ElementSize]byte { return (*[ElementSize]byte)(dst[i*ElementSize:]) })
}

// mulEncodings sets *out(i) to s times the element *in(i) encodes, for i in
// [0, n), sixteen at a time on all cores. Every input is validated; the first
// invalid one is reported by index.
func mulEncodings(ctx context.Context, n int, s *r255x8.Scalar, in, out func(int) *[ElementSize]byte) error {
	return parallel(ctx, n, func(lo, hi int) (int, error) {
		var src, dst [r255x8.Lanes][ElementSize]byte
		for i := lo; i < hi; i += r255x8.Lanes {
			m := min(r255x8.Lanes, hi-i)
			for l := range r255x8.Lanes {
				src[l] = *in(i + min(l, m-1))
			}
			if l, err := firstInvalid(r255x8.MulEncoded(&dst, s, &src), &src, m); err != nil {
				return i + l, err
			}
			for l := range m {
				*out(i + l) = dst[l]
			}
		}
		return 0, nil
	})
}

// elementError says why b, already found invalid, is: the serial decoder
// tells the kinds apart.
func elementError(b *[ElementSize]byte) error {
	e := Element{b: *b}
	var p r255.Point
	if err := e.point(&p); err != nil {
		return err
	}
	return ErrNotAnElement
}

// HashTokens sets dst[i] to the hashed-mode token of keys[i], on all cores.
// Where the CPU has AVX-512 it computes sixteen tokens at a time (see
// tokenbatch.go), the last few of a batch through a Tokenizer; elsewhere
// the Tokenizer, on the CPU's SHA extensions, is the faster and does all.
// It allocates nothing per token.
func HashTokens(ctx context.Context, ks *Secret, dst []Token, keys []MatchKey) error {
	if len(dst) != len(keys) {
		return fmt.Errorf("crypto: HashTokens: %d outputs for %d inputs", len(dst), len(keys))
	}
	lanes := 1
	var hk *sha256x16.HMACKey
	if sha256x16.Accelerated() {
		lanes, hk = sha256x16.Lanes, sha256x16.NewHMACKey(ks.b[:])
	}
	// A token costs 50 ns of CPU sixteen at a time, 250 through a
	// Tokenizer, so a chunk of tokens is much cheaper than a chunk of
	// scalar multiplications; parallel still pays beyond a few thousand
	// keys.
	return parallel(ctx, len(keys), func(lo, hi int) (int, error) {
		i := lo
		if lanes > 1 {
			var b tokenBatch
			for ; i+lanes <= hi; i += lanes {
				b.tokens(hk, dst[i:i+lanes], keys[i:i+lanes])
			}
		}
		if i < hi {
			t := NewTokenizer(ks)
			for ; i < hi; i++ {
				dst[i] = t.Token(keys[i])
			}
		}
		return 0, nil
	})
}

// parallel runs work over [0, n) in chunks on GOMAXPROCS goroutines. work
// returns the index and error of its first failure; parallel returns the
// failure with the lowest index, so the result does not depend on scheduling.
func parallel(ctx context.Context, n int, work func(lo, hi int) (int, error)) error {
	if i, err := firstFailure(ctx, n, work); err != nil {
		if i < 0 {
			return err
		}
		return fmt.Errorf("crypto: element %d: %w", i, err)
	}
	return nil
}

// firstFailure is parallel without the wrapping: the lowest failing index
// and its error, or -1 and ctx's error.
func firstFailure(ctx context.Context, n int, work func(lo, hi int) (int, error)) (int, error) {
	workers := min(runtime.GOMAXPROCS(0), (n+batchChunk-1)/batchChunk)
	var (
		next    atomic.Int64
		mu      sync.Mutex
		bad     = -1
		badErr  error
		stopped atomic.Bool
	)
	run := func() {
		for !stopped.Load() {
			lo := int(next.Add(batchChunk)) - batchChunk
			if lo >= n {
				return
			}
			if ctx.Err() != nil {
				stopped.Store(true)
				return
			}
			if i, err := work(lo, min(lo+batchChunk, n)); err != nil {
				mu.Lock()
				if bad < 0 || i < bad {
					bad, badErr = i, err
				}
				mu.Unlock()
				stopped.Store(true)
				return
			}
		}
	}
	if workers <= 1 {
		run()
	} else {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(run)
		}
		wg.Wait()
	}
	if badErr != nil {
		return bad, badErr
	}
	return -1, ctx.Err()
}
