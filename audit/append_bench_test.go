package audit

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkAppendConcurrent: n goroutines append as fast as they can, each
// waiting for its own durable receipt (SyncWrites on, Badger on disk).
//
// With few appenders the disk bounds the log: every group commit pays one
// synced Badger commit, and an appender waits for it before it appends
// again, so n appenders can append at most n per commit, n ÷ (commit time)
// per second. The run measures that commit time on the same filesystem,
// between its rounds of appends, with a store of its own (a one-key
// transaction: the least a durable append can cost), and reports it
// (sync-µs), the bound (bound-entries/s) and the share of it the log
// reached (of-bound). fdatasync-µs is an fdatasync of one page of a file
// next to it, for scale: a synced Badger commit syncs two files, its value
// log and its write-ahead log.
//
// A commit's sync also grows with what it writes: Badger's write-ahead log
// is a sparse file, and a commit that reaches pages not yet written makes
// the file system allocate blocks, so its sync commits the file system's
// journal too. A batch of 8 entries writes about 5 KB, a page or two,
// where the one-key commit writes a page every hundred or so. So the run
// also times, alternating with the one-key commit, a one-key commit whose
// value is as large as the log's mean batch (the keys and values of its
// entries: batch-sync-µs), and reports the share of the bound that sets
// (of-batch-bound): what a log that did nothing but that commit, one after
// another, would reach. It does so with few appenders only (batchProbe):
// with many, the disk does not bound the log, and commits of a batch's
// bytes (100 KB and more) would fill the probe's memtable and have it
// flushed in the background while the log appends, on the same CPUs.
//
// With many appenders a commit carries hundreds of entries and what bounds
// the log is what the store does per entry: Badger writes its four keys
// (the entry, its scope index key, two stored hashes on average) into a
// memory-mapped write-ahead log and msyncs the pages they dirtied.
// BenchmarkAppendStore measures that rate alone.
//
// cpu-µs/entry is the process's CPU time (user and system, every
// goroutine, Badger's included) per entry while appending: what an entry
// costs whatever the machine's load, so GOMAXPROCS ÷ cpu-µs/entry bounds
// the rate on a machine that is the log's alone. runq-µs/entry is how long
// the process's threads were ready to run but waiting for a CPU other work
// held, per entry (Linux; 0 elsewhere): on a shared machine, the part of
// the rate the log did not get to spend.
func BenchmarkAppendConcurrent(b *testing.B) {
	for _, n := range []int{8, 256} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchAppendConcurrent(b, n) })
	}
}

// batchProbe is the most appenders for which BenchmarkAppendConcurrent
// times a commit of a batch's bytes.
const batchProbe = 32

func benchAppendConcurrent(b *testing.B, appenders int) {
	l := openLog(b, filepath.Join(b.TempDir(), "log"), testOpts())
	// The log's own synced commits are timed too: set before the first
	// append, read by the writer only after an append reaches it.
	var committing time.Duration
	l.commitStore = func(txn *badger.Txn) error {
		start := time.Now()
		err := txn.Commit()
		committing += time.Since(start)
		return err
	}
	p := newSyncProbe(b, b.TempDir())
	e := entry(1)
	// The disk's speed drifts during a run (other work on the machine, the
	// device's own state, the stores' background writes), so the run
	// alternates rounds of appends with probes that last as long as the
	// round before them: the bound is measured under the same conditions,
	// for as long, as the log.
	const rounds = 16
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	var appending, cpu, runq time.Duration
	batchBytes := 0 // no batch-sized probe
	if appenders <= batchProbe {
		batchBytes = appenders * entryBytes(b, e)
	}
	p.run(b, 0, batchBytes)
	done := 0
	for r := range rounds {
		n := b.N * (r + 1) / rounds
		c, q := cpuTime(), runqWait()
		b.StartTimer()
		start := time.Now()
		appendConcurrently(b, l, e, n-done, appenders)
		took := time.Since(start)
		b.StopTimer()
		cpu += cpuTime() - c
		runq += runqWait() - q
		appending += took
		if c := l.Commits(); c > 0 && batchBytes > 0 {
			batchBytes = int(l.Size()) * entryBytes(b, e) / int(c)
		}
		p.run(b, took, batchBytes)
		done = n
	}
	rate := float64(b.N) / appending.Seconds()
	sync := p.commit / time.Duration(p.commits)
	bound := float64(appenders) / sync.Seconds()
	b.ReportMetric(rate, "entries/s")
	b.ReportMetric(float64(l.Size())/float64(l.Commits()), "entries/commit")
	b.ReportMetric(float64(sync.Nanoseconds())/1e3, "sync-µs")
	b.ReportMetric(float64(p.fdatasync.Nanoseconds())/1e3/float64(p.fdatasyncs), "fdatasync-µs")
	b.ReportMetric(bound, "bound-entries/s")
	b.ReportMetric(rate/bound, "of-bound")
	if p.batches > 0 {
		batchSync := p.batch / time.Duration(p.batches)
		b.ReportMetric(float64(batchSync.Nanoseconds())/1e3, "batch-sync-µs")
		b.ReportMetric(rate/(float64(appenders)/batchSync.Seconds()), "of-batch-bound")
	}
	// commit-µs is the log's own synced commit of a batch (txn.Commit, its
	// keys already staged), and commit-cap the share of the bound that a log
	// doing nothing but those commits, with batches of the size it had, would
	// reach: the most a log whose batches are synced Badger commits can, on
	// this disk.
	commit := committing / time.Duration(l.Commits())
	perCommit := float64(l.Size()) / float64(l.Commits())
	b.ReportMetric(float64(commit.Nanoseconds())/1e3, "commit-µs")
	b.ReportMetric(perCommit/commit.Seconds()/bound, "commit-cap")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/entry")
	b.ReportMetric(float64(runq.Nanoseconds())/1e3/float64(b.N), "runq-µs/entry")
}

// entryBytes returns the bytes of the keys and values that e adds to the
// store: the entry, its scope index key, and two stored hashes on average.
func entryBytes(b *testing.B, e Entry) int {
	body, err := e.MarshalCanonical()
	if err != nil {
		b.Fatal(err)
	}
	hash := len(indexKey(prefixHash, 0)) + tlog.HashSize
	return len(indexKey(prefixEntry, 0)) + len(body) + len(scopeKeyPrefix(e.Collaboration, e.Principal)) + 8 + 2*hash
}

// appendConcurrently appends n entries from the given number of goroutines.
func appendConcurrently(b *testing.B, l *Log, e Entry, n, appenders int) {
	var wg sync.WaitGroup
	for w := range appenders {
		k := n / appenders
		if w < n%appenders {
			k++
		}
		wg.Go(func() {
			for range k {
				if _, err := l.Append(context.Background(), e); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// syncProbe times the durable writes that bound a synced log: a one-key
// Badger commit (with the options Open uses), the same with a batch's
// bytes, and an fdatasync of a file.
type syncProbe struct {
	db         *badger.DB
	f          *os.File
	commits    int
	commit     time.Duration // the one-key commits' total time
	batches    int
	batch      time.Duration // the batch-sized commits' total time
	fdatasyncs int
	fdatasync  time.Duration
}

func newSyncProbe(b *testing.B, dir string) *syncProbe {
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(dir, "badger")).
		WithSyncWrites(true).
		WithLogger(nil).
		WithMemTableSize(16 << 20).
		WithBlockCacheSize(16 << 20))
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "file"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close(); f.Close() })
	return &syncProbe{db: db, f: f}
}

// run commits one key at a time for d, and at least 4 times, alternating
// a small value and, unless batchBytes is 0, one of batchBytes; then it
// makes 4 fdatasyncs of a page.
func (p *syncProbe) run(b *testing.B, d time.Duration, batchBytes int) {
	big := make([]byte, batchBytes)
	for i, start := 0, time.Now(); i < 8 || time.Since(start) < d; i++ {
		v := []byte(strconv.Itoa(p.commits))
		if batchBytes > 0 && i%2 == 1 {
			v = big
		}
		t := time.Now()
		if err := p.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("probe"), v) }); err != nil {
			b.Fatal(err)
		}
		if batchBytes > 0 && i%2 == 1 {
			p.batch += time.Since(t)
			p.batches++
		} else {
			p.commit += time.Since(t)
			p.commits++
		}
	}
	page := make([]byte, 4096)
	for range 4 {
		page[0]++
		t := time.Now()
		if _, err := p.f.WriteAt(page, 0); err != nil {
			b.Fatal(err)
		}
		if err := fdatasync(p.f); err != nil {
			b.Fatal(err)
		}
		p.fdatasync += time.Since(t)
		p.fdatasyncs++
	}
}

// BenchmarkAppendStore: the log's writes without its group commit: batches
// of 256 entries staged and committed (synced) one after another by the
// benchmark itself, with no appenders to answer and none to wait for. It is
// what BenchmarkAppendConcurrent/256 would reach if gathering a batch cost
// nothing: the store's own rate for the keys an entry writes.
func BenchmarkAppendStore(b *testing.B) {
	l := openLog(b, b.TempDir(), testOpts())
	e := entry(1)
	body, err := e.MarshalCanonical()
	if err != nil {
		b.Fatal(err)
	}
	const batchSize = 256
	reqs := make([]*appendReq, batchSize)
	for i := range reqs {
		reqs[i] = &appendReq{entry: body, leaf: tlog.RecordHash(body), scope: scopeKeyPrefix(e.Collaboration, e.Principal)}
	}
	var f frontier
	b.ReportAllocs()
	b.ResetTimer()
	c := cpuTime()
	for done := 0; done < b.N; done += batchSize {
		k := min(batchSize, b.N-done)
		txn := l.db.NewTransaction(true)
		if _, err := l.stage(txn, reqs[:k], make([]appendRes, k), &f); err != nil {
			b.Fatal(err)
		}
		if err := l.commitTxn(txn, f.size); err != nil {
			b.Fatal(err)
		}
		txn.Discard()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64((cpuTime()-c).Nanoseconds())/1e3/float64(b.N), "cpu-µs/entry")
}
