package audit

import (
	"errors"
	"os"
	"syscall"
)

// lseek's whence values for the data and holes of a sparse file (Linux
// <unistd.h>: SEEK_DATA 3, SEEK_HOLE 4).
const (
	seekData = 3
	seekHole = 4
)

// dataExtents returns the [start, end) ranges of f that hold data: Badger
// preallocates its value log (2 GiB by default) and write-ahead logs as
// sparse files, and reading or copying their holes would cost gigabytes for
// nothing. ok is false when the file system cannot tell, and the caller
// treats the whole file as data.
func dataExtents(f *os.File, size int64) (extents [][2]int64, ok bool) {
	for off := int64(0); off < size; {
		data, err := f.Seek(off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return nil, false
		}
		hole, err := f.Seek(data, seekHole)
		if err != nil {
			return nil, false
		}
		extents = append(extents, [2]int64{data, hole})
		off = hole
	}
	return extents, true
}
