package store

import (
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// BenchmarkReadSegment: reading a dataset's parts, 16 of 4 MiB: in place
// from the value log of a database opened as the room opens its own, with
// their pages released after each part or once a run has been read (or
// never), and from files of their own (store=files, as the room keeps
// upload parts), read into a buffer and checked against their seals;
// cpu-ms/op is the CPU time of a read of all 16, system time included.
func BenchmarkReadSegment(b *testing.B) {
	db, err := badger.Open(checkingOptions(b.TempDir()).WithValueLogFileSize(256 << 20))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const parts, size = 16, 4 << 20
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i * 31)
	}
	files := NewFiles(b.TempDir(), db)
	for p := range parts {
		if err := db.Update(func(txn *badger.Txn) error { return PutSegment(txn, Segments("up").Key(p), payload) }); err != nil {
			b.Fatal(err)
		}
		ref, err := files.Write(SealSegment(payload))
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Update(func(txn *badger.Txn) error { return txn.Set(Segments("infile").Key(p), ref) }); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name   string
		upload string
		r      *Resident
	}{
		{"store=badger/release=each", "up", nil},
		{"store=badger/release=run", "up", NewResident(ReleaseEvery, SettleAt)},
		{"store=badger/release=never", "up", NewResident(1<<62, 1<<62)},
		{"store=files", "infile", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(parts * size)
			cpu := cpuTime()
			for b.Loop() {
				for p := range parts {
					err := db.View(func(txn *badger.Txn) error {
						return files.ReadSegment(txn, Segments(bc.upload).Key(p), bc.r, func(v []byte) error {
							if v[len(v)/2] != payload[len(v)/2] {
								b.Fatal("read back different")
							}
							return nil
						})
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// BenchmarkWriteSegment: storing a 4 MiB part durably, as the room stores
// an upload part: in Badger (one synced commit, SyncWrites on) or in a file
// of its own (written, synced with its directory entry, its reference
// committed in Badger). Eight writers a core, as a room's requests come in at once.
func BenchmarkWriteSegment(b *testing.B) {
	const size = 4 << 20
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i * 31)
	}
	sealed := SealSegment(payload)
	for _, store := range []string{"badger", "files"} {
		b.Run("store="+store, func(b *testing.B) {
			db, err := badger.Open(checkingOptions(b.TempDir()).WithSyncWrites(true))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			files := NewFiles(b.TempDir(), db)
			var n atomic.Int64
			b.SetBytes(size)
			b.SetParallelism(8)
			cpu := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := Segments("up").Key(int(n.Add(1)))
					value := sealed
					if store == "files" {
						var err error
						if value, err = files.Write(sealed); err != nil {
							b.Error(err)
							return
						}
					}
					if err := db.Update(func(txn *badger.Txn) error { return txn.Set(key, value) }); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime is the CPU time this process has used, user and system: the
// kernel's share (madvise, page faults) is part of a read's cost.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFileWrites writes 4 MiB files in writeInPieces' calls and in
// one call each: what the kernel's folio sizes cost. Every file is kept
// until both are done, so that each write takes memory nothing has just
// freed, as a room's parts do: run it with -count 1 (a second round reuses
// the first's memory) and 256x, a gigabyte a case.
func BenchmarkFileWrites(b *testing.B) {
	const size = 4 << 20
	dir, files := b.TempDir(), 0
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	for _, c := range []struct {
		name  string
		write func(*os.File, []byte) error
	}{
		{"write=pieces", writeInPieces},
		{"write=whole", func(f *os.File, b []byte) error { _, err := f.Write(b); return err }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size)
			cpu := cpuTime()
			for range b.N {
				files++
				f, err := os.Create(filepath.Join(dir, strconv.Itoa(files)))
				if err != nil {
					b.Fatal(err)
				}
				err = c.write(f, buf)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}
