package crypto

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	r255 "github.com/bwesterb/go-ristretto"

	"github.com/opencleanroom/cleanroom/crypto/internal/r255x8"
)

// batchChunk is how many elements a worker takes at a time: large enough that
// handing out chunks costs nothing next to ~15 µs of group arithmetic per
// element, small enough that cores finish together and cancellation is quick.
// A multiple of r255x8.Lanes, so only a batch's last chunk has idle lanes.
const batchChunk = 256

// EncryptBatch sets dst[i] to k's encryption of keys[i] under ks, on all
// cores, eight elements at a time (see crypto/internal/r255x8). It allocates
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
	return parallel(ctx, len(src), func(lo, hi int) (int, error) {
		var in, out [r255x8.Lanes][ElementSize]byte
		for i := lo; i < hi; i += r255x8.Lanes {
			n := min(r255x8.Lanes, hi-i)
			for l := range r255x8.Lanes {
				in[l] = src[i+min(l, n-1)].b
			}
			valid := r255x8.MulEncoded(&out, s, &in)
			for l := range n {
				// The identity decodes, but is no one's encryption.
				if valid>>l&1 == 0 || in[l] == [ElementSize]byte{} {
					return i + l, elementError(&in[l])
				}
			}
			for l := range n {
				dst[i+l].b = out[l]
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
func HashTokens(ctx context.Context, ks *Secret, dst []Token, keys []MatchKey) error {
	if len(dst) != len(keys) {
		return fmt.Errorf("crypto: HashTokens: %d outputs for %d inputs", len(dst), len(keys))
	}
	// HMAC costs about a microsecond, so a chunk of tokens is much cheaper
	// than a chunk of scalar multiplications; parallel still pays beyond a
	// few thousand keys.
	return parallel(ctx, len(keys), func(lo, hi int) (int, error) {
		t := NewTokenizer(ks)
		for i := lo; i < hi; i++ {
			dst[i] = t.Token(keys[i])
		}
		return 0, nil
	})
}

// parallel runs work over [0, n) in chunks on GOMAXPROCS goroutines. work
// returns the index and error of its first failure; parallel returns the
// failure with the lowest index, so the result does not depend on scheduling.
func parallel(ctx context.Context, n int, work func(lo, hi int) (int, error)) error {
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
		return fmt.Errorf("crypto: element %d: %w", bad, badErr)
	}
	return ctx.Err()
}
