package cleanroom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// BenchmarkHashedRoundTrip runs a whole hashed collaboration over loopback
// per iteration: two uploads of 20,000 rows, the match, and a count query.
// rows/s counts rows uploaded by both partners.
func BenchmarkHashedRoundTrip(b *testing.B) {
	const rows = 20000
	for b.Loop() {
		b.StopTimer()
		tr := startRoom(b)
		a := tr.partner("alpha", policy.RolePartner, "")
		c := tr.partner("bravo", policy.RolePartner, "")
		states := tr.collab("c1", api.ModeHashed, nil, a, c)
		la, lb := writeList(b, span(0, rows)), writeList(b, span(rows/2, rows/2+rows))
		ctx := context.Background()
		b.StartTimer()
		if _, err := a.UploadCSV(ctx, uploadSpec("c1", la, states["alpha"])); err != nil {
			b.Fatal(err)
		}
		if _, err := c.UploadCSV(ctx, uploadSpec("c1", lb, states["bravo"])); err != nil {
			b.Fatal(err)
		}
		if _, err := a.Match(ctx, "c1"); err != nil || tr.matched("c1") != rows/2 {
			b.Fatal(err)
		}
		if _, err := a.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.5}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(2*rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkBlindedPipeline measures how close the blinded pipeline comes to
// the cost of its group operations. Per iteration it times, in one run:
//
//   - bound: the group operations of a two-member match alone, on all cores,
//     with the functions the partners and the room use: each member's set
//     encrypted by its owner (hash to the group, multiply, encode) and
//     re-encrypted by the other (decode, multiply, encode), and the room's
//     decoding of every element it receives (each upload and each returned
//     layer), which the protocol requires of it;
//   - pipeline: the real thing over loopback, both partners at once:
//     CSV reading and normalization, encryption, upload and the room's
//     checks, the relay (shuffle, re-encryption, checks), and the match.
//
// It reports both, "ratio" = bound/pipeline (1 would mean everything else is
// free), and "ratio-mul", the same against the multiplications alone.
// CLEANROOM_BENCH_ROWS sets the rows of each member (default 50,000, half
// of them shared).
func BenchmarkBlindedPipeline(b *testing.B) {
	rows := 50_000
	if s := os.Getenv("CLEANROOM_BENCH_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	var bound, boundMul, pipeline, cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		tr := startRoom(b)
		a := tr.partner("alpha", policy.RolePartner, "")
		c := tr.partner("bravo", policy.RolePartner, "")
		states := tr.collab("c1", api.ModeBlinded, nil, a, c)
		lists := []string{writeList(b, span(0, rows)), writeList(b, span(rows/2, rows/2+rows))}

		mul, decode := groupOpsOnly(b, rows)
		bound += mul + decode
		boundMul += mul
		start := time.Now()

		b.StartTimer()
		start = time.Now()
		cpu0 := cpuTime()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, p := range []*client.Client{a, c} {
			wg.Go(func() {
				spec := uploadSpec("c1", lists[i], states[p.Principal()])
				spec.RowsPerPart = 0 // the client's default, as a partner would run it
				t0 := time.Now()
				if _, errs[i] = p.UploadCSV(ctx, spec); errs[i] == nil {
					t1 := time.Now()
					_, errs[i] = p.Sync(ctx, "c1", true, 10*time.Millisecond)
					b.Logf("%s: upload %v, sync %v", p.Principal(), t1.Sub(t0), time.Since(t1))
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
		if _, err := a.Match(ctx, "c1"); err != nil || tr.matched("c1") != int64(rows/2) {
			b.Fatal(err)
		}
		pipeline += time.Since(start)
		cpu += cpuTime() - cpu0
	}
	b.ReportMetric(bound.Seconds()/float64(b.N), "bound-s")
	b.ReportMetric(pipeline.Seconds()/float64(b.N), "pipeline-s")
	b.ReportMetric(bound.Seconds()/pipeline.Seconds(), "ratio")
	b.ReportMetric(boundMul.Seconds()/pipeline.Seconds(), "ratio-mul")
	b.ReportMetric(cpu.Seconds()/pipeline.Seconds(), "cores-busy")
	b.ReportMetric(float64(2*rows*b.N)/pipeline.Seconds(), "rows/s")
}

// groupOpsOnly times the group operations of a two-member blinded match of
// rows each on all cores: the multiplications (two sets encrypted, each
// re-encrypted once, and the relay's probes made by the room, re-encrypted
// by the member and checked by the room) and the room's decodings (each
// set uploaded and returned, the probes returned).
func groupOpsOnly(b *testing.B, rows int) (mul, decode time.Duration) {
	ctx := context.Background()
	ks, _ := crypto.NewSecret(nil)
	keys := make([]crypto.MatchKey, rows)
	for i := range keys {
		keys[i] = sha256.Sum256([]byte(strconv.Itoa(i)))
	}
	els := make([]crypto.Element, rows)
	raw := make([]byte, 0, rows*crypto.ElementSize)
	for range 2 {
		k1, _ := crypto.GenerateBlindingKey(nil)
		k2, _ := crypto.GenerateBlindingKey(nil)
		start := time.Now()
		if err := k1.EncryptBatch(ctx, ks, els, keys); err != nil {
			b.Fatal(err)
		}
		if err := k2.ReencryptBatch(ctx, els, els); err != nil {
			b.Fatal(err)
		}
		mul += time.Since(start)
		raw = raw[:0]
		for _, e := range els {
			eb := e.Bytes()
			raw = append(raw, eb[:]...)
		}
		probes := slices.Clone(raw[:min(len(raw), probeCount(int64(rows), 4)*crypto.ElementSize)])
		start = time.Now()
		for range 3 {
			if err := k2.ReencryptBytes(ctx, probes, probes); err != nil {
				b.Fatal(err)
			}
		}
		mul += time.Since(start)
		start = time.Now()
		if err := crypto.CheckElements(probes); err != nil {
			b.Fatal(err)
		}
		decode += time.Since(start)
		start = time.Now()
		for range 2 {
			// The room checks on one core per request; its requests come
			// from both partners at once.
			var wg sync.WaitGroup
			for h := range 2 {
				wg.Go(func() {
					half := rows / 2 * crypto.ElementSize
					if err := crypto.CheckElements(raw[h*half : h*half+half+h*(len(raw)-2*half)]); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
		decode += time.Since(start)
	}
	return mul, decode
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecodeColumns: a dataset's attribute columns decoded from its
// stored segments, as the first query on it does (the cache bypassed):
// age_band as a dimension, spend as a bounded number. rows/s counts
// dataset rows, each with both columns; cpu-ms/op is the CPU time a decode
// takes, on all cores together.
func BenchmarkDecodeColumns(b *testing.B) { benchmarkDecode(b, 400_000) }

// BenchmarkDecodeColumns10M is BenchmarkDecodeColumns on 10M rows: the
// first query's decode on a dataset of the size BenchmarkQuery10M queries.
func BenchmarkDecodeColumns10M(b *testing.B) {
	if testing.Short() {
		b.Skip("10M rows")
	}
	benchmarkDecode(b, 10_000_000)
}

// decodeBench starts a room in which alpha has uploaded a list of rows
// (in parts of 50,000), and returns the room and alpha's dataset.
func decodeBench(b *testing.B, rows int) (*testRoom, *datasetRecord) {
	tr := startRoom(b)
	a := tr.partner("alpha", policy.RolePartner, "")
	c := tr.partner("bravo", policy.RolePartner, "")
	states := tr.collab("c1", api.ModeHashed, nil, a, c)
	spec := uploadSpec("c1", writeList(b, span(0, rows)), states["alpha"])
	spec.RowsPerPart = 50_000
	if _, err := a.UploadCSV(context.Background(), spec); err != nil {
		b.Fatal(err)
	}
	col, err := tr.room.collab("c1")
	if err != nil {
		b.Fatal(err)
	}
	return tr, col.Datasets["alpha"]
}

func benchmarkDecode(b *testing.B, rows int) {
	tr, ds := decodeBench(b, rows)
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		cols, err := tr.room.decodeColumns(ds, []int{0, 1}, []columnForm{asDict, asNumbers})
		if err != nil || cols[1].Len() != rows {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// BenchmarkPartAfterParts sends one part of one row to an upload that has
// received stored parts already, through the room's HTTP API. The upload's
// record holds a receipt of every part and each part writes it again, so a
// part's cost grows with the parts before it: compare the sub-benchmarks'
// ns/op and allocations in one run.
func BenchmarkPartAfterParts(b *testing.B) {
	for _, stored := range []int{10, 3000} {
		b.Run(fmt.Sprintf("stored=%d", stored), func(b *testing.B) {
			tr := startRoom(b)
			a := tr.partner("alpha", policy.RolePartner, "")
			c := tr.partner("bravo", policy.RolePartner, "")
			tr.collab("c1", api.ModeHashed, nil, a, c)
			up := startRegionUpload(b, tr, 0, 1)
			send := func(p int) {
				body := binaryPart(b, 1, 1, make([]byte, 32), "west", distinctTokens(fmt.Sprint(p)))
				resp, msg := rawRequestAs(b, tr, "alpha", "PUT", fmt.Sprintf("/v1/collaborations/c1/uploads/%s/parts/%d", up.ID, p), api.PartContentType, body)
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("part %d: %d %s", p, resp.StatusCode, msg)
				}
			}
			for p := range stored {
				send(p)
			}
			p := stored
			for b.Loop() {
				send(p)
				p++
			}
		})
	}
}

// BenchmarkCommitOfManyParts commits an upload of 100,000 one-row parts
// while another member sends audited requests (its upload's view) one
// after another: the commit reads the parts' receipts before its audit
// entry, so the other member's requests wait for the audit log's one writer
// no longer than usual. It reports the commit's time and the other
// member's slowest request during it, against its median alone.
func BenchmarkCommitOfManyParts(b *testing.B) {
	const parts = 100_000
	tr := startRoom(b)
	alpha := tr.partner("alpha", policy.RolePartner, "")
	bravo := tr.partner("bravo", policy.RolePartner, "")
	tr.collab("c1", api.ModeHashed, nil, alpha, bravo)
	canary := madeUpCanary("email")
	sb, _ := jsonMarshal(api.StartUpload{Kind: "email", Profile: "pair-v1", Columns: []string{"region"}, Rows: 1000, RowsPerPart: 1000, Canary: canary})
	resp, body := rawRequest(b, tr, "bravo", "POST", "/v1/collaborations/c1/uploads", sb)
	var other api.Upload
	if resp.StatusCode != http.StatusCreated || jsonUnmarshal(body, &other) != nil {
		b.Fatalf("bravo's upload: %d %s", resp.StatusCode, body)
	}
	probe := func() time.Duration {
		start := time.Now()
		if resp, _ := rawRequest(b, tr, "bravo", "GET", "/v1/collaborations/c1/uploads/"+other.ID, nil); resp.StatusCode != http.StatusOK {
			b.Errorf("bravo's view: %d", resp.StatusCode)
		}
		return time.Since(start)
	}
	var alone []time.Duration
	for range 21 {
		alone = append(alone, probe())
	}
	slices.Sort(alone)
	var commit, worst time.Duration
	for b.Loop() {
		b.StopTimer()
		// The parts as storePart stores them, 10,000 an entry.
		up := startRegionUpload(b, tr, parts, 1)
		digests := make([]string, parts)
		for lo := 0; lo < parts; lo += 10_000 {
			writeAsRoom(b, tr.room, func(tx *store.Tx) error {
				for p := lo; p < lo+10_000; p++ {
					seg := binaryPart(b, 1, 1, make([]byte, 32), "west", distinctTokens(fmt.Sprint(p)))
					sum := sha256.Sum256(seg)
					digests[p] = hex.EncodeToString(sum[:])
					if err := tx.Set(store.Segments(up.ID).Key(p), store.SealSegment(seg)); err != nil {
						return err
					}
					info := partInfo{Part: p, Rows: 1, Digest: digests[p], Bytes: int64(len(seg))}
					if err := partReceipts.Put(tx, store.PartOf{Upload: up.ID, Part: p}, &info); err != nil {
						return err
					}
				}
				return nil
			})
		}
		b.StartTimer()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				worst = max(worst, probe())
			}
		})
		cb, _ := jsonMarshal(api.CommitUpload{Digest: api.DatasetDigest(digests)})
		start := time.Now()
		resp, body := rawRequest(b, tr, "alpha", "POST", "/v1/collaborations/c1/uploads/"+up.ID+"/commit", cb)
		commit += time.Since(start)
		close(stop)
		wg.Wait()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("commit: %d %s", resp.StatusCode, body)
		}
	}
	b.ReportMetric(float64(commit.Milliseconds())/float64(b.N), "commit-ms")
	b.ReportMetric(float64(alone[len(alone)/2].Microseconds())/1000, "other-p50-alone-ms")
	b.ReportMetric(float64(worst.Microseconds())/1000, "other-max-during-ms")
}
