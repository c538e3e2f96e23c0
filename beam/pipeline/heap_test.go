package pipeline

import (
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"testing"
	"time"
)

// peakHeap samples the live heap (as of the last GC) every second until
// stop is called, and returns the peak. When CLEANROOM_BENCH_HEAPPROFILE
// names a file, it writes a heap profile there each time the live heap
// grows 10% past its peak, so that the file holds the peak's profile.
func peakHeap(tb testing.TB) (stop func() uint64) {
	file := os.Getenv("CLEANROOM_BENCH_HEAPPROFILE")
	done, out := make(chan struct{}), make(chan uint64)
	go func() {
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var peak, written uint64
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				out <- peak
				return
			case <-tick.C:
			}
			metrics.Read(sample)
			live := sample[0].Value.Uint64()
			peak = max(peak, live)
			if file != "" && live > written+written/10 {
				written = live
				if f, err := os.Create(file); err == nil {
					if err := pprof.WriteHeapProfile(f); err != nil {
						tb.Log(err)
					}
					f.Close()
				}
			}
		}
	}()
	return func() uint64 {
		close(done)
		return <-out
	}
}
