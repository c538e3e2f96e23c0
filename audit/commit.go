package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// The group commit. Appends from any number of goroutines are written by
// one goroutine, the writer, in batches: one Badger transaction, and one
// synced commit, per batch. An append is answered once its batch's commit
// has returned, so a receipt always names a durable entry.
//
// What an entry costs the batch: its canonical bytes and its leaf hash (the
// appender computed both), the node hashes it completes (computed from the
// frontier, with nothing read back from the store), and four keys on
// average: the entry, its scope index key, and its stored hashes (one, plus
// one per level it completes). What a batch costs: the synced commit, whose
// fixed part (two fsyncs: Badger's value log and write-ahead log) is shared
// by every entry of the batch.

// maxBatch bounds one group commit: enough to amortize a synced commit over
// every appender that is waiting, far below Badger's transaction size limit.
const maxBatch = 512

// The writer waits for a batch to fill for a quarter of what a commit has
// been taking, so that waiting for an appender that is about to come back
// costs less than the commit it saves it, within these bounds.
const (
	minWindow = 100 * time.Microsecond
	maxWindow = 2 * time.Millisecond
)

// window is how long the writer waits for a batch to fill, given the mean
// duration of recent commits.
func window(commit time.Duration) time.Duration {
	return min(max(commit/4, minWindow), maxWindow)
}

// writer is the single goroutine that commits appends, from f, the
// frontier of the committed log. Taking only what is queued makes batches
// alternate (1 while 7 wait, then 7 while 1 waits); instead it waits, at
// most a window, for as many appends as the previous batch held and those
// queued during its commit: steady appenders then share every commit, and a
// lone appender (previous batch of one) never waits. An appender that has
// gone costs one window once: the batch that waited for it sets the next
// target without it.
func (l *Log) writer(f frontier) {
	defer l.wg.Done()
	b := &batch{reqs: make([]*appendReq, 0, maxBatch), results: make([]appendRes, 0, maxBatch)}
	target := 1
	var cost time.Duration // mean duration of a commit, recent ones weighing most
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for req := range l.reqs {
		b.reset(f)
		open := true
		if target > 1 {
			timer.Reset(window(cost))
		}
		b.add(req)
		if len(b.reqs) < target {
		wait:
			for len(b.reqs) < target {
				select {
				case r, ok := <-l.reqs:
					if !ok {
						open = false
						break wait
					}
					b.add(r)
				case <-timer.C:
					break wait
				}
			}
		}
		timer.Stop() // no stale fire is received after Stop (Go 1.23 timers)
	fill:
		for open && len(b.reqs) < maxBatch {
			select {
			case r, ok := <-l.reqs:
				if !ok {
					break fill
				}
				b.add(r)
			default:
				break fill
			}
		}
		began := time.Now()
		l.stageAll(b)
		f = l.commit(b)
		cost += (time.Since(began) - cost) / 8
		// Those in this batch come back once acknowledged; those queued
		// during the commit are waiting already: the next batch should hold
		// both.
		target = min(len(b.reqs)+len(l.reqs), maxBatch)
	}
}

// batch is a group commit being gathered, then staged in one transaction
// and committed.
type batch struct {
	from    frontier    // of the committed log
	f       frontier    // of the log with the staged entries
	txn     *badger.Txn // nil until the batch is staged
	reqs    []*appendReq
	results []appendRes // a refused request's holds its fn's error
	err     error       // the store failed: the batch fails as a whole
}

func (b *batch) reset(f frontier) {
	*b = batch{from: f, f: f, reqs: b.reqs[:0], results: b.results[:0]}
}

// add gathers req in b.
func (b *batch) add(req *appendReq) {
	b.reqs = append(b.reqs, req)
	b.results = append(b.results, appendRes{})
}

// stageAll runs the batch's requests, in order, in one transaction opened
// once the batch is gathered: a fn must see every write its caller made
// before it appended (a transaction opened at the batch's first request
// would read from before a later request's own writes), leaving out the
// requests whose fn fails.
//
// A fn that fails may have written to the transaction before it failed, and
// Badger cannot undo part of a transaction. So the transaction is discarded
// and the batch staged again, from the committed log, without the failed
// request, on a fresh one: the requests before it run again on the same
// state as before. A batch with k failures runs its fns at most k+1 times
// each: in-memory work, while the synced commit, which is what a batch
// shares, is made once.
func (l *Log) stageAll(b *batch) {
	for {
		b.txn = l.db.NewTransaction(true)
		b.f = b.from
		failed, err := l.stage(b.txn, b.reqs, b.results, &b.f)
		if err != nil {
			b.err = err
			return
		}
		if !failed {
			return
		}
		b.txn.Discard()
		b.txn = nil
	}
}

// maxStagings bounds how often a batch is staged and committed when each
// commit conflicts with writes outside the log.
const maxStagings = 4

// commit commits the batch's staged entries, if any, in one transaction,
// answers every request, and returns the frontier of the log after it.
func (l *Log) commit(b *batch) frontier {
	err := b.err
	if stopped := l.Err(); stopped != nil {
		err = stopped // queued before the log stopped: nothing is staged on top of an unknown state
	} else if err == nil && b.f.size > b.from.size {
		err = l.commitTxn(b.txn, b.f.size)
		// A write outside the log (a deletion's batch) changed a key a fn
		// read after the transaction began: Badger refused the batch before
		// writing it. Staged again on what is committed now, each fn sees
		// that write (and may refuse its request), rather than every request
		// of the batch failing for one of them.
		for tries := 1; errors.Is(err, badger.ErrConflict) && tries < maxStagings; tries++ {
			b.txn.Discard()
			if l.stageAll(b); b.err != nil {
				err = b.err
				break
			}
			err = nil
			if b.f.size > b.from.size {
				err = l.commitTxn(b.txn, b.f.size)
			}
		}
	}
	if b.txn != nil {
		b.txn.Discard()
	}
	if err != nil {
		if !errors.Is(err, ErrStopped) {
			err = fmt.Errorf("audit: append failed, nothing written: %w", err)
		}
		l.log.Error("audit append failed", "entries", len(b.reqs), "err", err)
		for _, req := range b.reqs {
			req.done <- appendRes{err: err}
		}
		return b.from
	}
	n := b.f.size
	if n > b.from.size {
		l.size.Store(n)
		l.commits.Add(1)
	}
	for i, req := range b.reqs {
		if b.results[i].err == nil {
			b.results[i].r.TreeSize = n
		}
		req.done <- b.results[i]
	}
	if every := l.opts.CheckpointEvery; every > 0 && n-l.lastCkpt.Load() >= every && n > b.from.size {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	return b.f
}

// stage runs requests in txn, after the log f describes and moving f past
// each entry, skipping those refused already, until one's fn fails: then it
// records that error in results and returns failed, and txn holds what the
// failed fn may have written.
func (l *Log) stage(txn *badger.Txn, reqs []*appendReq, results []appendRes, f *frontier) (failed bool, err error) {
	for i, req := range reqs {
		if results[i].err != nil {
			continue
		}
		n := f.size
		leaf := req.leaf
		if req.fn != nil {
			if err := req.fn(txn, n, leaf); err != nil {
				results[i] = appendRes{err: err}
				return true, nil
			}
		}
		hashes, err := f.append(leaf)
		if err != nil {
			return false, err
		}
		if err := writeEntry(txn, n, hashes, req); err != nil {
			return false, err
		}
		results[i].r = Receipt{Index: n, LeafHash: leaf}
	}
	return false, nil
}

// writeEntry writes entry n, its scope index key and the Merkle hashes it
// adds to the tree.
func writeEntry(txn *badger.Txn, n int64, hashes []tlog.Hash, req *appendReq) error {
	if err := txn.Set(indexKey(prefixEntry, n), req.entry); err != nil {
		return err
	}
	if err := txn.Set(binary.BigEndian.AppendUint64(req.scope, uint64(n)), nil); err != nil {
		return err
	}
	// One allocation holds the keys and values of the entry's hashes:
	// Badger keeps them, unchanged, until the transaction ends.
	buf := make([]byte, 0, len(hashes)*(len(prefixHash)+8+tlog.HashSize))
	base := tlog.StoredHashIndex(0, n)
	for j, h := range hashes {
		k := len(buf)
		buf = binary.BigEndian.AppendUint64(append(buf, prefixHash...), uint64(base+int64(j)))
		v := len(buf)
		buf = append(buf, h[:]...)
		if err := txn.Set(buf[k:v:v], buf[v:len(buf):len(buf)]); err != nil {
			return err
		}
	}
	return nil
}

// commitTxn records the new size (of the log, and of its scope index) and
// commits txn. An error before the commit means nothing was written; an error
// from the commit itself leaves the outcome unknown (see ErrStopped), so the
// log stops and the error says so.
func (l *Log) commitTxn(txn *badger.Txn, n int64) error {
	if err := txn.Set(keySize, binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
		return err
	}
	if err := txn.Set(keyIndexed, binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
		return err
	}
	if l.beforeCommit != nil {
		if err := l.beforeCommit(); err != nil {
			return err
		}
	}
	commit := (*badger.Txn).Commit
	if l.commitStore != nil {
		commit = l.commitStore
	}
	if err := commit(txn); err != nil && !refusedUnwritten(err) {
		stopped := fmt.Errorf("audit: append failed, %d entries may or may not have been written: %w", n-l.size.Load(), errors.Join(ErrStopped, err))
		l.stopped.Store(&stopped)
		return stopped
	} else if err != nil {
		return err
	}
	return nil
}

// refusedUnwritten reports whether err is one Badger returns from a commit
// before it writes anything (txn.Commit's precheck and its send to the write
// channel): the batch is known not to be in the store.
func refusedUnwritten(err error) bool {
	return errors.Is(err, badger.ErrConflict) || errors.Is(err, badger.ErrTxnTooBig) || errors.Is(err, badger.ErrBlockedWrites)
}

// Err reports why the log stopped taking appends (ErrStopped), or nil while
// it takes them. A room reports it as unhealthy: it can record nothing more
// until it is restarted.
func (l *Log) Err() error {
	if err := l.stopped.Load(); err != nil {
		return *err
	}
	return nil
}
