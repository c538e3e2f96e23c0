package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// runqWait returns how long the process's threads have been runnable but
// waiting for a CPU (the second field of each thread's schedstat): the
// share of the machine other work takes from the log. Threads that have
// exited no longer count, so differences are lower bounds.
func runqWait() time.Duration {
	tasks, _ := filepath.Glob("/proc/self/task/*/schedstat")
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		f := bytes.Fields(b)
		if len(f) < 2 {
			continue
		}
		if ns, err := strconv.ParseInt(string(f[1]), 10, 64); err == nil {
			total += time.Duration(ns)
		}
	}
	return total
}
