package cleanroom

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// Disk space is a state of the room, as in databases and search engines:
// Badger writes its value log and memtables through memory-mapped files, and
// a write to a mapped page the disk has no block for kills the process
// (SIGBUS) instead of failing. So the room measures the free space of its
// data directory's disk and stops before it runs out:
//
//   - below Low, it refuses every request that changes state with 503
//     insufficient-storage (audited, the entry is small), and a bulk write
//     (an upload part, a relayed part) also reserves its size first, so
//     that concurrent ones cannot overrun the mark together;
//   - below Critical, it refuses every authenticated request, without
//     recording it (it cannot write): health, metrics and the room's
//     public identity keep answering;
//   - it resumes once free space is back above High.
//
// Reads keep working below Low, and so does the audit export.

// DiskLimits are the free-space watermarks of the data directory's disk,
// in bytes. Zero fields take the defaults.
type DiskLimits struct {
	Low      int64 // default 512 MiB
	High     int64 // default 2 × Low
	Critical int64 // default Low / 4
	// Interval is how long a measurement is trusted (default 1 s); a bulk
	// write measures again whenever it is older.
	Interval time.Duration
	// statfs measures free space (a seam for tests; syscall.Statfs).
	statfs func(dir string) (int64, error)
}

func (l DiskLimits) withDefaults() DiskLimits {
	if l.Low <= 0 {
		l.Low = 512 << 20
	}
	if l.High <= l.Low {
		l.High = 2 * l.Low
	}
	if l.Critical <= 0 || l.Critical > l.Low {
		l.Critical = l.Low / 4
	}
	if l.Interval <= 0 {
		l.Interval = time.Second
	}
	if l.statfs == nil {
		l.statfs = freeSpace
	}
	return l
}

func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// diskState is how close the disk is to full.
type diskState int32

const (
	diskOK       diskState = iota
	diskLow                // writes refused
	diskCritical           // every authenticated request refused
)

// diskWatch measures free space and keeps the state, with hysteresis.
type diskWatch struct {
	dir    string
	limits DiskLimits

	mu       sync.Mutex // serializes measurements and reservations
	measured time.Time
	free     atomic.Int64
	state    atomic.Int32
	reserved int64 // bytes of bulk writes under way
}

func newDiskWatch(dir string, l DiskLimits) *diskWatch {
	d := &diskWatch{dir: dir, limits: l.withDefaults()}
	d.mu.Lock()
	d.measureLocked(time.Now())
	d.mu.Unlock()
	return d
}

// measureLocked measures free space now and moves the state.
func (d *diskWatch) measureLocked(now time.Time) {
	free, err := d.limits.statfs(d.dir)
	if err != nil {
		return // keep the last measurement: a statfs failure is no reason to stop
	}
	d.measured = now
	d.free.Store(free)
	avail := free - d.reserved
	st := diskState(d.state.Load())
	switch {
	case avail < d.limits.Critical:
		st = diskCritical
	case avail < d.limits.Low:
		st = diskLow
	case avail >= d.limits.High:
		st = diskOK
	case st == diskCritical: // between Low and High: coming back, writes wait for High
		st = diskLow
	}
	d.state.Store(int32(st))
}

// current returns the state, measuring again if the last measurement is
// older than the interval.
func (d *diskWatch) current() diskState {
	d.mu.Lock()
	defer d.mu.Unlock()
	if now := time.Now(); now.Sub(d.measured) >= d.limits.Interval {
		d.measureLocked(now)
	}
	return diskState(d.state.Load())
}

// reserve makes room for a bulk write of need bytes: refused if it would
// take free space below Low. release gives the reservation back once the
// write is done (committed or not).
func (d *diskWatch) reserve(need int64) (release func(), err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.measureLocked(time.Now())
	if diskState(d.state.Load()) != diskOK || d.free.Load()-d.reserved-need < d.limits.Low {
		return nil, storageProblem()
	}
	d.reserved += need
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			d.reserved -= need
			d.mu.Unlock()
		})
	}, nil
}

func storageProblem() *api.Problem {
	return &api.Problem{Type: api.ProblemStorage, Status: http.StatusServiceUnavailable,
		Title: "the room's disk is nearly full: it refuses writes until space returns (reads keep working)"}
}

func (s diskState) String() string {
	switch s {
	case diskLow:
		return "low"
	case diskCritical:
		return "critical"
	}
	return "ok"
}

// diskRefusal is the problem a request meets when the disk is too full for
// it, or nil: method is the request's. Below the low mark, reads and
// deletions (a discarded upload) go on: they write no more than their
// audit entry, and a deletion frees space.
func (d *diskWatch) diskRefusal(method string) (*api.Problem, diskState) {
	switch st := d.current(); {
	case st == diskCritical:
		return storageProblem(), st
	case st == diskLow && method != http.MethodGet && method != http.MethodHead && method != http.MethodDelete:
		return storageProblem(), st
	default:
		return nil, st
	}
}

func (d *diskWatch) String() string {
	return fmt.Sprintf("%d bytes free (%s)", d.free.Load(), diskState(d.state.Load()))
}
