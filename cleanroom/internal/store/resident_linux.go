package store

import "golang.org/x/sys/unix"

// dropShared unmaps the pages of [start, end), a whole shared file mapping,
// from the process, keeping their contents in the page cache (MADV_DONTNEED
// on a shared mapping; never called on another kind).
func dropShared(start, end uintptr) {
	unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_DONTNEED)
}
