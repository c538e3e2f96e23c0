package audit

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestFnSeesItsCallersWrites: a caller that commits a write and then
// appends with a fn reading it must find it, whichever batch the append
// joins. A batch's transaction opened at its first request would read
// from before a later request's own write, and the fn would not find it.
// With appends without a fn mixed in, batches often begin with requests
// the writer stages as they come, in a transaction opened at the first.
func TestFnSeesItsCallersWrites(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plain int // of every this many appenders, one appends without a fn
	}{
		{"every append with a fn", 0},
		{"appends without a fn mixed in", 2},
	} {
		t.Run(tc.name, func(t *testing.T) { testFnSeesItsCallersWrites(t, tc.plain) })
	}
}

func testFnSeesItsCallersWrites(t *testing.T, plain int) {
	l := openLog(t, t.TempDir(), testOpts())
	ctx := context.Background()
	const appenders, rounds = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, appenders*rounds)
	withFn := 0
	for a := range appenders {
		if plain > 0 && a%plain == 0 {
			wg.Go(func() {
				for i := range rounds {
					if _, err := l.Append(ctx, entry(a*rounds+i)); err != nil {
						errs <- fmt.Errorf("appender %d round %d: %w", a, i, err)
					}
				}
			})
			continue
		}
		withFn += rounds
		wg.Go(func() {
			for i := range rounds {
				key := fmt.Appendf(nil, "caller/%d/%d", a, i)
				if err := l.db.Update(func(txn *badger.Txn) error { return txn.Set(key, []byte("v")) }); err != nil {
					errs <- err
					return
				}
				_, err := l.AppendTx(ctx, entry(a*rounds+i), func(txn *badger.Txn) error {
					_, err := txn.Get(key)
					return err
				})
				if err != nil {
					errs <- fmt.Errorf("appender %d round %d: %w", a, i, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 3 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d fns did not see their caller's write", n, withFn)
	}
	if got := l.Size(); got != appenders*rounds {
		t.Errorf("log holds %d entries, want %d", got, appenders*rounds)
	}
	// The batches staged as they came and those staged again once
	// gathered make one tree: its export verifies against a checkpoint.
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := l.Export(ctx, &buf, 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(bytes.NewReader(buf.Bytes()), testVerifier(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != appenders*rounds {
		t.Errorf("export verified %d entries, want %d", rep.Entries, appenders*rounds)
	}
}
