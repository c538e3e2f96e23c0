package audit

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// A commit whose outcome the store leaves unknown stops the log: no index is
// handed out twice, no receipt is given for an entry the log cannot vouch for,
// and reopening reads whatever the store kept, consistent and verifiable.
// A commit the store refuses before writing leaves the log running.
func TestCommitOfUnknownOutcomeStopsLog(t *testing.T) {
	ioErr := errors.New("fsync: input/output error")
	for _, tc := range []struct {
		name   string
		commit func(txn *badger.Txn) error
		stops  bool
		landed bool // the failed batch is in the store after reopening
	}{
		// Badger applies a batch to its memtable and write-ahead log, then
		// syncs: a failed sync returns an error for a batch that is there.
		{"applied then failed", func(txn *badger.Txn) error {
			if err := txn.Commit(); err != nil {
				return err
			}
			return ioErr
		}, true, true},
		{"failed before applying", func(*badger.Txn) error { return ioErr }, true, false},
		{"refused before writing", func(*badger.Txn) error { return badger.ErrBlockedWrites }, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			l := openLog(t, dir, testOpts())
			appendN(t, l, 0, 5)

			// Concurrent appenders meet the failure: the first batch commits
			// through the failing store, later batches were queued behind it.
			var first atomic.Bool
			l.commitStore = func(txn *badger.Txn) error {
				if first.CompareAndSwap(false, true) {
					return tc.commit(txn)
				}
				return txn.Commit()
			}
			const appenders = 16
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				receipts []Receipt
				failures int
			)
			for i := range appenders {
				wg.Go(func() {
					r, err := l.Append(ctx, entry(5+i))
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						receipts = append(receipts, r)
					case tc.stops && !errors.Is(err, ErrStopped):
						t.Errorf("append %d: %v, want ErrStopped", i, err)
						failures++
					default:
						failures++
					}
				})
			}
			wg.Wait()
			if failures == 0 {
				t.Fatal("no append met the failing commit")
			}
			if tc.stops {
				if len(receipts) != 0 {
					t.Fatalf("%d receipts after the log stopped: %+v", len(receipts), receipts)
				}
				if !errors.Is(l.Err(), ErrStopped) || l.Size() != 5 {
					t.Fatalf("Err = %v, Size = %d; want ErrStopped at 5", l.Err(), l.Size())
				}
				l.commitStore = nil
				ran := false
				if _, err := l.AppendTx(ctx, entry(100), func(*badger.Txn) error { ran = true; return nil }); !errors.Is(err, ErrStopped) || ran {
					t.Fatalf("AppendTx on a stopped log = %v (fn ran: %v)", err, ran)
				}
			} else {
				if l.Err() != nil {
					t.Fatalf("Err = %v after a commit refused before writing", l.Err())
				}
				if got := l.Size(); got != int64(5+len(receipts)) {
					t.Fatalf("Size = %d with %d receipts", got, len(receipts))
				}
			}
			for _, r := range receipts {
				if r.Index < 5 || r.Index >= l.Size() {
					t.Fatalf("receipt %+v outside the log of %d", r, l.Size())
				}
			}
			sizeBefore := l.Size()
			if err := l.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			l2 := openLog(t, dir, testOpts())
			size := l2.Size()
			switch {
			case tc.landed && size <= sizeBefore:
				t.Fatalf("reopened at %d: the applied batch is not there", size)
			case !tc.landed && size != sizeBefore:
				t.Fatalf("reopened at %d, want %d", size, sizeBefore)
			}
			var buf bytes.Buffer
			if err := l2.Export(ctx, &buf, 0, 0, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(&buf, testVerifier(t), nil); err != nil {
				t.Fatalf("reopened log does not verify: %v", err)
			}
			if r, err := l2.Append(ctx, entry(200)); err != nil || r.Index != size {
				t.Fatalf("append after reopening = %+v, %v; want index %d", r, err, size)
			}
		})
	}
}
