package matcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"
)

const (
	partitionBits = 8
	partitions    = 1 << partitionBits
	// defaultChunk is the size of a full chunk: small enough that one
	// partial chunk per partition per set stays small (at most 256 x 36
	// KiB), large enough that a spilled chunk is one efficient write and
	// read. Chunks start at firstChunk and double, so small sets stay small.
	defaultChunk = 1024
	firstChunk   = 16
	readBatch    = 4096
	stagePairs   = 16
)

// element is what a set is stored as: fingerprints with their rows, for a
// join, or fingerprints alone, for a count.
type element interface{ printRow | print }

// chunk holds up to chunkPairs elements of one partition, in memory or,
// once spilled, at an offset of the set's spill file.
type chunk[E element] struct {
	mem []E
	off int64
	n   int
}

// setStore is one set, partitioned.
type setStore[E element] struct {
	mem   *budget
	dir   string
	chunk int // elements in a full chunk
	parts [partitions][]*chunk[E]
	rows  int64

	// Write-combining buffers: an element goes first to its partition's
	// small staging area here (all 256 fit in the L2 cache) and moves to
	// the partition's chunk sixteen at a time; appending each element
	// straight to one of 256 scattered chunks missed the cache on nearly
	// every one.
	stage  [partitions][stagePairs]E
	staged [partitions]uint8

	full     []*chunk[E] // full chunks still in memory, oldest first
	spill    *os.File
	spillOff int64
	free     [][]E  // chunk buffers released by spilling, for reuse
	out      []byte // a chunk on its way to the spill file
}

func newSetStore[E element](mem *budget, dir string, chunk int) *setStore[E] {
	return &setStore[E]{mem: mem, dir: dir, chunk: chunk}
}

// bytesOf is the memory of elements as bytes, which is how they are
// spilled: the spill file is read back by the process that wrote it, so
// the in-memory layout (no padding, no pointers) is the file format, and
// spilling and reading back copy nothing but the file's pages.
func bytesOf[E element](p []E) []byte {
	if len(p) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&p[0])), len(p)*int(unsafe.Sizeof(p[0])))
}

// A compile-time check that neither element has padding.
var (
	_ [unsafe.Sizeof(printRow{}) - 20]struct{}
	_ [20 - unsafe.Sizeof(printRow{})]struct{}
	_ [unsafe.Sizeof(print{}) - 16]struct{}
	_ [16 - unsafe.Sizeof(print{})]struct{}
)

// readAll reads r to the end, partitioning its pairs as elements: convert
// turns a batch of pairs into elements and the partition of each.
func (s *setStore[E]) readAll(ctx context.Context, r Reader, convert func(in []Pair, out []E, part []uint8)) error {
	buf := make([]Pair, readBatch)
	elems := make([]E, readBatch)
	part := make([]uint8, readBatch)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		if n < 0 || n > len(buf) {
			return fmt.Errorf("reader returned %d pairs for a buffer of %d", n, len(buf))
		}
		if s.rows+int64(n) > 1<<32-1 {
			return errors.New("more than 4294967295 rows")
		}
		s.rows += int64(n)
		convert(buf[:n], elems[:n], part[:n])
		for i := range elems[:n] {
			p := part[i]
			k := s.staged[p]
			s.stage[p][k] = elems[i]
			if k+1 < stagePairs {
				s.staged[p] = k + 1
				continue
			}
			s.staged[p] = 0
			if err := s.appendPairs(int(p), s.stage[p][:]); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			for p := range s.stage {
				if err := s.appendPairs(p, s.stage[p][:s.staged[p]]); err != nil {
					return err
				}
				s.staged[p] = 0
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// appendPairs adds elements to partition part's chunks.
func (s *setStore[E]) appendPairs(part int, pairs []E) error {
	for len(pairs) > 0 {
		cs := s.parts[part]
		var c *chunk[E]
		if len(cs) > 0 && cs[len(cs)-1].mem != nil && len(cs[len(cs)-1].mem) < s.chunk {
			c = cs[len(cs)-1]
		} else {
			c = &chunk[E]{mem: s.newChunk(len(cs) == 0)}
			s.parts[part] = append(cs, c)
		}
		if len(c.mem) == cap(c.mem) { // grow a young chunk, doubling up to full size
			grown := make([]E, len(c.mem), min(2*cap(c.mem), s.chunk))
			copy(grown, c.mem)
			s.mem.add(int64(cap(grown)-cap(c.mem)) * s.size())
			c.mem = grown
		}
		n := min(len(pairs), cap(c.mem)-len(c.mem))
		c.mem = append(c.mem, pairs[:n]...)
		c.n = len(c.mem)
		pairs = pairs[n:]
		if c.n == s.chunk {
			s.full = append(s.full, c)
			if s.mem.over.Load() {
				if err := s.spillFull(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// newChunk returns an empty chunk buffer: a partition's first one small, the
// next ones full-sized (the partition has proven busy), reusing buffers
// freed by spilling.
func (s *setStore[E]) newChunk(first bool) []E {
	if first {
		n := min(firstChunk, s.chunk)
		s.mem.add(int64(n) * s.size())
		return make([]E, 0, n)
	}
	if n := len(s.free); n > 0 {
		b := s.free[n-1][:0]
		s.free = s.free[:n-1]
		return b
	}
	s.mem.add(int64(s.chunk) * s.size())
	return make([]E, 0, s.chunk)
}

// size is the bytes of one element.
func (s *setStore[E]) size() int64 {
	var e E
	return int64(unsafe.Sizeof(e))
}

// spillFull writes every full in-memory chunk of this set to its spill
// file and keeps the buffers for reuse.
func (s *setStore[E]) spillFull() error {
	if s.spill == nil {
		f, err := os.CreateTemp(s.dir, "cleanroom-match-*")
		if err != nil {
			return fmt.Errorf("spill file: %w", err)
		}
		// Unlinked at once: the data lives only as long as the open file,
		// so a crash leaves no tokens on disk.
		os.Remove(f.Name())
		s.spill = f
		s.out = make([]byte, int64(s.chunk)*s.size())
	}
	for _, c := range s.full {
		// Copied into one buffer that stays in the cache before the write:
		// the kernel's copy from a cold chunk costs twice this one.
		b := s.out[:copy(s.out, bytesOf(c.mem))]
		if _, err := s.spill.WriteAt(b, s.spillOff); err != nil {
			return fmt.Errorf("spilling: %w", err)
		}
		c.off = s.spillOff
		s.spillOff += int64(len(b))
		s.free = append(s.free, c.mem)
		c.mem = nil
	}
	clear(s.full)
	s.full = s.full[:0]
	// Buffers kept for reuse stay counted; beyond a few, give them back.
	for len(s.free) > 4 {
		s.free = s.free[:len(s.free)-1]
		s.mem.add(-int64(s.chunk) * s.size())
	}
	return nil
}

func (s *setStore[E]) spilled() bool { return s.spill != nil }

func (s *setStore[E]) partitionSize(p int) int {
	n := 0
	for _, c := range s.parts[p] {
		n += c.n
	}
	return n
}

// each calls fn with the elements of partition p, chunk by chunk, in the
// order they were read, until fn returns false. Spilled chunks are read
// into buf (a full chunk's elements).
func (s *setStore[E]) each(p int, buf []E, fn func([]E) bool) error {
	for _, c := range s.parts[p] {
		if c.mem != nil {
			if !fn(c.mem) {
				return nil
			}
			continue
		}
		out := buf[:c.n]
		if _, err := s.spill.ReadAt(bytesOf(out), c.off); err != nil {
			return fmt.Errorf("reading spill: %w", err)
		}
		if !fn(out) {
			return nil
		}
	}
	return nil
}

func (s *setStore[E]) close() {
	if s.spill != nil {
		s.spill.Close()
	}
	for p := range s.parts {
		s.parts[p] = nil
	}
}
