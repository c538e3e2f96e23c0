package matcher

import (
	"context"
	"encoding/binary"
	"io"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// usage is the process's CPU time and page faults so far: on a shared
// machine, wall time per op varies with the load, CPU time less, and the
// page faults (each costs microseconds on a virtual machine) not at all.
type usage struct {
	cpu    time.Duration
	faults int64
}

func cpuTime() usage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return usage{}
	}
	return usage{time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Minflt + ru.Majflt}
}

// reportCPU reports the CPU seconds and page faults an op took, since start.
func reportCPU(b *testing.B, start usage) {
	now := cpuTime()
	b.ReportMetric((now.cpu-start.cpu).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(now.faults-start.faults)/float64(b.N), "faults/op")
}

// genReader streams pairs whose tokens are a fixed mix of the numbers
// lo..hi-1, so two generators over overlapping ranges share tokens, with
// nothing held in memory: the heap measured is the matcher's own.
//
// It costs one splitmix64 a token (a bijection, so distinct numbers give
// distinct tokens), with the other three words derived by multiplication:
// generating the input should cost little next to matching it
// (BenchmarkReaderOnly measures it). The matcher hashes whole tokens with
// a keyed pseudorandom function, so how the words relate does not matter to it.
type genReader struct{ next, hi, base uint64 }

func (g *genReader) Read(dst []Pair) (int, error) {
	n := min(uint64(len(dst)), g.hi-g.next)
	for i := range dst[:n] {
		z := g.next + uint64(i) + 0x9E3779B97F4A7C15
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		z ^= z >> 31
		p := &dst[i]
		binary.LittleEndian.PutUint64(p.Token[0:], z)
		binary.LittleEndian.PutUint64(p.Token[8:], z*0xD6E8FEB86659FD93)
		binary.LittleEndian.PutUint64(p.Token[16:], z*0xA0761D6478BD642F)
		binary.LittleEndian.PutUint64(p.Token[24:], z*0xE7037ED1A0B428DB)
		p.Row = uint32(g.next + uint64(i) - g.base)
	}
	g.next += n
	if g.next == g.hi {
		return int(n), io.EOF
	}
	return int(n), nil
}

// peakHeap samples the live heap every few milliseconds until stop is
// closed and returns the maximum seen above the starting heap.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := read()
	go func() {
		var peak uint64
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if v := read(); v > base && v-base > peak {
				peak = v - base
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

func benchIntersect(b *testing.B, sizes []uint64, overlap float64, opts Options) {
	total := uint64(0)
	for _, s := range sizes {
		total += s
	}
	var peak uint64
	var matches atomic.Int64
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		readers := make([]Reader, len(sizes))
		for k, s := range sizes {
			// Set k covers [k*shift, k*shift+s): all sets share `overlap`
			// of their tokens.
			shift := uint64(float64(s) * (1 - overlap) / float64(len(sizes)-1))
			lo := uint64(k) * shift
			readers[k] = &genReader{next: lo, hi: lo + s, base: lo}
		}
		stop := make(chan struct{})
		peakCh := peakHeap(stop)
		res, err := Intersect(context.Background(), readers, opts, func([]uint32) error { return nil })
		close(stop)
		if err != nil {
			b.Fatal(err)
		}
		peak = max(peak, <-peakCh)
		matches.Store(res.Matches)
		if opts.MemoryBudget > 0 && opts.MemoryBudget < int64(total)*int64(unsafe.Sizeof(printRow{})) && !res.Spilled {
			b.Fatal("expected to spill")
		}
	}
	reportCPU(b, cpu)
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(float64(peak)/float64(total), "peak-heap-B/token")
	b.ReportMetric(float64(matches.Load()), "matches")
}

// BenchmarkIntersect2x10M: two sets of 10M tokens, 50% overlap.
func BenchmarkIntersect2x10M(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchIntersect(b, []uint64{10_000_000, 10_000_000}, 0.5, Options{}) })
	b.Run("spill", func(b *testing.B) {
		benchIntersect(b, []uint64{10_000_000, 10_000_000}, 0.5, Options{MemoryBudget: 64 << 20, TempDir: b.TempDir()})
	})
	// The demo room's share for a match (MatchMemory 256 MiB).
	b.Run("spill192", func(b *testing.B) {
		benchIntersect(b, []uint64{10_000_000, 10_000_000}, 0.5, Options{MemoryBudget: 192 << 20, TempDir: b.TempDir()})
	})
}

// BenchmarkIntersect3x1M: three sets of 1M tokens.
func BenchmarkIntersect3x1M(b *testing.B) {
	benchIntersect(b, []uint64{1_000_000, 1_000_000, 1_000_000}, 0.5, Options{})
}

// BenchmarkReaderOnly is the cost of generating the input, to subtract.
func BenchmarkReaderOnly(b *testing.B) {
	buf := make([]Pair, readBatch)
	for b.Loop() {
		g := &genReader{hi: 10_000_000}
		for {
			if _, err := g.Read(buf); err == io.EOF {
				break
			}
		}
	}
	b.ReportMetric(10e6*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkDistinct1M counts the distinct tokens of one set of 1M, as an
// upload's commit does, against intersecting the set with itself in the
// same run.
func BenchmarkDistinct1M(b *testing.B) {
	const n = 1_000_000
	b.Run("distinct", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			s, err := Distinct(context.Background(), &genReader{hi: n}, Options{})
			if err != nil || s.Rows-s.Duplicates != n {
				b.Fatalf("%d distinct of %d, %v", s.Rows-s.Duplicates, n, err)
			}
		}
		reportCPU(b, cpu)
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
	b.Run("self-intersection", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			res, err := Intersect(context.Background(), []Reader{&genReader{hi: n}, &genReader{hi: n}},
				Options{CardinalityOnly: true}, nil)
			if err != nil || res.Matches != n {
				b.Fatalf("%d matches of %d, %v", res.Matches, n, err)
			}
		}
		reportCPU(b, cpu)
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
}

// BenchmarkDistinct10M counts the distinct tokens of one set of 10M, as
// the commit of a 10M upload does: in memory, and within the 64 MiB share
// the demo's room gives an upload's comparison.
func BenchmarkDistinct10M(b *testing.B) {
	const n = 10_000_000
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"memory", Options{}},
		{"spill", Options{MemoryBudget: 64 << 20, TempDir: b.TempDir()}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var peak uint64
			cpu := cpuTime()
			for b.Loop() {
				stop := make(chan struct{})
				peakCh := peakHeap(stop)
				s, err := Distinct(context.Background(), &genReader{hi: n}, c.opts)
				close(stop)
				if err != nil || s.Rows-s.Duplicates != n {
					b.Fatalf("%d distinct of %d, %v", s.Rows-s.Duplicates, n, err)
				}
				peak = max(peak, <-peakCh)
			}
			reportCPU(b, cpu)
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(float64(peak)/n, "peak-heap-B/token")
		})
	}
}

// BenchmarkJoin2x10M is the join alone (every partition's table, counting
// matches), over two sets of 10M tokens partitioned in memory once.
func BenchmarkJoin2x10M(b *testing.B) {
	f := newPrinter()
	mem := &budget{limit: 1 << 40}
	stores := make([]*setStore[printRow], 2)
	for k := range stores {
		stores[k] = newSetStore[printRow](mem, "", defaultChunk)
		lo := uint64(k) * 5_000_000
		if err := stores[k].readAll(context.Background(), &genReader{next: lo, hi: lo + 10_000_000, base: lo}, f.rowParts); err != nil {
			b.Fatal(err)
		}
	}
	w := newWorker(2, defaultChunk, 1<<30)
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		matches := 0
		for p := range partitions {
			if err := w.join(p, stores, func() error { matches += w.matches(); return nil }); err != nil {
				b.Fatal(err)
			}
		}
		if matches != 5_000_000 {
			b.Fatalf("%d matches", matches)
		}
	}
	reportCPU(b, cpu)
}
