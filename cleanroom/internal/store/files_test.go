package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// filesRoom is a database and its segment files, as a room keeps them.
func filesRoom(t *testing.T) (*badger.DB, *Files, string) {
	t.Helper()
	db, err := badger.Open(checkingOptions(t.TempDir()).WithValueThreshold(1 << 10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dir := filepath.Join(t.TempDir(), "segments")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return db, NewFiles(dir, db), dir
}

// putFile writes payload to a file of f and names it at key.
func putFile(t *testing.T, db *badger.DB, f *Files, key string, payload []byte) []byte {
	t.Helper()
	ref, err := f.Write(SealSegment(payload))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(key), ref) }); err != nil {
		t.Fatal(err)
	}
	return ref
}

func readFrom(db *badger.DB, f *Files, key string) ([]byte, error) {
	var got []byte
	err := db.View(func(txn *badger.Txn) error {
		return f.ReadSegment(txn, []byte(key), nil, func(b []byte) error { got = bytes.Clone(b); return nil })
	})
	return got, err
}

func fileOf(t *testing.T, dir string, ref []byte) string {
	t.Helper()
	r, ok := parseFileRef(ref)
	if !ok {
		t.Fatalf("not a reference: %q", ref)
	}
	return filepath.Join(dir, r.name)
}

// TestFilesReadWhatWasWritten: a segment in its file reads back as written,
// beside segments kept in Badger, which read as before.
func TestFilesReadWhatWasWritten(t *testing.T) {
	db, f, _ := filesRoom(t)
	inFile := bytes.Repeat([]byte("a part in its file "), 1000)
	inDB := bytes.Repeat([]byte("a join in the value log "), 1000)
	small := []byte("a short one")
	putFile(t, db, f, "seg/u1/00000000", inFile)
	err := db.Update(func(txn *badger.Txn) error {
		if err := PutSegment(txn, []byte("join/c/1/00000000"), inDB); err != nil {
			return err
		}
		return PutSegment(txn, []byte("join/c/1/00000001"), small)
	})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string][]byte{"seg/u1/00000000": inFile, "join/c/1/00000000": inDB, "join/c/1/00000001": small} {
		if got, err := readFrom(db, f, key); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", key, len(got), err, len(want))
		}
	}
	if err := db.View(f.CheckSegments); err != nil {
		t.Errorf("CheckSegments: %v", err)
	}
	// Without the directory, a reference is damage, not a segment.
	if err := db.View((*Files)(nil).CheckSegments); !errors.Is(err, ErrCorruptSegment) {
		t.Errorf("CheckSegments without files: %v", err)
	}
	if _, err := f.Write([]byte("not sealed")); err == nil {
		t.Error("Write took bytes that are not a sealed segment")
	}
}

// TestFilesRefuseDamage: a file damaged, cut short, lengthened, swapped
// for another segment's or gone is ErrCorruptSegment, from a read and from
// CheckSegments; a key deleted while its file is read is ErrSegmentGone.
func TestFilesRefuseDamage(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 5000)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path, other string)
	}{
		{"a payload bit", func(t *testing.T, path, _ string) { flipAt(t, path, SegmentSeal+len(payload)/2) }},
		{"a seal bit", func(t *testing.T, path, _ string) { flipAt(t, path, 5) }},
		{"cut short", func(t *testing.T, path, _ string) { truncate(t, path, -1) }},
		{"lengthened", func(t *testing.T, path, _ string) { truncate(t, path, +1) }},
		{"swapped for another segment's", func(t *testing.T, path, other string) {
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"gone", func(t *testing.T, path, _ string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, f, dir := filesRoom(t)
			ref := putFile(t, db, f, "seg/u1/00000000", payload)
			// Another valid segment of the same size, to swap in.
			other := putFile(t, db, f, "seg/u1/00000001", bytes.Repeat([]byte("9876543210"), 5000))
			tc.damage(t, fileOf(t, dir, ref), fileOf(t, dir, other))
			_, err := readFrom(db, f, "seg/u1/00000000")
			if !errors.Is(err, ErrCorruptSegment) {
				t.Fatalf("read: %v, want ErrCorruptSegment", err)
			}
			if strings.Contains(err.Error(), "0123456789") {
				t.Errorf("the error shows the data: %v", err)
			}
			if err := db.View(f.CheckSegments); !errors.Is(err, ErrCorruptSegment) {
				t.Errorf("CheckSegments: %v, want ErrCorruptSegment", err)
			}
		})
	}
	t.Run("a reference claiming another size", func(t *testing.T) {
		db, f, _ := filesRoom(t)
		ref := putFile(t, db, f, "seg/u1/00000000", payload)
		r, _ := parseFileRef(ref)
		r.size = maxFileSegment // a read that trusted it would allocate a gibibyte
		if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("seg/u1/00000000"), r.encode()) }); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := readFrom(db, f, "seg/u1/00000000")
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrCorruptSegment) {
			t.Fatalf("read: %v, want ErrCorruptSegment", err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Errorf("the read allocated %d bytes for a damaged reference", grew)
		}
	})
	t.Run("deleted while read", func(t *testing.T) {
		db, f, _ := filesRoom(t)
		key := []byte("seg/u1/00000000")
		putFile(t, db, f, string(key), payload)
		err := db.View(func(txn *badger.Txn) error {
			// The key and its file go after this read's snapshot was taken.
			var refs [][]byte
			if err := db.Update(func(del *badger.Txn) (err error) {
				if refs, err = f.Named(del, [][]byte{key}); err != nil {
					return err
				}
				return del.Delete(key)
			}); err != nil {
				t.Fatal(err)
			}
			if err := f.Remove(refs...); err != nil {
				t.Fatal(err)
			}
			return f.ReadSegment(txn, key, nil, func([]byte) error { return nil })
		})
		if !errors.Is(err, ErrSegmentGone) || errors.Is(err, ErrCorruptSegment) {
			t.Fatalf("read: %v, want ErrSegmentGone", err)
		}
	})
}

func flipAt(t *testing.T, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, by int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()+by); err != nil {
		t.Fatal(err)
	}
}

// TestFilesSweep: Sweep removes the segment files no key names (a write
// whose commit never came, a file whose key was deleted) and keeps those
// named and anything not a segment file.
func TestFilesSweep(t *testing.T) {
	db, f, dir := filesRoom(t)
	kept := putFile(t, db, f, "seg/u1/00000000", []byte("kept"))
	deleted := putFile(t, db, f, "seg/u1/00000001", []byte("its key goes"))
	if err := db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte("seg/u1/00000001")) }); err != nil {
		t.Fatal(err)
	}
	unnamed, err := f.Write(SealSegment([]byte("never committed")))
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "README")
	if err := os.WriteFile(other, []byte("not a segment"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := f.Sweep()
	if err != nil || n != 2 {
		t.Fatalf("Sweep: %d, %v; want 2 removed", n, err)
	}
	for _, c := range []struct {
		path string
		want bool
	}{{fileOf(t, dir, kept), true}, {fileOf(t, dir, deleted), false}, {fileOf(t, dir, unnamed), false}, {other, true}} {
		if _, err := os.Stat(c.path); (err == nil) != c.want {
			t.Errorf("%s: present %v, want %v", filepath.Base(c.path), err == nil, c.want)
		}
	}
	if got, err := readFrom(db, f, "seg/u1/00000000"); err != nil || string(got) != "kept" {
		t.Errorf("the named file after Sweep: %q, %v", got, err)
	}
	if n, err := f.Sweep(); err != nil || n != 0 {
		t.Errorf("a second Sweep: %d, %v", n, err)
	}
}

// TestFileRefs: a reference parses only in the form Write makes; a value
// that is a segment, or a reference damaged (a name that could leave the
// directory, a size beyond any segment), does not.
func TestFileRefs(t *testing.T) {
	good := fileRef{crc: 7, size: 100, name: strings.Repeat("ab", 16) + fileSuffix}.encode()
	if r, ok := parseFileRef(good); !ok || r.size != 100 || r.crc != 7 {
		t.Fatalf("a good reference: %+v, %v", r, ok)
	}
	withName := func(name string) []byte {
		return append(slices.Clone(good[:len(good)-fileNameLen]), name...)
	}
	for name, v := range map[string][]byte{
		"a sealed segment":     SealSegment(bytes.Repeat([]byte{1}, fileRefLen-SegmentSeal)),
		"another tag":          append([]byte("fil2"), good[4:]...),
		"a name with a slash":  withName("../" + strings.Repeat("a", 29) + fileSuffix),
		"upper-case hex":       withName(strings.Repeat("AB", 16) + fileSuffix),
		"another suffix":       withName(strings.Repeat("ab", 16) + ".sst"),
		"a size below a seal":  fileRef{size: 3, name: strings.Repeat("ab", 16) + fileSuffix}.encode(),
		"a size beyond any":    fileRef{size: maxFileSegment + 1, name: strings.Repeat("ab", 16) + fileSuffix}.encode(),
		"one byte short":       good[:len(good)-1],
		"one byte more":        append(slices.Clone(good), 'x'),
		"empty":                nil,
		"just the tag":         []byte(fileRefTag),
		"a name of other case": withName(strings.Repeat("ab", 15) + "aB" + fileSuffix),
	} {
		if _, ok := parseFileRef(v); ok {
			t.Errorf("%s parsed as a reference", name)
		}
	}
}

// FuzzParseFileRef: any value parses as a reference only if it is exactly
// what encoding the parsed reference gives, with a name inside the
// directory.
func FuzzParseFileRef(f *testing.F) {
	f.Add(fileRef{crc: 1, size: 4 << 20, name: strings.Repeat("0f", 16) + fileSuffix}.encode())
	f.Add(SealSegment([]byte("payload")))
	f.Fuzz(func(t *testing.T, v []byte) {
		r, ok := parseFileRef(v)
		if !ok {
			return
		}
		if !bytes.Equal(r.encode(), v) {
			t.Fatalf("%q parsed as %+v, which encodes otherwise", v, r)
		}
		if filepath.Base(r.name) != r.name || strings.ContainsAny(r.name, `/\`) {
			t.Fatalf("name %q leaves the directory", r.name)
		}
	})
}

// TestFilesSweepKeepsRefsInValueLog: a reference Badger keeps in its value
// log (a database with a low value threshold), whose ValueSize is only
// approximate, still names its file: Sweep keeps it and a read finds it.
func TestFilesSweepKeepsRefsInValueLog(t *testing.T) {
	db, err := badger.Open(checkingOptions(t.TempDir()).WithValueThreshold(16))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := t.TempDir()
	f := NewFiles(dir, db)
	ref := putFile(t, db, f, "seg/u1/00000000", []byte("kept in a file"))
	if n, err := f.Sweep(); err != nil || n != 0 {
		t.Fatalf("Sweep: %d removed, %v", n, err)
	}
	if got, err := readFrom(db, f, "seg/u1/00000000"); err != nil || string(got) != "kept in a file" {
		t.Fatalf("read: %q, %v", got, err)
	}
	if _, err := os.Stat(fileOf(t, dir, ref)); err != nil {
		t.Fatal(err)
	}
}

// TestFilesNotARegularFile: an entry of a reference's name that is not a
// regular file (a directory) is damage where it is read, and Sweep steps
// over one no key names instead of failing the room's open.
func TestFilesNotARegularFile(t *testing.T) {
	db, f, dir := filesRoom(t)
	ref := putFile(t, db, f, "seg/u1/00000000", []byte("a part"))
	path := fileOf(t, dir, ref)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := readFrom(db, f, "seg/u1/00000000"); !errors.Is(err, ErrCorruptSegment) {
		t.Errorf("a directory read: %v, want ErrCorruptSegment", err)
	}
	unnamed := filepath.Join(dir, strings.Repeat("e", 32)+fileSuffix)
	if err := os.MkdirAll(filepath.Join(unnamed, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Sweep(); err != nil {
		t.Errorf("Sweep over a directory named like a segment file: %v", err)
	}
}
