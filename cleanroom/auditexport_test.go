package cleanroom

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestExportAfterCrash kills a room process (SIGKILL) while it writes, then
// exports its data directory as cleanroom audit export --data does: Badger
// refuses to open the store read-only (its write-ahead log needs
// truncating), so the export reads a recovered copy, leaves the directory
// as the crash left it, and the bundle verifies.
func TestExportAfterCrash(t *testing.T) {
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
	tr.partner("alpha", policy.RolePartner, "")
	// Checkpoints are signed every 10 s or 1000 entries; an export covers
	// the entries up to the latest, so have the room sign one.
	var ckpt bytes.Buffer
	if err := op.ExportAuditRange(ctx, &ckpt, 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	// Register principals without pause, and kill the room after twenty.
	var registered atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			k, _ := crypto.GeneratePartnerKey(fmt.Sprintf("p%d", i), nil)
			if op.RegisterPrincipal(ctx, api.Principal{ID: k.Name(), Role: policy.RolePartner, Keys: k.Public()}) != nil {
				return // the room is gone
			}
			registered.Add(1)
		}
	}()
	for registered.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	child.Process.Kill()
	child.Wait()
	<-done
	t.Logf("%d principals registered before the kill", registered.Load())

	db := dir.Database()
	if l, err := audit.Open(ctx, db, audit.Options{ReadOnly: true}); err == nil {
		l.Close()
		t.Fatal("the crashed store opened read-only: this test does not reach the recovery it is for")
	} else if !strings.Contains(err.Error(), "truncate") {
		t.Fatalf("read-only open of the crashed store: %v", err)
	}
	before := statAll(t, db)
	tmp := t.TempDir()
	l, err := audit.OpenForExport(ctx, db, tmp, audit.Options{})
	if err != nil {
		t.Fatalf("OpenForExport: %v", err)
	}
	var bundle bytes.Buffer
	err = l.Export(ctx, &bundle, 0, 0, nil)
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(roomVerifierKey(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(&bundle, v, nil)
	if err != nil || rep.Entries < 3 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	if after := statAll(t, db); after != before {
		t.Fatalf("the export changed the crashed store:\nbefore %s\nafter  %s", before, after)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatal("the recovered copy was left behind")
	}
}

func roomVerifierKey(t *testing.T, dir DataDir) string {
	t.Helper()
	id, err := readIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := &Room{id: id}
	return r.Info().VerifierKey
}

// statAll describes the files of dir by name, size and modification time.
func statAll(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range es {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%d:%d ", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

// TestExportRange: a range outside the log, or backwards, is refused
// before the answer starts; one within it exports.
func TestExportRange(t *testing.T) {
	tr := startRoom(t)
	ctx := context.Background()
	tr.partner("alpha", policy.RolePartner, "")
	size := tr.room.audit.Size()
	for _, tc := range []struct {
		from, to int64
		ok       bool
	}{
		{0, 0, true}, {1, size, true}, {size, 0, true},
		// Each export is an entry of its own: well past the log stays past.
		{3, 2, false}, {0, size + 1000, false}, {size + 1000, 0, false},
	} {
		var buf bytes.Buffer
		err := tr.op.ExportAuditRange(ctx, &buf, tc.from, tc.to, nil)
		if tc.ok && (err != nil || buf.Len() == 0) {
			t.Errorf("%d..%d: %v, %d bytes", tc.from, tc.to, err, buf.Len())
		}
		if !tc.ok {
			wantProblem(t, err, api.ProblemBadRequest)
		}
	}
}
