package store

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/dgraph-io/badger/v4"
)

// Badger memory-maps its value log, shared, and both writes and reads the
// segments it keeps (the join table, the relay's layers; upload parts are in
// files of their own, Files) through that mapping: every page of a segment
// stored or read stays mapped into the room's process, and counted in its
// resident memory, until the kernel needs it back. At 50M per side a join is
// 200 MB of the room's resident size for data it has finished with.
//
// releaseMapped drops such pages from the process's mappings: for a shared
// file mapping the kernel keeps their contents (a dirty page stays dirty in
// the page cache and is written back as before), and the next access maps
// them again from the page cache, without reading the disk. It is done only
// during the call in which Badger hands out a value and holds its log file's
// lock, so that the file cannot be remapped meanwhile, and only once
// /proc/self/maps shows the value inside a shared mapping of a value log
// file: on private or anonymous memory (a value Badger copied, or stored in
// its tree) the same call would discard the contents.
//
// It drops the whole mapping, not just the value's pages: the page cache
// holds the log in large folios, and a write or read of the next value maps
// a whole folio again, the end of this value included.

// Resident decides when the pages of segments read or written leave the
// room's resident memory. Releasing costs a read of /proc/self/maps and a
// madvise, and the pages released fault in again when next touched, so it
// is done once a run of segments has been touched, not after each: once
// ReleaseEvery bytes have been read from one gigabyte of address space (a
// value log file's mapping spans one or two), or written, since the last
// release there. What stays resident between releases is bounded by
// ReleaseEvery for each region being read, and once more for the value log
// file being written. A pass over a large dataset reads from every region
// its value log files' mappings span (two or three a file), and would leave up to
// ReleaseEvery behind in each, so the regions are also settled, each
// released through the last segment read there, once the bytes read and
// not yet released reach SettleAt in all. A nil *Resident releases after
// every segment of at least a mebibyte.
type Resident struct {
	every, settleAt int64
	shift           uint // of an address, its region (regionShift; smaller in tests)
	mu              sync.Mutex
	// read is what has been read since the last release, by region of
	// address space (address >> regionShift); unreleased its bytes in all.
	read       map[uintptr]regionRead
	unreleased int64
	written    int64
}

// regionRead is the bytes read from one region since its last release, and
// the segments read there at the lowest and the highest address, by key:
// releasing a mapping must go through a value Badger hands out (see
// releaseMapped), and a region can hold the end of one mapping and the
// start of the next (Badger's mappings lie side by side), each reached
// through one of the two.
type regionRead struct {
	bytes        int64
	lo, hi       uintptr
	loKey, hiKey []byte
}

const (
	// ReleaseEvery is the bytes read from one region of address space, or
	// written, between two releases.
	ReleaseEvery = 32 << 20
	// SettleAt is the bytes read and not yet released, in all regions,
	// at which every region is released.
	SettleAt    = 2 * ReleaseEvery
	regionShift = 30
	// releaseMin is the smallest value a nil *Resident releases: below
	// it, reading /proc/self/maps costs more than the pages are worth.
	releaseMin = 1 << 20
)

// NewResident returns a Resident that releases a region's pages once every
// bytes have been touched there, and every region's once settleAt bytes
// read are unreleased in all.
func NewResident(every, settleAt int64) *Resident {
	return &Resident{every: every, settleAt: settleAt, shift: regionShift, read: make(map[uintptr]regionRead)}
}

// noteRead records that v, the value of key that Badger handed out and
// still holds, has been read, and releases the pages of its mapping if its
// region is due. It reports whether the regions are due to be settled.
func (r *Resident) noteRead(key, v []byte) (settle bool) {
	if r == nil {
		if len(v) >= releaseMin {
			releaseMapped(v)
		}
		return false
	}
	if len(v) == 0 {
		return false
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	region := addr >> r.shift
	r.mu.Lock()
	g := r.read[region]
	if g.loKey == nil || addr < g.lo {
		g.lo, g.loKey = addr, append(g.loKey[:0], key...)
	}
	if g.hiKey == nil || addr > g.hi {
		g.hi, g.hiKey = addr, append(g.hiKey[:0], key...)
	}
	g.bytes += int64(len(v))
	r.read[region] = g
	r.unreleased += int64(len(v))
	due := g.bytes >= r.every
	r.mu.Unlock()
	var m mapping
	var released bool
	if due {
		m, released = releaseMapped(v)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if released {
		r.forget(m)
	}
	if due {
		// Counted afresh, whether or not the release dropped every
		// mapping read there: a region with segments of the
		// neighbouring mapping keeps its keys, to be settled.
		if g, ok := r.read[region]; ok {
			r.unreleased -= g.bytes
			g.bytes = 0
			r.read[region] = g
		}
	}
	return r.unreleased >= r.settleAt
}

// forget drops the regions of mapping m, released, from the count: those
// where every segment read lay in m. A region where one lay outside it, in
// the neighbouring mapping, keeps its count and its keys. r.mu is held.
func (r *Resident) forget(m mapping) {
	for g := m.start >> r.shift; g <= (m.end-1)>>r.shift; g++ {
		if rr, ok := r.read[g]; ok && m.start <= rr.lo && rr.hi < m.end {
			r.unreleased -= rr.bytes
			delete(r.read, g)
		}
	}
}

// settle releases every region read since its last release, through the
// segments read there at its lowest and highest address. Their values are
// read again to release them (Badger hands out a value only through
// Item.Value, which checks it): up to two segments a region, not the run
// that region holds, and the pages other readers were about to touch
// there fault in again. A key this transaction cannot see is skipped and
// its region forgotten: it is settled with the next reads there. txn must
// be read-only: in an update the keys would join its reads, and their
// writers could make it conflict.
func (r *Resident) settle(txn *badger.Txn) {
	r.mu.Lock()
	keys := make([][]byte, 0, 2*len(r.read))
	for g, rr := range r.read {
		keys = append(keys, rr.loKey)
		if rr.hi != rr.lo {
			keys = append(keys, rr.hiKey)
		}
		delete(r.read, g)
	}
	r.unreleased = 0
	r.mu.Unlock()
	for _, key := range keys {
		it, err := txn.Get(key)
		if err != nil {
			continue
		}
		_ = it.Value(func(v []byte) error { releaseMapped(v); return nil })
	}
}

// Wrote records that a segment of n bytes has been written and reports
// whether the pages written since the last release are due to be released
// (ReleaseSegment on the segment just written).
func (r *Resident) Wrote(n int) bool {
	if r == nil {
		return n >= releaseMin
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.written += int64(n)
	if r.written < r.every {
		return false
	}
	r.written = 0
	return true
}

// releaseMapped drops the pages of the value log file mapping that holds b
// from the process's resident memory, if b lies in a shared mapping of a
// value log file; otherwise it does nothing. It is a hint, and its errors
// are not the caller's: b's contents are the same whether or not it worked.
// It returns the mapping it released, if any.
func releaseMapped(b []byte) (mapping, bool) {
	if len(b) == 0 {
		return mapping{}, false
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return mapping{}, false
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if m, ok := mappingOf(maps, addr, addr+uintptr(len(b))); ok && m.shared && strings.HasSuffix(m.path, ".vlog") {
		dropShared(m.start, m.end)
		return m, true
	}
	return mapping{}, false
}

// mapping is one line of /proc/self/maps.
type mapping struct {
	start, end uintptr
	shared     bool
	path       string
}

// mappingOf returns the mapping, in maps (the text of /proc/self/maps),
// that holds all of [start, end).
func mappingOf(maps []byte, start, end uintptr) (mapping, bool) {
	sc := bufio.NewScanner(bytes.NewReader(maps))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		if m, ok := parseMapping(sc.Text()); ok && m.start <= start && end <= m.end {
			return m, true
		}
	}
	return mapping{}, false
}

// parseMapping parses one line of /proc/self/maps:
//
//	start-end perms offset dev inode [path]
func parseMapping(line string) (mapping, bool) {
	f := strings.Fields(line)
	if len(f) < 6 {
		return mapping{}, false
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return mapping{}, false
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || end <= start || len(f[1]) != 4 {
		return mapping{}, false
	}
	// A path with spaces is the rest of the line.
	return mapping{start: uintptr(start), end: uintptr(end), shared: f[1][3] == 's', path: strings.Join(f[5:], " ")}, true
}
