package audit

import (
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
func TestFnSeesItsCallersWrites(t *testing.T) {
	l := openLog(t, t.TempDir(), testOpts())
	ctx := context.Background()
	const appenders, rounds = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, appenders*rounds)
	for a := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
		}()
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
		t.Errorf("%d of %d fns did not see their caller's write", n, appenders*rounds)
	}
}
