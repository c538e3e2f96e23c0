package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// TestAppendTxFailedFnLeavesNoTrace: in one batch, fns that write a key
// and then fail are mixed with fns that succeed. The failed ones leave no
// key, later fns never see their writes, the others commit with dense
// indexes and their state bound to their entry, and the tree verifies.
func TestAppendTxFailedFnLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir(), testOpts())

	// Hold the writer in the commit of a first entry until every appender
	// below is queued, so that they all land in the next batch.
	held, release := make(chan struct{}), make(chan struct{})
	l.beforeCommit = func() error { close(held); <-release; return nil }
	first := make(chan error, 1)
	go func() { _, err := l.Append(ctx, entry(0)); first <- err }()
	<-held

	const appenders = 24
	refused := errors.New("refused after writing")
	type outcome struct {
		r   Receipt
		err error
	}
	out := make([]outcome, appenders)
	var wg sync.WaitGroup
	for w := range appenders {
		bad := w%3 == 1
		wg.Go(func() {
			r, err := l.AppendTxAt(ctx, entry(w+1), func(txn *badger.Txn, index int64, _ tlog.Hash) error {
				// A fn never sees what a failed fn wrote.
				it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("test/bad/")})
				defer it.Close()
				if it.Rewind(); it.Valid() {
					return fmt.Errorf("saw %q, written by a failed fn", it.Item().Key())
				}
				if bad {
					if err := txn.Set(fmt.Appendf(nil, "test/bad/%d", w), []byte("x")); err != nil {
						return err
					}
					return refused
				}
				return txn.Set(fmt.Appendf(nil, "test/ok/%d", w), binary.BigEndian.AppendUint64(nil, uint64(index)))
			})
			out[w] = outcome{r, err}
		})
	}
	waitQueued(t, l, appenders)
	l.beforeCommit = nil
	close(release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}

	seen := map[int64]bool{0: true}
	for w, o := range out {
		switch {
		case w%3 == 1:
			if !errors.Is(o.err, refused) || o.r != (Receipt{}) {
				t.Errorf("failing fn %d: %+v, %v", w, o.r, o.err)
			}
		case o.err != nil:
			t.Errorf("appender %d: %v", w, o.err)
		case seen[o.r.Index]:
			t.Errorf("index %d handed out twice", o.r.Index)
		default:
			seen[o.r.Index] = true
			checkBound(t, l, w, o.r)
		}
	}
	want := int64(1 + appenders - appenders/3)
	if l.Size() != want || int64(len(seen)) != want {
		t.Fatalf("size %d, %d distinct receipts; want %d", l.Size(), len(seen), want)
	}
	if l.Commits() != 2 {
		t.Fatalf("%d commits; the appenders were to share one batch", l.Commits())
	}
	l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("test/bad/")})
		defer it.Close()
		if it.Rewind(); it.Valid() {
			t.Errorf("a failed fn's write was committed: %q", it.Item().Key())
		}
		return nil
	})
	var buf bytes.Buffer
	if err := l.Export(ctx, &buf, 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(&buf, testVerifier(t), nil); err != nil || rep.Entries != want {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

// waitQueued waits until n appends are queued for the writer.
func waitQueued(t *testing.T, l *Log, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(l.reqs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d appends queued", len(l.reqs), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkBound checks that appender w's state was written with its entry,
// and holds the index its receipt names.
func checkBound(t *testing.T, l *Log, w int, r Receipt) {
	t.Helper()
	err := l.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(fmt.Appendf(nil, "test/ok/%d", w))
		if err != nil {
			return err
		}
		v, err := it.ValueCopy(nil)
		if err != nil {
			return err
		}
		if got := int64(binary.BigEndian.Uint64(v)); got != r.Index {
			return fmt.Errorf("state bound to index %d, receipt says %d", got, r.Index)
		}
		b, err := l.Entry(context.Background(), r.Index)
		if err != nil {
			return err
		}
		if tlog.RecordHash(b) != r.LeafHash {
			return errors.New("receipt's leaf hash is not the stored entry's")
		}
		return nil
	})
	if err != nil {
		t.Errorf("appender %d: %v", w, err)
	}
}

// TestAppendTxSeesEarlierEntries: concurrent fns that read a counter and
// write it back plus one, as a budget debit does, each see the writes of
// every entry appended before theirs, in their batch and in earlier ones:
// the counter a fn reads is its entry's index. Some fns fail after
// writing, and leave nothing.
func TestAppendTxSeesEarlierEntries(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir(), testOpts())
	key := []byte("test/counter")
	refused := errors.New("refused after writing")
	const appenders, each = 16, 40
	var wg sync.WaitGroup
	var failures atomic.Int64
	for w := range appenders {
		wg.Go(func() {
			for i := range each {
				bad := (w*each+i)%7 == 3
				_, err := l.AppendTxAt(ctx, entry(w*each+i), func(txn *badger.Txn, index int64, _ tlog.Hash) error {
					var n int64
					it, err := txn.Get(key)
					switch {
					case errors.Is(err, badger.ErrKeyNotFound):
					case err != nil:
						return err
					default:
						v, err := it.ValueCopy(nil)
						if err != nil {
							return err
						}
						n = int64(binary.BigEndian.Uint64(v))
					}
					if err := txn.Set(key, binary.BigEndian.AppendUint64(nil, uint64(n+1))); err != nil {
						return err
					}
					if bad {
						return refused
					}
					if n != index {
						return fmt.Errorf("fn of entry %d read counter %d", index, n)
					}
					return nil
				})
				switch {
				case bad && errors.Is(err, refused):
					failures.Add(1)
				case err != nil:
					t.Errorf("appender %d, append %d: %v", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := int64(appenders*each) - failures.Load()
	if l.Size() != want {
		t.Fatalf("size %d, want %d", l.Size(), want)
	}
	err := l.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(key)
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error {
			if n := int64(binary.BigEndian.Uint64(v)); n != want {
				return fmt.Errorf("counter %d, want %d", n, want)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := l.Export(ctx, &buf, 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(&buf, testVerifier(t), nil); err != nil || rep.Entries != want {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}
