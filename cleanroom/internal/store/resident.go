package store

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// Badger memory-maps its value log, shared, and both writes and reads
// segments through that mapping: every page of a part stored or read stays
// mapped into the room's process, and counted in its resident memory, until
// the kernel needs it back. At 10M rows a list is a gigabyte of the room's
// resident size for data it has finished with.
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
// ReleaseEvery for each value log file being read, and once more for the
// one being written. A nil *Resident releases after every segment of at
// least a mebibyte.
type Resident struct {
	every int64
	mu    sync.Mutex
	// read is the bytes read since the last release, by region of
	// address space (address >> regionShift).
	read    map[uintptr]int64
	written int64
}

const (
	// ReleaseEvery is the bytes read from one region of address space, or
	// written, between two releases.
	ReleaseEvery = 32 << 20
	regionShift  = 30
	// releaseMin is the smallest value a nil *Resident releases: below
	// it, reading /proc/self/maps costs more than the pages are worth.
	releaseMin = 1 << 20
)

// NewResident returns a Resident that releases a region's pages once every
// bytes have been touched there.
func NewResident(every int64) *Resident {
	return &Resident{every: every, read: make(map[uintptr]int64)}
}

// noteRead records that v, a value Badger handed out and still holds, has
// been read, and releases the pages of its mapping if its region is due.
func (r *Resident) noteRead(v []byte) {
	if r == nil {
		if len(v) >= releaseMin {
			releaseMapped(v)
		}
		return
	}
	if len(v) == 0 {
		return
	}
	region := uintptr(unsafe.Pointer(unsafe.SliceData(v))) >> regionShift
	r.mu.Lock()
	r.read[region] += int64(len(v))
	due := r.read[region] >= r.every
	if due {
		delete(r.read, region)
	}
	r.mu.Unlock()
	if !due {
		return
	}
	if m, ok := releaseMapped(v); ok {
		r.mu.Lock()
		for g := m.start >> regionShift; g <= (m.end-1)>>regionShift; g++ {
			delete(r.read, g)
		}
		r.mu.Unlock()
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
