package audit

import (
	"bytes"
	"context"
	"testing"
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
	l := openLog(f, f.TempDir(), testOpts())
	appendN(f, l, 0, 3)
	c, err := l.Checkpoint(context.Background())
	if err != nil {
		f.Fatal(err)
	}
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
	l := openLog(f, f.TempDir(), testOpts())
	appendN(f, l, 0, 9)
	var good bytes.Buffer
	if err := l.Export(context.Background(), &good, 2, 7); err != nil {
		f.Fatal(err)
	}
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
