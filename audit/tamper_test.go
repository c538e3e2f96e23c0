package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// buildLog makes a closed log of 50 entries with checkpoints at 10, 30 and
// 50 and returns its directory.
func buildLog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	l := openLog(t, dir, testOpts())
	for _, upto := range []int{10, 30, 50} {
		appendN(t, l, int(l.Size()), upto-int(l.Size()))
		if _, err := l.Checkpoint(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// editStore changes the Badger store directly, as an intruder with disk
// access would.
func editStore(t *testing.T, dir string, fn func(txn *badger.Txn) error) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func getKey(t *testing.T, txn *badger.Txn, k []byte) []byte {
	t.Helper()
	it, err := txn.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := it.ValueCopy(nil)
	return v
}

func exportDir(t *testing.T, dir string, from, to int64) ([]byte, error) {
	t.Helper()
	l, err := Open(context.Background(), dir, Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var buf bytes.Buffer
	err = l.Export(context.Background(), &buf, from, to, nil)
	return buf.Bytes(), err
}

func wantVerifyError(t *testing.T, bundle []byte, since []byte, index int64, reason string) {
	t.Helper()
	_, err := Verify(bytes.NewReader(bundle), testVerifier(t), since)
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("Verify = %v, want a VerifyError", err)
	}
	if ve.Index != index || !strings.Contains(ve.Error(), reason) {
		t.Fatalf("Verify = %q (index %d), want index %d and %q", ve, ve.Index, index, reason)
	}
}

func TestTamperStore(t *testing.T) {
	t.Run("byte flipped in an entry", func(t *testing.T) {
		dir := buildLog(t)
		editStore(t, dir, func(txn *badger.Txn) error {
			k := indexKey(prefixEntry, 17)
			v := getKey(t, txn, k)
			v = bytes.Replace(v, []byte("partner-2"), []byte("partner-0"), 1)
			return txn.Set(k, v)
		})
		b, err := exportDir(t, dir, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		wantVerifyError(t, b, nil, 17, "does not match the leaf hash")
	})
	t.Run("entry deleted", func(t *testing.T) {
		dir := buildLog(t)
		editStore(t, dir, func(txn *badger.Txn) error { return txn.Delete(indexKey(prefixEntry, 17)) })
		if _, err := exportDir(t, dir, 0, 0); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "entry 17 is missing") {
			t.Fatalf("Export = %v", err)
		}
	})
	t.Run("pair reordered", func(t *testing.T) {
		dir := buildLog(t)
		editStore(t, dir, func(txn *badger.Txn) error {
			a, b := getKey(t, txn, indexKey(prefixEntry, 17)), getKey(t, txn, indexKey(prefixEntry, 18))
			if err := txn.Set(indexKey(prefixEntry, 17), b); err != nil {
				return err
			}
			return txn.Set(indexKey(prefixEntry, 18), a)
		})
		b, err := exportDir(t, dir, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		wantVerifyError(t, b, nil, 17, "does not match the leaf hash")
	})
	t.Run("hash on the right edge deleted", func(t *testing.T) {
		// The next append would not need it, but the tree does: the log
		// refuses to grow on it.
		dir := buildLog(t)
		editStore(t, dir, func(txn *badger.Txn) error { return txn.Delete(indexKey(prefixHash, tlog.StoredHashIndex(0, 49))) })
		if _, err := Open(context.Background(), dir, testOpts()); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open = %v, want ErrCorrupt", err)
		}
	})
	t.Run("log truncated", func(t *testing.T) {
		dir := buildLog(t)
		editStore(t, dir, func(txn *badger.Txn) error {
			for i := int64(40); i < 50; i++ {
				txn.Delete(indexKey(prefixEntry, i))
			}
			return txn.Set(keySize, indexKey("", 40))
		})
		if _, err := Open(context.Background(), dir, testOpts()); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open on a truncated log = %v, want ErrCorrupt", err)
		}
		if _, err := exportDir(t, dir, 0, 0); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Export of a truncated log = %v", err)
		}
	})
	for _, keepOld := range []bool{false, true} {
		name := "rolled back and re-signed, old checkpoints removed"
		if keepOld {
			name = "rolled back and re-signed, old checkpoints kept"
		}
		t.Run(name, func(t *testing.T) {
			// The auditor saved the checkpoint of size 30. Someone holding
			// the room's key cuts the log back to 20 entries, appends 15
			// others and signs a newer, larger checkpoint.
			dir := buildLog(t)
			var saved []byte
			editStore(t, dir, func(txn *badger.Txn) error {
				saved = getKey(t, txn, indexKey(prefixCkpt, 30))
				for i := int64(20); i < 50; i++ {
					txn.Delete(indexKey(prefixEntry, i))
				}
				for i := tlog.StoredHashIndex(0, 20); i < tlog.StoredHashCount(50); i++ {
					txn.Delete(indexKey(prefixHash, i))
				}
				txn.Delete(indexKey(prefixCkpt, 50))
				if !keepOld {
					txn.Delete(indexKey(prefixCkpt, 30))
				}
				txn.Set(keyLastCkpt, indexKey("", 10))
				return txn.Set(keySize, indexKey("", 20))
			})
			l := openLog(t, dir, testOpts())
			appendN(t, l, 1000, 15)
			var buf bytes.Buffer
			err := l.Export(context.Background(), &buf, 0, 0, nil)
			if keepOld {
				// The kept checkpoint of size 30 is inconsistent with the
				// new tree: the bundle fails on its own.
				if err == nil {
					_, err = Verify(bytes.NewReader(buf.Bytes()), testVerifier(t), nil)
				}
				if err == nil {
					t.Fatal("a log rewritten under a kept checkpoint verified")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(bytes.NewReader(buf.Bytes()), testVerifier(t), nil); err != nil {
				t.Fatalf("without the saved checkpoint the rewrite is undetectable, so this should pass: %v", err)
			}
			// The full bundle's entries give the tree of size 30 again,
			// which is not the reader's.
			wantVerifyError(t, buf.Bytes(), saved, -1, "do not hash to your checkpoint of size 30: the log was rewritten")
			// A bundle of the entries after 30 cannot recompute it; named
			// the reader's checkpoint, the room can only send it back with
			// a proof from the tree it has, which fails.
			var tail bytes.Buffer
			if err := l.Export(context.Background(), &tail, 31, 0, nil); err != nil {
				t.Fatal(err)
			}
			wantVerifyError(t, tail.Bytes(), saved, -1, "no consistency proof from your checkpoint of size 30")
			reader, err := l.ReaderCheckpoint(saved)
			if err != nil {
				t.Fatal(err)
			}
			tail.Reset()
			if err := l.Export(context.Background(), &tail, 31, 0, reader); err != nil {
				t.Fatal(err)
			}
			wantVerifyError(t, tail.Bytes(), saved, -1, "size 30 is not a prefix of size")
		})
	}
}

func TestTamperBundle(t *testing.T) {
	dir := buildLog(t)
	good, err := exportDir(t, dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(bytes.NewReader(good), testVerifier(t), nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(good), "\n"), "\n")
	header, entries, end := lines[0], lines[1:len(lines)-1], lines[len(lines)-1]
	join := func(h string, es []string, end string) []byte {
		return []byte(strings.Join(append(append([]string{h}, es...), end), "\n") + "\n")
	}
	edit := func(f func(es []string) []string) []byte {
		return join(header, f(append([]string(nil), entries...)), end)
	}

	t.Run("entry edited", func(t *testing.T) {
		b := edit(func(es []string) []string {
			es[17] = editRequestID(es[17])
			return es
		})
		wantVerifyError(t, b, nil, 17, "does not match the leaf hash")
	})
	t.Run("entry edited and its leaf hash recomputed", func(t *testing.T) {
		b := edit(func(es []string) []string {
			fields := strings.SplitN(es[17], " ", 3)
			fields[2] = editRequestID(fields[2])
			leaf := tlog.RecordHash([]byte(fields[2]))
			fields[1] = base64.StdEncoding.EncodeToString(leaf[:])
			es[17] = strings.Join(fields, " ")
			return es
		})
		_, err := Verify(bytes.NewReader(b), testVerifier(t), nil)
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Range != [2]int64{10, 30} {
			t.Fatalf("Verify = %v; want entries 10..29 blamed", err)
		}
	})
	t.Run("entry deleted", func(t *testing.T) {
		b := edit(func(es []string) []string { return append(es[:17], es[18:]...) })
		wantVerifyError(t, b, nil, 17, "missing or out of order")
	})
	t.Run("pair reordered", func(t *testing.T) {
		b := edit(func(es []string) []string { es[17], es[18] = es[18], es[17]; return es })
		wantVerifyError(t, b, nil, 17, "missing or out of order")
	})
	t.Run("truncated", func(t *testing.T) {
		wantVerifyError(t, []byte(strings.Join(append([]string{header}, entries[:45]...), "\n")+"\n"), nil, 45, "truncated")
	})
	t.Run("end count changed", func(t *testing.T) {
		wantVerifyError(t, join(header, entries[:49], "end 49"), nil, -1, "end line says")
	})
	t.Run("not a canonical entry", func(t *testing.T) {
		b := edit(func(es []string) []string {
			fields := strings.SplitN(es[3], " ", 3)
			fields[2] = strings.Replace(fields[2], `,"time":`, `, "time":`, 1)
			leaf := tlog.RecordHash([]byte(fields[2]))
			fields[1] = base64.StdEncoding.EncodeToString(leaf[:])
			es[3] = strings.Join(fields, " ")
			return es
		})
		wantVerifyError(t, b, nil, 3, "canonical")
	})
	t.Run("history proof altered", func(t *testing.T) {
		h := strings.Replace(header, `"proof":["`, `"proof":["AAAA`, 1)
		if h == header {
			t.Fatal("no proof to alter")
		}
		_, err := Verify(bytes.NewReader(join(h, entries, end)), testVerifier(t), nil)
		if err == nil {
			t.Fatal("altered consistency proof accepted")
		}
	})
	t.Run("left hash altered", func(t *testing.T) {
		part, err := exportDir(t, dir, 20, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(bytes.NewReader(part), testVerifier(t), nil); err != nil {
			t.Fatal(err)
		}
		ls := strings.SplitN(string(part), "\n", 2)
		i := strings.Index(ls[0], `"left":[{"index":`)
		j := strings.Index(ls[0][i:], `"hash":"`) + i + len(`"hash":"`)
		h := ls[0][:j] + flipB64(ls[0][j:j+4]) + ls[0][j+4:]
		if _, err := Verify(strings.NewReader(h+"\n"+ls[1]), testVerifier(t), nil); err == nil {
			t.Fatal("altered left hash accepted")
		}
	})
}

func flipB64(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// editRequestID changes the request id of the entry line l.
func editRequestID(l string) string {
	return regexp.MustCompile(`"request_id":"[0-9a-f]+"`).ReplaceAllString(l, `"request_id":"00000000000000000000000000000000"`)
}
