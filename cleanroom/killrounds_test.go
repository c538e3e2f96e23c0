package cleanroom

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

var faultKills = flag.Int("fault.kills", 5, "rounds of SIGKILL in the fault suite (go test ./cleanroom -run FaultKill -fault.kills 100)")

// TestFaultKillRounds kills the room process (SIGKILL) at a random moment
// of a workload of upload parts, queries and reads, round after round:
// after each restart nothing acknowledged is lost, the room starts (its
// state agrees with its log), and cleanroom doctor finds the stopped
// directory healthy, ledgers reconciled with their logs.
func TestFaultKillRounds(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills a room process a round: not in -short")
	}
	dir := DataDir(t.TempDir())
	ctx := context.Background()
	opKey, err := Init(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	child, url := startChild(t, dir)
	op, err := client.New(ctx, url, opKey, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := &testRoom{t: t, url: url, op: op, dir: dir, keys: map[string]*crypto.PartnerKey{}}
	alpha := tr.partner("alpha", policy.RolePartner, "")
	bravo := tr.partner("bravo", policy.RolePartner, "")
	states := tr.collab("c1", api.ModeHashed, nil, alpha, bravo)
	for _, p := range []*client.Client{alpha, bravo} {
		if _, err := p.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(0, 1500)), states[p.Principal()])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alpha.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	up := startRegionUpload(t, tr, 0, 1000)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	var acked struct {
		sync.Mutex
		parts   []int
		epsilon float64 // answered queries' epsilon
	}
	next := 0 // the next part number
	killed := 0
	for round := range *faultKills {
		// The workload: parts, queries and reads, until the kill.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		tr.url = url
		for w := range 3 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					switch w {
					case 0:
						acked.Lock()
						part := next
						next++
						acked.Unlock()
						body := binaryPart(t, 1000, 1, make([]byte, 32), "west", distinctTokens(fmt.Sprint(part)))
						if resp, _ := killableRequest(tr, "alpha", "PUT", fmt.Sprintf("/v1/collaborations/c1/uploads/%s/parts/%d", up.ID, part), api.PartContentType, body); resp == http.StatusOK {
							acked.Lock()
							acked.parts = append(acked.parts, part)
							acked.Unlock()
						}
					case 1:
						q := fmt.Appendf(nil, `{"version":%q,"metrics":["count"],"epsilon":0.01}`, api.QueryVersion)
						if resp, _ := killableRequest(tr, "bravo", "POST", "/v1/collaborations/c1/queries", "", q); resp == http.StatusOK {
							acked.Lock()
							acked.epsilon += 0.01
							acked.Unlock()
						}
					case 2:
						killableRequest(tr, "alpha", "GET", "/v1/collaborations/c1/budget", "", nil)
					}
				}
			})
		}
		time.Sleep(time.Duration(20+rng.IntN(300)) * time.Millisecond)
		child.Process.Signal(syscall.SIGKILL)
		child.Wait()
		killed++
		close(stop)
		wg.Wait()

		// The room starts, and has everything it acknowledged.
		child, url = startChild(t, dir)
		tr.url = url
		resp, body := killableRequest(tr, "alpha", "GET", "/v1/collaborations/c1/uploads/"+up.ID, "", nil)
		var u api.Upload
		if resp != http.StatusOK || jsonUnmarshal(body, &u) != nil {
			t.Fatalf("round %d: the upload after the restart: %d %s", round, resp, body)
		}
		acked.Lock()
		for _, p := range acked.parts {
			if !slices.Contains(u.Received, p) {
				t.Errorf("round %d: part %d was acknowledged and is lost", round, p)
			}
		}
		wantSpent := acked.epsilon
		acked.Unlock()
		b, err := reconnectAt(tr, "bravo")
		if err != nil {
			t.Fatal(err)
		}
		bud, err := b.Budget(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if bud.Spent+1e-9 < wantSpent+0.1 { // the match's 0.1 and every acknowledged query
			t.Errorf("round %d: %g spent, but %g was acknowledged", round, bud.Spent, wantSpent+0.1)
		}
		// Every few rounds (and the last), stop it and have the doctor look.
		if round%5 == 4 || round == *faultKills-1 {
			child.Process.Signal(syscall.SIGTERM)
			child.Wait()
			d, err := Diagnose(ctx, dir)
			if err != nil || !d.Healthy() {
				t.Fatalf("round %d: doctor: %+v %v", round, d, err)
			}
			child, url = startChild(t, dir)
		}
	}
	acked.Lock()
	t.Logf("%d kill -9 rounds: %d parts and %.2f epsilon of queries acknowledged, none lost; the room started every time and the doctor found it healthy",
		killed, len(acked.parts), acked.epsilon)
	acked.Unlock()
}

// killableRequest is rawRequestAs for a room that may die mid-request:
// a transport error is status 0, not a test failure.
func killableRequest(tr *testRoom, who, method, path, contentType string, body []byte) (int, []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tok, err := api.SignRequestToken(tr.keys[who].SigningKey(), who, tr.op.Room().ID, randID(), time.Now())
	if err != nil {
		return 0, nil
	}
	status, out := doRequest(ctx, tr.url, tok, method, path, contentType, body)
	return status, out
}

// reconnectAt makes a new client for who at the room's current URL.
func reconnectAt(tr *testRoom, who string) (*client.Client, error) {
	return client.New(context.Background(), tr.url, tr.keys[who], client.Options{})
}

func doRequest(ctx context.Context, base, tok, method, path, contentType string, body []byte) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}
