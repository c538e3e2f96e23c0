package cleanroom

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestFaultFullDisk runs a room on a real, small filesystem (a 64 MiB
// tmpfs) and fills it with upload parts: the room refuses writes with 503
// insufficient-storage before the disk runs out, stays up, keeps answering
// reads and the audit export, takes writes again by itself once space
// returns, and starts again. Badger writes through memory-mapped files, so
// a disk that really filled would kill the process with SIGBUS.
func TestFaultFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a filesystem and runs a room process: not in -short")
	}
	mnt := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=64m"); err != nil {
		// Without root a test cannot make a small filesystem;
		// TestDiskWatermarks covers the same marks through the statfs seam.
		t.Skipf("mounting a 64 MiB tmpfs needs root (%v); TestDiskWatermarks covers the watermarks through a seam", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	dir := DataDir(filepath.Join(mnt, "room"))
	ctx := context.Background()
	opKey, err := Init(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// Another tenant of the disk takes 30 MiB: the room fills the rest.
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 30<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	limits := diskLimitsEnv + "=" + fmt.Sprintf("%d,%d,%d", 12<<20, 20<<20, 4<<20)
	child, url := startChild(t, dir, limits)
	op, err := client.New(ctx, url, opKey, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := &testRoom{t: t, url: url, op: op, dir: dir, keys: map[string]*crypto.PartnerKey{}}
	alpha := tr.partner("alpha", policy.RolePartner, "")
	bravo := tr.partner("bravo", policy.RolePartner, "")
	tr.collab("c1", api.ModeHashed, nil, alpha, bravo)
	tr.partner("aud", policy.RoleRoomAuditor, "")

	// An upload whose rows are declared at the commit takes parts as they
	// come: each of 30,000 rows, about 1.4 MB.
	up := startRegionUpload(t, tr, 0, 30000)
	put := func(part int) (int, string) {
		body := binaryPart(t, 30000, 1, make([]byte, 32), strings.Repeat("x", 12), distinctTokens(fmt.Sprint(part)))
		resp, msg := rawRequestAs(t, tr, "alpha", "PUT", fmt.Sprintf("/v1/collaborations/c1/uploads/%s/parts/%d", up.ID, part), api.PartContentType, body)
		return resp.StatusCode, string(msg)
	}
	alive := func() bool { return syscall.Kill(child.Process.Pid, 0) == nil }
	part, stored := 0, 0
	for ; part < 100; part++ {
		status, msg := put(part)
		if status == http.StatusOK {
			stored++
			continue
		}
		if status != http.StatusServiceUnavailable || !strings.Contains(msg, api.ProblemStorage) {
			t.Fatalf("part %d: %d %s (room alive: %v)", part, status, msg, alive())
		}
		break
	}
	free, _ := freeSpace(mnt)
	t.Logf("full disk: %d parts stored, then refused 503 insufficient-storage with %d MiB free", stored, free>>20)
	if part == 100 || stored == 0 {
		t.Fatalf("the room never refused a part (%d stored)", stored)
	}
	if !alive() {
		t.Fatal("the room process died")
	}
	// Reads and the audit export go on.
	if _, err := alpha.Collaboration(ctx, "c1"); err != nil {
		t.Errorf("a read on a full disk: %v", err)
	}
	aud, err := reconnect(tr, "aud")
	if err != nil {
		t.Fatal(err)
	}
	var bundle strings.Builder
	if err := aud.ExportAudit(ctx, &bundle); err != nil {
		t.Errorf("the audit export on a full disk: %v", err)
	}
	// The other tenant leaves: the room takes writes again by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if status, msg := put(part); status != http.StatusOK {
		t.Errorf("once space returned: %d %s", status, msg)
	}
	// And it stops and starts again on that disk.
	child.Process.Signal(syscall.SIGTERM)
	if err := child.Wait(); err != nil {
		t.Errorf("the room's exit: %v", err)
	}
	_, url = startChild(t, dir, limits)
	c, err := client.New(ctx, url, tr.keys["alpha"], client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Collaboration(ctx, "c1"); err != nil {
		t.Errorf("after a restart: %v", err)
	}
}
