package audit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// BenchmarkAppendLatency: one appender; reports the median and 99th
// percentile of one durable append.
func BenchmarkAppendLatency(b *testing.B) {
	l := openLog(b, b.TempDir(), testOpts())
	e := entry(1)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		t := time.Now()
		if _, err := l.Append(context.Background(), e); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// fillLog appends n entries quickly (many appenders, so big group commits).
func fillLog(b *testing.B, dir string, n int) {
	l, err := Open(context.Background(), dir, testOpts())
	if err != nil {
		b.Fatal(err)
	}
	const appenders = 512
	var wg sync.WaitGroup
	for w := range appenders {
		wg.Go(func() {
			for i := w; i < n; i += appenders {
				if _, err := l.Append(context.Background(), entry(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkProveInclusion(b *testing.B) {
	dir := b.TempDir()
	fillLog(b, dir, 100_000)
	l := openLog(b, dir, testOpts())
	ctx := context.Background()
	c, err := l.Checkpoint(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		if _, err := l.ProveInclusion(ctx, i%c.Size, c.Size); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}

// BenchmarkVerify1M verifies an export bundle of one million entries. Set
// CLEANROOM_AUDIT_BUNDLE_1M to a file path to keep the bundle between runs
// (building it appends a million entries).
func BenchmarkVerify1M(b *testing.B) {
	const n = 1_000_000
	path := os.Getenv("CLEANROOM_AUDIT_BUNDLE_1M")
	if path == "" {
		path = filepath.Join(b.TempDir(), "bundle")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		dir := b.TempDir()
		fillLog(b, dir, n)
		l := openLog(b, dir, testOpts())
		var buf bytes.Buffer
		if err := l.Export(context.Background(), &buf, 0, 0, nil); err != nil {
			b.Fatal(err)
		}
		data = buf.Bytes()
		os.WriteFile(path, data, 0o600)
	}
	v := testVerifier(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		rep, err := Verify(bytes.NewReader(data), v, nil)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Entries != n {
			b.Fatalf("verified %d entries", rep.Entries)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkExportScoped exports one collaboration's entries (5,000) from a
// log of 100,000 spread over 20 collaborations, each with its inclusion
// proof: through the scope index, and by reading every entry (a store not
// yet indexed, opened read-only), which is what the index saves.
func BenchmarkExportScoped(b *testing.B) {
	const n, collabs = 100_000, 20
	dir := b.TempDir()
	l, err := Open(context.Background(), dir, testOpts())
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 512 {
		wg.Go(func() {
			for i := w; i < n; i += 512 {
				e := entry(i)
				e.Collaboration = fmt.Sprintf("c%02d", i%collabs)
				if _, err := l.Append(context.Background(), e); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B) {
		l, err := Open(context.Background(), dir, Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		var buf bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := l.ExportScoped(context.Background(), &buf, Scope{Collaborations: []string{"c07"}}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n/collabs)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		b.ReportMetric(float64(buf.Len()), "bundle-bytes")
	}
	b.Run("index", run)
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return txn.Delete(keyIndexed) }); err != nil {
		b.Fatal(err)
	}
	db.Close()
	b.Run("scan", run)
}

// BenchmarkVerifySparse verifies a sparse bundle of 5,000 entries of a
// 100,000-entry log: one inclusion proof (17 hashes) per entry.
func BenchmarkVerifySparse(b *testing.B) {
	const n = 100_000
	dir := b.TempDir()
	fillLog(b, dir, n)
	l := openLog(b, dir, testOpts())
	var buf bytes.Buffer
	if err := l.ExportScoped(context.Background(), &buf, Scope{Collaborations: []string{"collab-1"}, Keep: func(i int64, _ Entry) bool { return i%20 == 7 }}); err != nil {
		b.Fatal(err)
	}
	v := testVerifier(b)
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Verify(bytes.NewReader(buf.Bytes()), v, nil)
		if err != nil || rep.Entries != n/20 {
			b.Fatalf("%+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(n/20)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
