package audit

import (
	"context"
	"fmt"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// memHashes is a tree's stored hashes in memory, indexed as tlog stores
// them.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if idx >= int64(len(m)) {
			return nil, fmt.Errorf("no stored hash %d", idx)
		}
		out[i] = m[idx]
	}
	return out, nil
}

// TestFrontier: appending through the frontier yields the hashes tlog
// stores when it reads the whole tree, and holds the tree's right edge, at
// every size.
func TestFrontier(t *testing.T) {
	var (
		stored memHashes
		f      frontier
	)
	for n := range int64(1100) {
		leaf := tlog.RecordHash(fmt.Appendf(nil, "entry %d", n))
		want, err := tlog.StoredHashesForRecordHash(n, leaf, stored)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.append(leaf)
		if err != nil {
			t.Fatalf("append %d: %v", n, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("record %d: frontier gives %v, the stored tree %v", n, got, want)
		}
		stored = append(stored, want...)
		if f.size != n+1 {
			t.Fatalf("size %d after record %d", f.size, n)
		}
		for l := 0; f.size>>l > 0; l++ {
			if h := stored[tlog.StoredHashIndex(l, f.size>>l-1)]; f.level[l] != h {
				t.Fatalf("size %d: level %d holds %v, the tree %v", f.size, l, f.level[l], h)
			}
		}
	}
}

// TestFrontierRefusesOffEdge: the frontier answers only for the latest
// subtree of each level, so a caller that asks for anything else learns
// that it is out of step instead of getting a wrong hash.
func TestFrontierRefusesOffEdge(t *testing.T) {
	var f frontier
	for n := range 10 {
		if _, err := f.append(tlog.RecordHash([]byte{byte(n)})); err != nil {
			t.Fatal(err)
		}
	}
	// Size 10: the latest subtrees are 9 (level 0), 4 (level 1), 1 (level 2), 0 (level 3).
	for _, tc := range []struct {
		level int
		n     int64
		ok    bool
	}{
		{0, 9, true}, {1, 4, true}, {2, 1, true}, {3, 0, true},
		{0, 8, false}, {1, 3, false}, {2, 0, false}, {0, 10, false}, {4, 0, false},
	} {
		_, err := f.ReadHashes([]int64{tlog.StoredHashIndex(tc.level, tc.n)})
		if (err == nil) != tc.ok {
			t.Errorf("level %d subtree %d: err = %v, want ok %v", tc.level, tc.n, err, tc.ok)
		}
	}
}

// TestLoadFrontier: the frontier read from a store, at every size, is the
// one built by appending its entries' leaf hashes.
func TestLoadFrontier(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir(), testOpts())
	appendN(t, l, 0, 37)
	var built frontier
	err := l.db.View(func(txn *badger.Txn) error {
		for size := range int64(38) {
			loaded, err := loadFrontier(txn, size)
			if err != nil {
				return err
			}
			if loaded != built {
				return fmt.Errorf("size %d: loaded frontier differs from the built one", size)
			}
			if size < 37 {
				b, err := l.Entry(ctx, size)
				if err != nil {
					return err
				}
				if _, err := built.append(tlog.RecordHash(b)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
