package audit

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestCommitConflictStagesAgain: a write outside the log to a key an
// append's fn read, landing between the staging and the commit, makes
// Badger refuse the batch before writing it. The batch is staged again on
// what is committed now: the fn sees the new value, and the append
// succeeds, rather than every request in the batch failing. A writer that
// conflicts with every staging makes the append fail after maxStagings,
// with nothing written and the log running.
func TestCommitConflictStagesAgain(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir(), testOpts())
	appendN(t, l, 0, 3)
	key := []byte("ext/key")
	set := func(v string) {
		if err := l.db.Update(func(txn *badger.Txn) error { return txn.Set(key, []byte(v)) }); err != nil {
			t.Fatal(err)
		}
	}
	set("old")
	var seen []string
	read := func(txn *badger.Txn) error {
		it, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, err := it.ValueCopy(nil)
		seen = append(seen, string(v))
		return err
	}

	writes := 0
	l.commitStore = func(txn *badger.Txn) error {
		if writes == 0 {
			writes++
			set("new")
		}
		return txn.Commit()
	}
	if _, err := l.AppendTx(ctx, entry(3), read); err != nil {
		t.Fatalf("an append whose first commit conflicted: %v", err)
	}
	if len(seen) != 2 || seen[1] != "new" || l.Size() != 4 || l.Err() != nil {
		t.Fatalf("the fn saw %q; size %d, Err %v", seen, l.Size(), l.Err())
	}

	seen, writes = nil, 0
	l.commitStore = func(txn *badger.Txn) error {
		writes++
		set(string(rune('a' + writes)))
		return txn.Commit()
	}
	_, err := l.AppendTx(ctx, entry(4), read)
	if !errors.Is(err, badger.ErrConflict) || writes != maxStagings || len(seen) != maxStagings {
		t.Fatalf("an append conflicting at every commit = %v after %d commits and %d stagings", err, writes, len(seen))
	}
	if l.Size() != 4 || l.Err() != nil {
		t.Fatalf("size %d, Err %v after the refused batch", l.Size(), l.Err())
	}
	l.commitStore = nil
	if r, err := l.Append(ctx, entry(5)); err != nil || r.Index != 4 {
		t.Fatalf("the next append = %+v, %v", r, err)
	}
	var buf bytes.Buffer
	if err := l.Export(ctx, &buf, 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(&buf, testVerifier(t), nil); err != nil {
		t.Fatalf("the log does not verify: %v", err)
	}
}
