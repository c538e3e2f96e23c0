//go:build unix

package cleanroom

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time the process has used, user and system.
func processCPU() (time.Duration, bool) {
	u, ok := processUsage()
	return u.user + u.sys, ok
}

// usage is what the process has used so far.
type usage struct {
	user, sys time.Duration
	faults    int64 // minor page faults: memory touched for the first time
	switches  int64 // involuntary context switches: the machine's other load
}

// processUsage returns the process's resource usage so far.
func processUsage() (usage, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return usage{}, false
	}
	return usage{
		user: time.Duration(ru.Utime.Nano()), sys: time.Duration(ru.Stime.Nano()),
		faults: int64(ru.Minflt), switches: int64(ru.Nivcsw),
	}, true
}
