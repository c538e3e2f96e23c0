package crypto

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	r255 "github.com/bwesterb/go-ristretto"
)

// batchChunk is how many elements a worker takes at a time: large enough that
// handing out chunks costs nothing next to ~50 µs of group arithmetic per
// element, small enough that cores finish together and cancellation is quick.
const batchChunk = 256

// EncryptBatch sets dst[i] to k's encryption of keys[i] under ks, on all
// cores. It allocates nothing per element.
func (k *BlindingKey) EncryptBatch(ctx context.Context, ks *Secret, dst []Element, keys []MatchKey) error {
	if len(dst) != len(keys) {
		return fmt.Errorf("crypto: EncryptBatch: %d outputs for %d inputs", len(dst), len(keys))
	}
	return parallel(ctx, len(keys), func(lo, hi int) (int, error) {
		var p r255.Point
		for i := lo; i < hi; i++ {
			hashToPoint(&p, ks, &keys[i])
			e, err := k.mul(&p, &k.k)
			if err != nil {
				return i, err
			}
			dst[i] = e
		}
		return 0, nil
	})
}

// ReencryptBatch sets dst[i] = k·src[i] on all cores; dst may be src. On an
// invalid element it returns an error naming its index; dst is then
// partially written.
func (k *BlindingKey) ReencryptBatch(ctx context.Context, dst, src []Element) error {
	return k.mulBatch(ctx, dst, src, &k.k)
}

// DecryptBatch sets dst[i] = k⁻¹·src[i] on all cores; dst may be src.
func (k *BlindingKey) DecryptBatch(ctx context.Context, dst, src []Element) error {
	return k.mulBatch(ctx, dst, src, &k.inv)
}

func (k *BlindingKey) mulBatch(ctx context.Context, dst, src []Element, s *r255.Scalar) error {
	if len(dst) != len(src) {
		return fmt.Errorf("crypto: %d outputs for %d inputs", len(dst), len(src))
	}
	return parallel(ctx, len(src), func(lo, hi int) (int, error) {
		var p r255.Point
		for i := lo; i < hi; i++ {
			if err := src[i].point(&p); err != nil {
				return i, err
			}
			e, err := k.mul(&p, s)
			if err != nil {
				return i, err
			}
			dst[i] = e
		}
		return 0, nil
	})
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
