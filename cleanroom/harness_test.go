package cleanroom

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// testRoom is a room serving on loopback, with its operator's client.
type testRoom struct {
	t    testing.TB
	room *Room
	url  string
	op   *client.Client
	dir  DataDir
	keys map[string]*crypto.PartnerKey
	stop func() // stops serving and closes the room
	now  func() time.Time
	// configure, if set, adjusts the room's Config each time it is opened.
	configure func(*Config)
}

func startRoom(t testing.TB) *testRoom {
	t.Helper()
	return startRoomWith(t, nil)
}

// startRoomWith starts a room whose Config configure adjusts.
func startRoomWith(t testing.TB, configure func(*Config)) *testRoom {
	t.Helper()
	return startRoomAt(t, nil, configure)
}

// startRoomAt starts a room whose clock, and its operator's, is now (nil:
// the system's), and whose Config configure adjusts (nil: none).
func startRoomAt(t testing.TB, now func() time.Time, configure func(*Config)) *testRoom {
	t.Helper()
	dir := DataDir(t.TempDir())
	ctx := context.Background()
	op, err := Init(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	tr := &testRoom{t: t, dir: dir, keys: map[string]*crypto.PartnerKey{}, now: now, configure: configure}
	tr.serve()
	if tr.op, err = client.New(ctx, tr.url, op, client.Options{Now: now}); err != nil {
		t.Fatal(err)
	}
	return tr
}

// serve opens the room's directory and serves it until the test ends.
func (tr *testRoom) serve() {
	t := tr.t
	// Every test checks that no reader modified a record the room's caches
	// share (recordCaches); benchmarks measure the room without the check.
	_, bench := t.(*testing.B)
	cfg := Config{Dir: tr.dir, CheckpointInterval: -1, Now: tr.now, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		checkCaches: !bench}
	if tr.configure != nil {
		tr.configure(&cfg)
	}
	r, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Serve(ctx, ln); close(done) }()
	tr.room, tr.url = r, "http://"+ln.Addr().String()
	var once sync.Once
	tr.stop = func() { once.Do(func() { cancel(); <-done; r.Close() }) }
	t.Cleanup(tr.stop)
}

// restart stops the room and serves its directory again, on a new port.
func (tr *testRoom) restart() {
	tr.stop()
	tr.serve()
}

// partner registers a principal and returns its client.
func (tr *testRoom) partner(id, role, of string) *client.Client {
	t := tr.t
	t.Helper()
	k, err := crypto.GeneratePartnerKey(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := tr.op.RegisterPrincipal(ctx, api.Principal{ID: id, Role: role, Partner: of, Keys: k.Public()}); err != nil {
		t.Fatal(err)
	}
	tr.keys[id] = k
	c, err := client.New(ctx, tr.url, k, client.Options{Now: tr.now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// collab creates a collaboration among the partners (the first creates it
// and delivers the secret; the others accept) and returns their state dirs.
func (tr *testRoom) collab(id, mode string, settings map[string]any, ps ...*client.Client) map[string]client.StateDir {
	t := tr.t
	t.Helper()
	ctx := context.Background()
	var members []string
	for _, p := range ps {
		members = append(members, p.Principal())
	}
	req := api.CreateCollaboration{ID: id, Mode: mode, Kind: "email", Members: members}
	if settings != nil {
		raw, err := json.Marshal(settings)
		if err != nil {
			t.Fatal(err)
		}
		req.Settings = raw
	}
	if _, err := ps[0].CreateCollaboration(ctx, req); err != nil {
		t.Fatal(err)
	}
	states := map[string]client.StateDir{}
	for _, p := range ps {
		states[p.Principal()] = client.StateDir(t.TempDir())
	}
	if err := ps[0].DistributeSecret(ctx, id, states[ps[0].Principal()], nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps[1:] {
		acceptAsShown(t, p, id)
		if err := p.ReceiveSecret(ctx, id, states[p.Principal()], nil); err != nil {
			t.Fatal(err)
		}
	}
	return states
}

// matched is the exact overlap of collab's latest match run, which only the
// room's own process can read.
func (tr *testRoom) matched(collab string) int64 {
	tr.t.Helper()
	st, err := tr.room.MatchStats(collab)
	if err != nil {
		tr.t.Fatal(err)
	}
	return st.Matched
}

// acceptAsShown accepts a collaboration as a member does that reviewed the
// terms the room shows it: by their digest.
func acceptAsShown(t testing.TB, p *client.Client, id string) {
	t.Helper()
	ctx := context.Background()
	v, err := p.Collaboration(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Accept(ctx, id, v.SettingsDigest); err != nil {
		t.Fatal(err)
	}
}

// person is a synthetic customer: an email and an age band that do not
// depend on which list holds them.
func person(i int) (string, string) {
	bands := []string{"18-24", "25-34", "35-44", "45-54"}
	return fmt.Sprintf("person%06d@example.org", i), bands[(i*7+i/3)%len(bands)]
}

// writeList writes a CSV of the people ids, with an age_band and a spend
// column, and returns its path.
func writeList(t testing.TB, ids []int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "list.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write([]string{"email", "age_band", "spend"})
	rng := rand.New(rand.NewPCG(uint64(len(ids)), 1))
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for _, id := range ids {
		email, band := person(id)
		w.Write([]string{email, band, strconv.Itoa(rng.IntN(500))})
	}
	w.Flush()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func span(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func uploadSpec(collab, path string, state client.StateDir) client.UploadSpec {
	return client.UploadSpec{Collab: collab, Input: path, IDColumn: "email", Kind: crypto.KindEmail,
		Columns: []string{"age_band", "spend"}, State: state, RowsPerPart: 500}
}

func b64(b []byte) string               { return base64.StdEncoding.EncodeToString(b) }
func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
func jsonUnmarshal(b []byte, v any) error {
	return json.Unmarshal(b, v)
}

// reconnect makes a new client for a registered principal (after the room
// restarted on another port).
func reconnect(tr *testRoom, id string) (*client.Client, error) {
	return client.New(context.Background(), tr.url, tr.keys[id], client.Options{Now: tr.now})
}
