package audit

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit/bundle"
)

// TestRequestKey: a principal's request key is its own, the same after the
// log is reopened (for writing or reading), and finds its entries by id; a
// store without a request secret gets one when opened for writing, and
// one opened read-only says it has none.
func TestRequestKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := Open(ctx, dir, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.RequestKey("partner-0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.RequestKey("partner-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || bytes.Equal(a, b) {
		t.Fatalf("request keys %x and %x", a, b)
	}
	e := entry(0)
	e.Principal, e.RequestID = "partner-0", "req-1"
	r, err := l.Append(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []Options{testOpts(), {ReadOnly: true}} {
		l, err := Open(ctx, dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		again, err := l.RequestKey("partner-0")
		if err != nil || !bytes.Equal(again, a) {
			t.Fatalf("reopened (read-only %v): request key %x, %v; want %x", opts.ReadOnly, again, err, a)
		}
		raw, err := l.Entry(ctx, r.Index)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseEntry(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !IsRequest(got, a, "req-1") || IsRequest(got, b, "req-1") || IsRequest(got, a, "req-2") || IsRequest(got, nil, "req-1") {
			t.Fatal("the entry is found by a key or id not its own, or not by its own")
		}
		l.Close()
	}

	// A store without a secret, as one written before ids were keyed.
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return txn.Delete(keyRequestSecret) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ro, err := Open(ctx, dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ro.RequestKey("partner-0"); !errors.Is(err, ErrNoRequestKey) {
		t.Fatalf("read-only without a secret: %v, want ErrNoRequestKey", err)
	}
	ro.Close()
	l = openLog(t, dir, testOpts())
	if k, err := l.RequestKey("partner-0"); err != nil || len(k) != 32 || bytes.Equal(k, a) {
		t.Fatalf("a new secret: key %x, %v", k, err)
	}
}

// TestRequestSecretCorrupt: a stored secret of the wrong size is refused
// when the log opens, not used.
func TestRequestSecretCorrupt(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(context.Background(), dir, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set(keyRequestSecret, []byte("short")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, opts := range []Options{testOpts(), {ReadOnly: true}} {
		if l, err := Open(context.Background(), dir, opts); !errors.Is(err, ErrCorrupt) {
			if err == nil {
				l.Close()
			}
			t.Fatalf("read-only %v: %v, want ErrCorrupt", opts.ReadOnly, err)
		}
	}
}

// BenchmarkRequestKeyDigest is what keying a request id adds to an append:
// the principal's key and the id's digest under it.
func BenchmarkRequestKeyDigest(b *testing.B) {
	secret := bytes.Repeat([]byte{1}, 32)
	salt := "00112233445566778899aabbccddeeff"
	b.ReportAllocs()
	for b.Loop() {
		key := requestKey(secret, "pulsefit-analyst")
		_ = bundle.RequestDigest(bundle.RequestToken(key, "pulsefit-analyst", "0123456789abcdef0123456789abcdef"), salt)
	}
}
