package cleanroom

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// serveDirEnv makes the test binary a room server (see TestMain), so that
// a test can SIGKILL a real room process; diskLimitsEnv ("low,high,critical"
// in bytes) sets its disk watermarks.
const (
	serveDirEnv   = "CLEANROOM_TEST_SERVE_DIR"
	diskLimitsEnv = "CLEANROOM_TEST_DISK_LIMITS"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(serveDirEnv); dir != "" {
		os.Exit(serveForTest(dir))
	}
	if dir := os.Getenv(faultDirEnv); dir != "" {
		os.Exit(faultAnswers(dir))
	}
	if gate := os.Getenv(engineGateEnv); gate != "" {
		os.Exit(engineForTest(gate, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func serveForTest(dir string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg := Config{Dir: DataDir(dir)}
	if lim := os.Getenv(diskLimitsEnv); lim != "" {
		fmt.Sscanf(lim, "%d,%d,%d", &cfg.Disk.Low, &cfg.Disk.High, &cfg.Disk.Critical)
		cfg.Disk.Interval = time.Millisecond
	}
	r, err := Open(ctx, cfg)
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	defer r.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 1
	}
	tmp := filepath.Join(dir, "addr.tmp")
	os.WriteFile(tmp, []byte(ln.Addr().String()), 0o644)
	os.Rename(tmp, filepath.Join(dir, "addr"))
	if err := r.Serve(ctx, ln); err != nil {
		return 1
	}
	return 0
}

// startChild runs a room process on dir and returns its URL; env are more
// variables for it.
func startChild(t *testing.T, dir DataDir, env ...string) (*exec.Cmd, string) {
	t.Helper()
	os.Remove(filepath.Join(string(dir), "addr"))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), serveDirEnv+"="+string(dir)), env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(string(dir), "addr")); err == nil {
			return cmd, "http://" + strings.TrimSpace(string(b))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the room process did not start")
	return nil, ""
}

// TestCrashMidUpload kills the room process (SIGKILL) in the middle of an
// upload: after a restart the collaboration shows no partial dataset, and
// the partner's second run resumes the upload where the room left off.
func TestCrashMidUpload(t *testing.T) {
	dir := DataDir(t.TempDir())
	ctx := context.Background()
	opKey, err := Init(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	child, url := startChild(t, dir)
	op, err := client.New(ctx, url, opKey, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := &testRoom{t: t, url: url, op: op, dir: dir, keys: map[string]*crypto.PartnerKey{}}
	alpha := tr.partner("alpha", policy.RolePartner, "")
	bravo := tr.partner("bravo", policy.RolePartner, "")
	states := tr.collab("c1", api.ModeHashed, nil, alpha, bravo)

	list := writeList(t, span(0, 3000))
	spec := uploadSpec("c1", list, states["alpha"])
	killed := false
	spec.Progress = func(sent int64, _ float64) {
		if sent >= 1000 && !killed {
			killed = true
			child.Process.Kill() // mid-upload: two of six parts stored, up to three more in flight
			child.Wait()
		}
	}
	if _, err := alpha.UploadCSV(ctx, spec); err == nil {
		t.Fatal("upload succeeded though the room was killed")
	}

	_, url = startChild(t, dir)
	alpha, err = client.New(ctx, url, tr.keys["alpha"], client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := alpha.Collaboration(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Datasets) != 0 {
		t.Fatalf("a partial dataset is visible after the crash: %+v", v.Datasets)
	}
	spec.Progress = nil
	rep, err := alpha.UploadCSV(ctx, spec)
	if err != nil {
		t.Fatalf("resuming: %v", err)
	}
	// Parts are sent four at a time (the client's senders): the three others
	// in flight at the kill may have been stored and acknowledged too, never
	// the sixth, which no sender had taken.
	if rep.Resumed < 2 || rep.Resumed > 5 || rep.Parts != 6 || rep.Rows != 3000 {
		t.Errorf("resumed upload: %+v, want 2 to 5 of 6 parts resumed", rep)
	}
	if v, err = alpha.Collaboration(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if d := v.Datasets["alpha"]; d == nil || d.Rows != 3000 || d.Digest != rep.Digest {
		t.Fatalf("dataset after resuming: %+v", d)
	}
}
