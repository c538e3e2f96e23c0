package cleanroom

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// BenchmarkRequests is a load generator: C clients on loopback send
// authenticated requests to a real room as fast as it answers, each with a
// token of its own (signed before the clock starts: clients sign on their
// own machines, not on the room's cores). Each request is authenticated,
// decided by policy and recorded in the audit log before it is answered. It
// reports requests/s, the p50 and p99 latency and the CPU time a request
// costs (room and clients together), and checks afterwards that every
// request was answered 200 with exactly one audit entry each, and that the
// log verifies.
//
//	go test ./cleanroom -run XXX -bench Requests -benchtime 5000x
func BenchmarkRequests(b *testing.B) {
	for _, route := range []struct{ name, path string }{
		{"status", "/v1/collaborations/c1"},
		{"budget", "/v1/collaborations/c1/budget"},
	} {
		for _, clients := range []int{1, 16, 64, 256} {
			b.Run(fmt.Sprintf("%s/clients=%d", route.name, clients), func(b *testing.B) {
				benchRequests(b, route.path, clients)
			})
		}
	}
}

// warmUp is the most requests the load generator sends before it starts
// the clock (at most as many as it times): enough for a collection cycle's
// worth of allocation.
const warmUp = 4000

func benchRequests(b *testing.B, path string, clients int) {
	tr := startRoom(b)
	a := tr.partner("alpha", policy.RolePartner, "")
	c := tr.partner("bravo", policy.RolePartner, "")
	tr.collab("c1", api.ModeHashed, nil, a, c)
	key, roomID := tr.keys["alpha"].SigningKey(), tr.room.Info().ID
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients}}
	defer hc.CloseIdleConnections()
	sign := func(n int) []string {
		tokens := make([]string, n)
		for i := range tokens {
			tok, err := api.SignRequestToken(key, "alpha", roomID, newRequestID(), time.Now())
			if err != nil {
				b.Fatal(err)
			}
			tokens[i] = tok
		}
		return tokens
	}
	ask := func(tok string) error {
		req, _ := http.NewRequest("GET", tr.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	// drive sends the requests of tokens from the clients at once and
	// returns each client's latencies.
	drive := func(tokens []string) [][]time.Duration {
		latencies := make([][]time.Duration, clients)
		var next atomic.Int64
		var failed atomic.Pointer[error]
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				for n := next.Add(1); n <= int64(len(tokens)); n = next.Add(1) {
					start := time.Now()
					if err := ask(tokens[n-1]); err != nil {
						failed.CompareAndSwap(nil, &err)
						return
					}
					latencies[i] = append(latencies[i], time.Since(start))
				}
			})
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			b.Fatal(*err)
		}
		return latencies
	}
	// A server that has run a while has its connections open and its
	// heap grown to its working size; a fresh process pays for both
	// (page faults on fresh memory) in its first requests. The warm-up's
	// requests are answered and audited like the others, before the clock.
	before := tr.room.audit.Size()
	warm := drive(sign(min(warmUp, b.N)))
	tokens := sign(b.N)
	var msBefore, msAfter runtime.MemStats
	runtime.ReadMemStats(&msBefore)
	uBefore, cpuOK := processUsage()
	b.ResetTimer()
	latencies := drive(tokens)
	b.StopTimer()
	uAfter, _ := processUsage()
	runtime.ReadMemStats(&msAfter)
	all := slices.Concat(latencies...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	if cpuOK {
		// The process's CPU time, server and load generator together: what
		// a request costs the machine, however loaded it is.
		n := float64(b.N)
		b.ReportMetric(float64((uAfter.user+uAfter.sys-uBefore.user-uBefore.sys).Microseconds())/n, "cpu-µs/req")
		b.ReportMetric(float64((uAfter.sys-uBefore.sys).Microseconds())/n, "sys-µs/req")
		b.ReportMetric(float64(uAfter.faults-uBefore.faults)/n, "faults/req")
		b.ReportMetric(float64(uAfter.switches-uBefore.switches)/n, "preempted/req")
	}
	// What the heap costs: bytes allocated a request and the collections
	// they caused in the run.
	b.ReportMetric(float64(msAfter.TotalAlloc-msBefore.TotalAlloc)/float64(b.N), "B/req")
	b.ReportMetric(float64(msAfter.NumGC-msBefore.NumGC), "gcs")
	if got, want := tr.room.audit.Size()-before, int64(b.N+len(slices.Concat(warm...))); got != want {
		b.Fatalf("%d requests made %d audit entries", want, got)
	}
	checkLog(b, tr)
}

// checkLog verifies the room's whole log against the room's key, as
// cleanroom doctor does.
func checkLog(b *testing.B, tr *testRoom) {
	if err := verifyLog(context.Background(), tr.room.audit, tr.room.id); err != nil {
		b.Fatalf("the log does not verify: %v", err)
	}
}
