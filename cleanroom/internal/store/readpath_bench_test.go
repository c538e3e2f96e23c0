package store

import (
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// BenchmarkReadSegment: reading a dataset's parts in place, 16 of 4 MiB,
// from the value log of a database opened as the room opens its own, with
// their pages released after each part or once a run has been read;
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
	for p := range parts {
		if err := db.Update(func(txn *badger.Txn) error { return PutSegment(txn, Segments("up").Key(p), payload) }); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		r    *Resident
	}{{"release=each", nil}, {"release=run", NewResident(ReleaseEvery, SettleAt)}, {"release=never", NewResident(1<<62, 1<<62)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(parts * size)
			cpu := cpuTime()
			for b.Loop() {
				for p := range parts {
					err := db.View(func(txn *badger.Txn) error {
						return bc.r.ReadSegment(txn, Segments("up").Key(p), func(v []byte) error {
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

// cpuTime is the CPU time this process has used, user and system: the
// kernel's share (madvise, page faults) is part of a read's cost.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
