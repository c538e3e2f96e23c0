package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "cleanroom.test/room/1"

// testKey is deterministic so failures reproduce.
var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))

func testOpts() Options {
	return Options{Origin: testOrigin, Key: testKey, CheckpointEvery: -1, CheckpointInterval: -1}
}

func openLog(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func testVerifier(t testing.TB) note.Verifier {
	t.Helper()
	vkey, err := VerifierKey(testOrigin, testKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func entry(i int) Entry {
	return Entry{
		Time:          time.Date(2026, 11, 22, 10, 0, 0, i, time.UTC),
		Principal:     fmt.Sprintf("partner-%d", i%3),
		Role:          "partner",
		Action:        "dataset.upload",
		Collaboration: "collab-1",
		Decision:      Decision{Allow: i%5 != 0, PolicyHash: digest("policy"), Reasons: reasons(i)},
		Data:          []DataRef{{Name: fmt.Sprintf("dataset/%d", i), Digest: digest(fmt.Sprint(i)), Bytes: int64(1000 + i), Rows: int64(i)}},
		RequestID:     fmt.Sprintf("req-%d", i),
	}
}

func reasons(i int) []string {
	if i%5 == 0 {
		return []string{"list size is below the collaboration's minimum of 1000"}
	}
	return nil
}

func appendN(t testing.TB, l *Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := l.Append(context.Background(), entry(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAppendDenseConcurrent(t *testing.T) {
	l := openLog(t, t.TempDir(), testOpts())
	const workers, each = 8, 150
	var (
		mu   sync.Mutex
		seen = map[int64]bool{}
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				r, err := l.Append(context.Background(), entry(w*each+i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[r.Index] {
					t.Errorf("index %d handed out twice", r.Index)
				}
				seen[r.Index] = true
				mu.Unlock()
				if r.TreeSize <= r.Index {
					t.Errorf("receipt tree size %d <= index %d", r.TreeSize, r.Index)
				}
			}
		})
	}
	wg.Wait()
	if l.Size() != workers*each {
		t.Fatalf("Size = %d, want %d", l.Size(), workers*each)
	}
	for i := range int64(workers * each) {
		if !seen[i] {
			t.Fatalf("index %d missing: indices are not dense", i)
		}
	}

	// Inclusion proofs against a checkpoint, and consistency between two.
	ctx := context.Background()
	c1, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v := testVerifier(t)
	if _, err := ParseCheckpoint(c1.Note, v); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int64{0, 1, 517, c1.Size - 1} {
		p, err := l.ProveInclusion(ctx, i, c1.Size)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := l.Entry(ctx, i)
		if err := CheckInclusion(c1, i, b, p); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if err := CheckInclusion(c1, i, append(b, ' '), p); !errors.Is(err, ErrProof) {
			t.Fatalf("altered entry %d passed its inclusion proof", i)
		}
	}
	appendN(t, l, 5000, 37)
	c2, _ := l.Checkpoint(ctx)
	p, err := l.ProveConsistency(ctx, c1.Size, c2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckConsistency(c1, c2, p); err != nil {
		t.Fatal(err)
	}
	forged := *c1
	forged.Root[0] ^= 1
	if err := CheckConsistency(&forged, c2, p); !errors.Is(err, ErrProof) {
		t.Fatal("consistency proof accepted a different old root")
	}
	if err := CheckConsistency(c2, c1, p); !errors.Is(err, ErrProof) {
		t.Fatal("a shrinking log passed as consistent")
	}
}

func TestEntryCanonical(t *testing.T) {
	e := entry(3)
	a, err := e.MarshalCanonical()
	if err != nil {
		t.Fatal(err)
	}
	local := e
	local.Time = e.Time.In(time.FixedZone("X", 3600))
	b, _ := local.MarshalCanonical()
	if !bytes.Equal(a, b) {
		t.Fatal("same instant in another zone encodes differently")
	}
	got, err := ParseEntry(a)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := got.MarshalCanonical()
	if !bytes.Equal(a, again) {
		t.Fatal("round trip changed the encoding")
	}
	for name, variant := range map[string][]byte{
		"extra space":   bytes.Replace(a, []byte(`"v":1,`), []byte(`"v": 1,`), 1),
		"unknown field": bytes.Replace(a, []byte(`"v":1,`), []byte(`"v":1,"x":2,`), 1),
		"reordered":     bytes.Replace(a, []byte(`"principal":"partner-0","role":"partner"`), []byte(`"role":"partner","principal":"partner-0"`), 1),
		"zone offset":   bytes.Replace(a, []byte(`Z"`), []byte(`+00:00"`), 1),
		"version 2":     bytes.Replace(a, []byte(`"v":1,`), []byte(`"v":2,`), 1),
		"trailing":      append(append([]byte(nil), a...), ' '),
		"not json":      []byte("hello"),
	} {
		if bytes.Equal(variant, a) {
			t.Fatalf("%s: variant did not change the bytes", name)
		}
		if _, err := ParseEntry(variant); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("%s: ParseEntry = %v, want ErrInvalidEntry", name, err)
		}
	}
}

// The limits of an entry's fields (audit/bundle's maxName and maxReasons).
const maxName, maxReasons = 200, 32

func TestEntryValidate(t *testing.T) {
	long := string(bytes.Repeat([]byte("a"), maxName+1))
	cases := map[string]func(e *Entry){
		"zero time":        func(e *Entry) { e.Time = time.Time{} },
		"no principal":     func(e *Entry) { e.Principal = "" },
		"no action":        func(e *Entry) { e.Action = "" },
		"long principal":   func(e *Entry) { e.Principal = long },
		"control char":     func(e *Entry) { e.Action = "upload\n" },
		"bad utf8":         func(e *Entry) { e.Collaboration = "\xff" },
		"raw data digest":  func(e *Entry) { e.Data[0].Digest = "alice@example.com" },
		"upper hex digest": func(e *Entry) { e.Data[0].Digest = digest("x")[:63] + "A" },
		"bad policy hash":  func(e *Entry) { e.Decision.PolicyHash = "v1" },
		"bad result":       func(e *Entry) { e.ResultDigest = "42" },
		"negative rows":    func(e *Entry) { e.Data[0].Rows = -1 },
		"too many reasons": func(e *Entry) { e.Decision.Reasons = make([]string, maxReasons+1) },
		"unnamed data":     func(e *Entry) { e.Data[0].Name = "" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			e := entry(1)
			e.Data = append([]DataRef(nil), e.Data...)
			mutate(&e)
			if _, err := e.MarshalCanonical(); !errors.Is(err, ErrInvalidEntry) {
				t.Fatalf("accepted: %v", err)
			}
			l := openLog(t, t.TempDir(), testOpts())
			if _, err := l.Append(context.Background(), e); !errors.Is(err, ErrInvalidEntry) || l.Size() != 0 {
				t.Fatalf("Append = %v, size %d", err, l.Size())
			}
		})
	}
}

func TestFailClosed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := openLog(t, dir, testOpts())
	appendN(t, l, 0, 10)

	// A failing commit: no receipt, nothing written, indices stay dense.
	diskFull := errors.New("no space left on device")
	l.beforeCommit = func() error { return diskFull }
	r, err := l.Append(ctx, entry(10))
	if !errors.Is(err, diskFull) || r != (Receipt{}) {
		t.Fatalf("Append on a failing store = %+v, %v", r, err)
	}
	if l.Size() != 10 {
		t.Fatalf("size moved to %d after a failed append", l.Size())
	}
	l.beforeCommit = nil
	if r, err := l.Append(ctx, entry(11)); err != nil || r.Index != 10 {
		t.Fatalf("after recovery: %+v, %v; want index 10", r, err)
	}

	// A store that is really gone: Badger closed under the log.
	l.db.Close()
	if r, err := l.Append(ctx, entry(12)); err == nil || r != (Receipt{}) {
		t.Fatalf("Append on a closed store = %+v, %v", r, err)
	}
	l.ownDB = false // already closed
	l.Close()

	l2 := openLog(t, dir, testOpts())
	if l2.Size() != 11 {
		t.Fatalf("reopened size = %d, want 11", l2.Size())
	}
	var buf bytes.Buffer
	if err := l2.Export(ctx, &buf, 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(&buf, testVerifier(t), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := l2.Append(ctx, entry(13)); err != nil {
		t.Fatal(err)
	}
	l2.Close()
	if _, err := l2.Append(ctx, entry(14)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	if err := l2.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestAppendTx(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir(), testOpts())
	key := []byte("budget/collab-1")
	r, err := l.AppendTx(ctx, entry(0), func(txn *badger.Txn) error { return txn.Set(key, []byte("0.9")) })
	if err != nil || r.Index != 0 {
		t.Fatal(r, err)
	}
	overspent := errors.New("budget exhausted")
	_, err = l.AppendTx(ctx, entry(1), func(txn *badger.Txn) error { return overspent })
	if !errors.Is(err, overspent) || l.Size() != 1 {
		t.Fatalf("AppendTx with failing fn = %v, size %d", err, l.Size())
	}
	// A state change and its entry fail together when the commit fails.
	l.beforeCommit = func() error { return errors.New("io error") }
	if _, err := l.AppendTx(ctx, entry(2), func(txn *badger.Txn) error { return txn.Set(key, []byte("0.8")) }); err == nil {
		t.Fatal("commit failure not reported")
	}
	l.beforeCommit = nil
	l.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(key)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := it.ValueCopy(nil)
		if string(v) != "0.9" {
			t.Fatalf("state written without its entry: %q", v)
		}
		return nil
	})
}

func TestCheckpointTriggers(t *testing.T) {
	opts := testOpts()
	opts.CheckpointEvery = 10
	l := openLog(t, t.TempDir(), opts)
	appendN(t, l, 0, 25)
	waitFor(t, func() bool { return l.lastCkpt.Load() >= 20 })

	opts = testOpts()
	opts.CheckpointInterval = 20 * time.Millisecond
	l2 := openLog(t, t.TempDir(), opts)
	appendN(t, l2, 0, 3)
	waitFor(t, func() bool { return l2.lastCkpt.Load() == 3 })
	cs, err := l2.Checkpoints(context.Background())
	if err != nil || len(cs) == 0 {
		t.Fatal(cs, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCloseStopsBackgroundWork(t *testing.T) {
	opts := testOpts()
	opts.GCInterval = time.Millisecond
	opts.CheckpointInterval = time.Millisecond
	l := openLog(t, t.TempDir(), opts)
	appendN(t, l, 0, 5)
	time.Sleep(20 * time.Millisecond)
	done := make(chan error)
	go func() { done <- l.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testOpts())
	appendN(t, l, 0, 3)
	l.Close()
	other := testOpts()
	other.Origin = "cleanroom.test/room/2"
	if _, err := Open(context.Background(), dir, other); err == nil {
		t.Fatal("opened a log under another origin")
	}
	bad := testOpts()
	bad.Key = nil
	if _, err := Open(context.Background(), t.TempDir(), bad); err == nil {
		t.Fatal("opened a writable log without a key")
	}
}

func TestExportRanges(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir(), testOpts())
	var saved [][]byte
	for _, n := range []int{7, 13, 40, 4} {
		appendN(t, l, int(l.Size()), n)
		c, err := l.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		saved = append(saved, c.Note)
	}
	v := testVerifier(t)
	size := l.Size()
	for _, r := range [][2]int64{{0, 0}, {0, size}, {5, size}, {0, 17}, {9, 33}, {31, 32}, {size, size}, {20, 20}} {
		t.Run(fmt.Sprintf("%d-%d", r[0], r[1]), func(t *testing.T) {
			for _, since := range append([][]byte{nil}, saved...) {
				var extends int64
				var reader *Checkpoint
				if since != nil {
					var err error
					if reader, err = l.ReaderCheckpoint(since); err != nil {
						t.Fatal(err)
					}
					extends = reader.Size
				}
				var buf bytes.Buffer
				if err := l.Export(ctx, &buf, r[0], r[1], reader); err != nil {
					t.Fatal(err)
				}
				rep, err := Verify(bytes.NewReader(buf.Bytes()), v, since)
				if err != nil {
					t.Fatal(err)
				}
				want := r[1]
				if want == 0 && r[0] == 0 {
					want = size
				}
				if rep.Entries != want-r[0] || rep.TreeSize != size {
					t.Fatalf("report %+v", rep)
				}
				if since == nil {
					continue
				}
				// Without the reader's checkpoint named, the bundle
				// proves it only where its entries give that tree again.
				var plain bytes.Buffer
				if err := l.Export(ctx, &plain, r[0], r[1], nil); err != nil {
					t.Fatal(err)
				}
				_, err = Verify(bytes.NewReader(plain.Bytes()), v, since)
				inTree := extends == size || r[0] < extends && extends <= want
				if inTree && err != nil {
					t.Errorf("--since %d, its tree recomputed from the entries: %v", extends, err)
				}
				if !inTree && (err == nil || !strings.Contains(err.Error(), "no consistency proof")) {
					t.Errorf("--since %d, outside the entries and not named to the export: %v", extends, err)
				}
			}
		})
	}
	var buf bytes.Buffer
	if err := l.Export(ctx, &buf, 10, 5, nil); err == nil {
		t.Fatal("inverted range exported")
	}
}

func TestVerifyWrongKey(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir(), testOpts())
	appendN(t, l, 0, 5)
	var buf bytes.Buffer
	if err := l.Export(ctx, &buf, 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))
	vkey, _ := VerifierKey(testOrigin, other.Public().(ed25519.PublicKey))
	v, _ := note.NewVerifier(vkey)
	var ve *VerifyError
	if _, err := Verify(&buf, v, nil); !errors.As(err, &ve) || ve.Index != -1 {
		t.Fatalf("Verify with another key = %v", err)
	}
}

func TestPublicJWKS(t *testing.T) {
	set, err := PublicJWKS(testKey.Public().(ed25519.PublicKey))
	if err != nil || set.Len() != 1 {
		t.Fatal(set, err)
	}
	k, _ := set.Key(0)
	if k.KeyID() == "" || k.Algorithm().String() != "EdDSA" {
		t.Fatalf("key %v", k)
	}
}
