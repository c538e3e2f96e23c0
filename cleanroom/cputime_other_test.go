//go:build !unix

package cleanroom

import "time"

// processCPU is not measured here.
func processCPU() (time.Duration, bool) { return 0, false }

// usage is what the process has used so far.
type usage struct {
	user, sys        time.Duration
	faults, switches int64
}

// processUsage is not measured here.
func processUsage() (usage, bool) { return usage{}, false }
