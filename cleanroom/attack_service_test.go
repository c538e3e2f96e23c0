package cleanroom

// Attacks on the service itself: a commit that makes the room allocate
// without bound, bounds that make the noise loop forever, and unsigned
// requests that grow the audit log. The first two run the room in a process
// of its own, so that what they do to it cannot take the test binary (or
// the machine) with it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// Bounds of the service attacks.
const (
	// attackChildMemoryMiB is the address space a room process gets: far
	// more than a room of a few thousand rows needs (Badger maps its files),
	// far less than the machine has.
	attackChildMemoryMiB = 6 << 10
	// attackQueryDeadline is how long a query on a few thousand rows may
	// take before the room is taken to be stuck.
	attackQueryDeadline = 10 * time.Second
	// attackIdleCPU is the most CPU time the room may use in the 2 s after
	// a client gave up on a query: an idle room uses some 40 ms of it.
	attackIdleCPU = 250 * time.Millisecond
	// attackUnauthenticatedEntries is how many audit entries 2,000
	// requests with bad tokens may add: a constant, not one each.
	attackUnauthenticatedEntries = 50
)

// roomProcess is a room served by a process of its own: the test binary
// as a server (TestMain, serveDirEnv).
type roomProcess struct {
	tr     *testRoom
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{} // closed when the process has ended
}

// lockedBuffer collects what is written to it (its first limit bytes, if
// limit is set: a process's stderr, say) while the test reads it.
type lockedBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	limit int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limit == 0 {
		return l.b.Write(p)
	}
	if room := l.limit - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// childRoom initializes a room directory and serves it from a child
// process limited to limitMiB of address space (0: no limit).
func childRoom(t *testing.T, limitMiB int) *roomProcess {
	t.Helper()
	dir := DataDir(t.TempDir())
	ctx := context.Background()
	opKey, err := Init(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	limit := "unlimited"
	if limitMiB > 0 {
		limit = strconv.Itoa(limitMiB << 10) // ulimit -v takes KiB
	}
	p := &roomProcess{stderr: &lockedBuffer{limit: 64 << 10}, exited: make(chan struct{})}
	p.cmd = exec.Command("sh", "-c", `ulimit -v "$1" && exec "$0" -test.run='^$'`, os.Args[0], limit)
	p.cmd.Env = append(os.Environ(), serveDirEnv+"="+string(dir))
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.exited })
	var url string
	for deadline := time.Now().Add(30 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(string(dir), "addr")); err == nil {
			url = "http://" + strings.TrimSpace(string(b))
		}
		if p.dead() {
			t.Fatalf("the room process did not start: %s", p.stderr)
		}
	}
	if url == "" {
		t.Fatal("the room process did not start")
	}
	op, err := client.New(ctx, url, opKey, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.tr = &testRoom{t: t, url: url, op: op, dir: dir, keys: map[string]*crypto.PartnerKey{}}
	return p
}

func (p *roomProcess) dead() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// cpuTime is the process's user and system CPU time so far, from
// /proc/<pid>/stat (utime and stime, in clock ticks of 10 ms).
func (p *roomProcess) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unreadable /proc stat")
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// answers reports whether the room answers a member's request.
func (p *roomProcess) answers(t *testing.T, who string) bool {
	status, _ := atkRaw(t, p.tr, who, "GET", "/v1/collaborations/c1", "", nil)
	return status == http.StatusOK
}

// oomLine returns the line of the process's stderr that says it ran out of
// memory, if any.
func (p *roomProcess) oomLine() string {
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		if strings.Contains(l, "out of memory") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// TestAttackCommitAllocation: an upload started with rows 0 and
// rows_per_part 1 and committed with rows 4,294,967,291 makes the room
// allocate a slot per part.
func TestAttackCommitAllocation(t *testing.T) {
	if atkRace {
		t.Skip("the race detector reserves more address space than the room process's limit allows")
	}
	p := childRoom(t, attackChildMemoryMiB)
	s := newAttackScene(t, p.tr, attackOpts{noUpload: true})
	v, err := s.attacker.Collaboration(s.ctx, s.collab)
	if err != nil {
		t.Fatal(err)
	}
	start := api.StartUpload{Kind: v.Kind, Profile: v.Profile, Columns: []string{}, Rows: 0, RowsPerPart: 1, Canary: madeUpCanary(v.Kind)}
	body, _ := json.Marshal(start)
	status, resp := atkRaw(t, p.tr, atkAttacker, "POST", "/v1/collaborations/c1/uploads", "application/json", body)
	if status != http.StatusCreated {
		t.Fatalf("start upload: %d %s", status, resp)
	}
	var up api.Upload
	if err := json.Unmarshal(resp, &up); err != nil {
		t.Fatal(err)
	}
	commit := fmt.Sprintf(`{"digest":"00","rows":%d}`, int64(4294967291))
	status, resp = atkRaw(t, p.tr, atkAttacker, "POST", "/v1/collaborations/c1/uploads/"+up.ID+"/commit", "application/json", []byte(commit))
	t.Logf("commit of 4294967291 rows in parts of 1: status %d %s", status, strings.TrimSpace(string(resp)))
	select { // a dying process takes a moment to be reaped
	case <-p.exited:
	case <-time.After(time.Second):
	}
	alive, answers := !p.dead(), !p.dead() && p.answers(t, atkAttacker)
	t.Logf("after the commit: room process alive %v, answers the next request %v; its stderr: %q", alive, answers, p.oomLine())
	if !answers {
		t.Errorf("the room does not answer after the commit (process alive: %v): %s", alive, p.oomLine())
	}
}

// TestAttackHugeBounds: bounds of ±1.7e308 on a summed column make the
// sensitivity over epsilon infinite, on which the noise sampler loops.
func TestAttackHugeBounds(t *testing.T) {
	p := childRoom(t, 0)
	s := newAttackScene(t, p.tr, attackOpts{bounds: map[string][2]float64{atkVictim + ".revenue": {-1.7e308, 1.7e308}}, mayRefuse: true})
	if s.refused != nil {
		t.Logf("the room refused the bounds: %v", s.refused)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, attackQueryDeadline)
	defer cancel()
	began := time.Now()
	_, err := s.attacker.Query(ctx, s.collab, api.QuerySpec{Version: api.QueryVersion, Epsilon: 0.5,
		Metrics: []api.Metric{{Kind: api.MetricSum, Column: atkVictim + ".revenue"}}})
	took := time.Since(began)
	stuck := errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil
	cancel()
	c0, cerr := p.cpuTime()
	time.Sleep(2 * time.Second)
	c1, _ := p.cpuTime()
	burned := c1 - c0
	answers := p.answers(t, atkAttacker)
	t.Logf("huge bounds: query stuck %v after %v (err %v); the room used %v CPU in the 2 s after (read: %v); answers the next request %v",
		stuck, took.Round(time.Millisecond), err, burned, cerr, answers)
	if stuck {
		t.Errorf("the query was neither answered nor refused within %v", attackQueryDeadline)
	}
	if cerr == nil && burned > attackIdleCPU {
		t.Errorf("the room used %v of CPU in the 2 s after the client gave up, bound %v", burned, attackIdleCPU)
	}
	if !answers {
		t.Error("the room does not answer after the query")
	}
}

// TestAttackUnauthenticatedLogGrowth: every request with a bad token adds
// an audit entry, so anyone can grow the log without bound.
func TestAttackUnauthenticatedLogGrowth(t *testing.T) {
	s := attackRoom(t, attackOpts{noUpload: true})
	before := auditEntries(t, s.tr)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < 2000; i += 8 {
				if s.ctx.Err() != nil {
					return
				}
				auth := fmt.Sprintf("Bearer not-a-token-%d", i)
				if i%4 == 0 {
					auth = ""
				}
				// Refused either way: after verifying the token (401), or
				// unverified, for a source over its limit (429).
				if status, _ := atkRawToken(t, s.tr, auth, "GET", "/v1/collaborations/c1", "", nil); status == http.StatusUnauthorized || status == http.StatusTooManyRequests {
					sent.Add(1)
				}
			}
		})
	}
	wg.Wait()
	// Whatever the room records of them it records by the time it stops.
	s.tr.stop()
	added := s.tr.room.audit.Size() - before
	t.Logf("unauthenticated log growth: %d requests refused (401 or 429) added %d audit entries, bound %d", sent.Load(), added, attackUnauthenticatedEntries)
	if sent.Load() != 2000 {
		t.Fatalf("%d of 2000 bad requests were refused", sent.Load())
	}
	if added > attackUnauthenticatedEntries {
		t.Errorf("2000 requests with bad tokens added %d audit entries, bound %d", added, attackUnauthenticatedEntries)
	}
}
