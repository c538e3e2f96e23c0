package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/opencleanroom/cleanroom/audit/bundle"
)

// FuzzParseEntry: never panics, and what it accepts re-encodes to exactly
// the same bytes.
func FuzzParseEntry(f *testing.F) {
	for i := range 6 {
		e := entry(i)
		b, _ := e.MarshalCanonical()
		f.Add(b)
	}
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEntry(b)
		if err != nil {
			return
		}
		again, err := e.MarshalCanonical()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted a non-canonical entry: %q", b)
		}
	})
}

// FuzzParseCheckpoint: never panics on any note.
func FuzzParseCheckpoint(f *testing.F) {
	l, closeLog := memLog(f)
	appendN(f, l, 0, 3)
	c, err := l.Checkpoint(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	closeLog() // see memLog
	f.Add(c.Note)
	f.Add([]byte("x\n\n— x AAAA\n"))
	v := testVerifier(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseCheckpoint(b, v)
		parseUnverified(b)
	})
}

// FuzzVerify: the bundle parser never panics, and never accepts a bundle
// that differs from a genuine one (anything it accepts must describe the
// same log: same entries and root).
func FuzzVerify(f *testing.F) {
	l, closeLog := memLog(f)
	appendN(f, l, 0, 9)
	var good bytes.Buffer
	if err := l.Export(context.Background(), &good, 2, 7, nil); err != nil {
		f.Fatal(err)
	}
	closeLog() // see memLog
	f.Add(good.Bytes())
	f.Add([]byte("{}\nend 0\n"))
	v := testVerifier(f)
	want, err := Verify(bytes.NewReader(good.Bytes()), v, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Verify(bytes.NewReader(b), v, nil)
		if err != nil {
			return
		}
		if rep.Root != want.Root || rep.TreeSize != want.TreeSize {
			t.Fatalf("accepted a bundle for another tree: %+v", rep)
		}
	})
}

// FuzzVerifySparse: the sparse bundle parser never panics, and what it
// accepts are entries of the genuine log: each at its own index, with its
// own content.
func FuzzVerifySparse(f *testing.F) {
	l, closeLog := memLog(f)
	ctx := context.Background()
	var want [][]byte
	for i := range 12 {
		if _, err := l.Append(ctx, scopedEntry(i)); err != nil {
			f.Fatal(err)
		}
		b, err := l.Entry(ctx, int64(i)) // as the log holds it, salt and all
		if err != nil {
			f.Fatal(err)
		}
		want = append(want, b)
	}
	var good bytes.Buffer
	if err := l.ExportScoped(ctx, &good, Scope{Collaborations: []string{"c1", "c2"}, Principals: []string{"p0"}}); err != nil {
		f.Fatal(err)
	}
	closeLog() // see memLog
	f.Add(good.Bytes())
	f.Add([]byte(`{"format":"cleanroom.dev/audit-bundle/v2"}` + "\nend 0\n"))
	f.Add([]byte(strings.SplitN(good.String(), "\n", 2)[0] + "\n3 AAAA -,AAAA {}\nend 1\n"))
	v := testVerifier(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		Verify(bytes.NewReader(b), v, nil)
		VerifyEntries(bytes.NewReader(b), v, nil, func(i int64, e Entry) error {
			got, err := e.MarshalCanonical()
			if err != nil || i < 0 || i >= int64(len(want)) || !bytes.Equal(got, want[i]) {
				t.Fatalf("accepted entry %d that the log does not hold there: %s", i, got)
			}
			return nil
		})
	})
}

// memLog opens a log in an in-memory Badger database, closed by the func
// returned. Every fuzz worker runs the target's setup again; on disk, an
// fsync per append on a busy machine made that take seconds. Each worker
// must make the very log the others make, whose bundles are the seeds
// they share: the request secret and the entries' salts are fixed. The
// targets close the log once their seeds are made: fuzzing needs only the
// bytes.
func memLog(f *testing.F) (*Log, func()) {
	f.Helper()
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		f.Fatal(err)
	}
	secret := bytes.Repeat([]byte{7}, bundle.RequestKeySize)
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set(keyRequestSecret, secret) }); err != nil {
		f.Fatal(err)
	}
	l, err := New(context.Background(), db, testOpts())
	if err != nil {
		f.Fatal(err)
	}
	var n atomic.Uint64
	l.drawSalt = func(salt []byte) {
		clear(salt)
		binary.BigEndian.PutUint64(salt[len(salt)-8:], n.Add(1))
	}
	return l, func() { l.Close(); db.Close() }
}
