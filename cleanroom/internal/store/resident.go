package store

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
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

// releaseMin is the smallest value whose pages are released: below it,
// reading /proc/self/maps costs more than the pages are worth.
const releaseMin = 1 << 20

// releaseMapped drops the pages of the value log file mapping that holds b
// from the process's resident memory, if b lies in a shared mapping of a
// value log file; otherwise it does nothing. It is a hint, and its errors
// are not the caller's: b's contents are the same whether or not it worked.
func releaseMapped(b []byte) {
	if len(b) < releaseMin {
		return
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if m, ok := mappingOf(maps, addr, addr+uintptr(len(b))); ok && m.shared && strings.HasSuffix(m.path, ".vlog") {
		dropShared(m.start, m.end)
	}
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
