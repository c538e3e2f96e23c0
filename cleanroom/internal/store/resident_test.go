package store

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func TestParseMapping(t *testing.T) {
	for _, tc := range []struct {
		line string
		want mapping
		ok   bool
	}{
		{"7f1c2a000000-7f1c6a000000 rw-s 00000000 fd:01 1234 /data/room/000001.vlog",
			mapping{0x7f1c2a000000, 0x7f1c6a000000, true, "/data/room/000001.vlog"}, true},
		{"7f1c2a000000-7f1c2a001000 rw-p 00000000 00:00 0 ", mapping{}, false}, // anonymous: no path
		{"c000000000-c000400000 rw-p 00000000 00:00 0", mapping{}, false},
		{"7f00-7f10 r--p 00000000 fd:01 9 /a dir/with spaces.vlog", mapping{0x7f00, 0x7f10, false, "/a dir/with spaces.vlog"}, true},
		{"7f10-7f00 rw-s 0 fd:01 9 /x.vlog", mapping{}, false}, // backwards
		{"zz-7f00 rw-s 0 fd:01 9 /x.vlog", mapping{}, false},
		{"", mapping{}, false},
	} {
		got, ok := parseMapping(tc.line)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("parseMapping(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

// vlogResident is how many bytes of the process's mappings of value log
// files are resident, from /proc/self/smaps.
func vlogResident(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps")
	}
	var n int64
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			in = len(f) >= 6 && strings.HasSuffix(f[len(f)-1], ".vlog")
		case in && len(f) >= 2 && f[0] == "Rss:":
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			n += kb << 10
		}
	}
	return n
}

// TestReleaseSegment: a large segment written and read through Badger's
// value log leaves the process's resident memory afterwards, and reads back
// the same, again and again.
func TestReleaseSegment(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("releasing mapped pages is Linux only")
	}
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil).WithValueThreshold(1 << 10).WithSyncWrites(true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	payload := make([]byte, 16<<20)
	for i := range payload {
		payload[i] = byte(i*7 + i>>12)
	}
	key := Segments("up-1").Key(0)
	if err := db.Update(func(txn *badger.Txn) error { return PutSegment(txn, key, payload) }); err != nil {
		t.Fatal(err)
	}
	if r := vlogResident(t); r < int64(len(payload)) {
		t.Fatalf("only %d bytes of the value log are resident after writing %d: the test cannot see a release", r, len(payload))
	}
	if err := db.View(func(txn *badger.Txn) error { return ReleaseSegment(txn, key) }); err != nil {
		t.Fatal(err)
	}
	if r := vlogResident(t); r > 1<<20 {
		t.Fatalf("%d bytes of the value log still resident after ReleaseSegment", r)
	}
	for range 2 {
		err := db.View(func(txn *badger.Txn) error {
			return ReadSegment(txn, key, func(b []byte) error {
				if !bytes.Equal(b, payload) {
					t.Fatal("the segment reads back different after its pages were released")
				}
				if r := vlogResident(t); r < int64(len(payload)) {
					t.Fatalf("only %d bytes resident while the segment is read", r)
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if r := vlogResident(t); r > 1<<20 {
			t.Fatalf("%d bytes of the value log still resident after ReadSegment", r)
		}
	}
}

// TestReleaseMappedOnlyValueLog: memory that is not a shared mapping of a
// value log keeps its contents (there, the call would zero it).
func TestReleaseMappedOnlyValueLog(t *testing.T) {
	heap := bytes.Repeat([]byte{0xa5}, 4<<20)
	releaseMapped(heap)
	if bytes.Count(heap, []byte{0xa5}) != len(heap) {
		t.Fatal("releaseMapped discarded heap memory")
	}
	// Nor a private mapping of a file: a copy of the test's own binary.
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := syscall.Mmap(int(f.Fd()), 0, 4<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	for i := range m {
		m[i] = 0x5a
	}
	releaseMapped(m)
	if bytes.Count(m, []byte{0x5a}) != len(m) {
		t.Fatal("releaseMapped discarded a private mapping's pages")
	}
}
