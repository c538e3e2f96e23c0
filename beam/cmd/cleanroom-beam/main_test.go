package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// asBinary, set in a process's environment, makes this test binary run
// as cleanroom-beam: the room under test runs it as its engine, so that
// the tests need no second link of the same 200 MB program.
const asBinary = "CLEANROOM_BEAM_TEST_AS_BINARY"

func TestMain(m *testing.M) {
	if os.Getenv(asBinary) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// room is a room serving on loopback until stop.
type room struct {
	url  string
	stop func()
}

func serveRoom(t *testing.T, dir string, engine cleanroom.EngineConfig) *room {
	t.Helper()
	r, err := cleanroom.Open(context.Background(), cleanroom.Config{Dir: cleanroom.DataDir(dir), CheckpointInterval: -1, Engine: engine,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
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
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			r.Close()
		}
	}
	t.Cleanup(stop)
	return &room{url: "http://" + ln.Addr().String(), stop: stop}
}

// writeList writes a member's CSV: people ids, each with the columns'
// values from fn.
func writeList(t *testing.T, ids []int, header []string, fn func(id int) []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "list.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write(append([]string{"email"}, header...))
	for _, id := range ids {
		w.Write(append([]string{fmt.Sprintf("person%06d@example.org", id)}, fn(id)...))
	}
	w.Flush()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// TestRoomQueriesOnBeam: a room started with the Beam engine answers
// queries of every kind through its API exactly as the same room with its
// local engine (noise off), decides, counts and charges them alike, and
// charges a noisy query its epsilon.
func TestRoomQueriesOnBeam(t *testing.T) {
	t.Setenv(asBinary, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := context.Background()
	op, err := cleanroom.Init(ctx, cleanroom.Config{Dir: cleanroom.DataDir(dir)})
	if err != nil {
		t.Fatal(err)
	}
	beamEngine := cleanroom.EngineConfig{Kind: cleanroom.EngineBeam, Binary: exe, Runner: "prism", Shards: 4}
	rm := serveRoom(t, dir, beamEngine)
	opc, err := client.New(ctx, rm.url, op, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]*crypto.PartnerKey{}
	clients := func(url string) map[string]*client.Client {
		out := map[string]*client.Client{}
		for id, k := range keys {
			if out[id], err = client.New(ctx, url, k, client.Options{}); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	for _, id := range []string{"alpha", "bravo"} {
		k, err := crypto.GeneratePartnerKey(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		keys[id] = k
		if err := opc.RegisterPrincipal(ctx, api.Principal{ID: id, Role: policy.RolePartner, Keys: k.Public()}); err != nil {
			t.Fatal(err)
		}
	}
	c := clients(rm.url)
	bands := []string{"18-24", "25-34", "35-44", "45+"}
	settings := map[string]any{
		"allowed_dimensions": []string{"alpha.band", "bravo.band", "alpha.spend", "alpha.exposed", "bravo.converted"},
		"domains":            map[string][]string{"alpha.band": bands},
		"bounds":             map[string][2]float64{"alpha.spend": {0, 500}, "bravo.revenue": {0, 100}},
	}
	lists := map[string]string{
		// alpha names people 0-2999, and 200-299 a second time.
		"alpha": writeList(t, append(span(0, 3000), span(200, 300)...), []string{"band", "spend", "exposed"}, func(id int) []string {
			return []string{bands[id%4], fmt.Sprint(id % 700), fmt.Sprint(id % 3 / 2)}
		}),
		"bravo": writeList(t, span(1000, 4000), []string{"band", "revenue", "converted"}, func(id int) []string {
			return []string{bands[id/7%4], fmt.Sprint(id % 150), fmt.Sprint(id % 5 / 3)}
		}),
	}
	for _, collab := range []string{"exact", "noisy"} {
		s := settings
		if collab == "exact" {
			s = map[string]any{"noise_off": true}
			for k, v := range settings {
				s[k] = v
			}
		}
		raw, _ := json.Marshal(s)
		if _, err := c["alpha"].CreateCollaboration(ctx, api.CreateCollaboration{ID: collab, Mode: api.ModeHashed, Kind: "email",
			Members: []string{"alpha", "bravo"}, Settings: raw}); err != nil {
			t.Fatal(err)
		}
		states := map[string]client.StateDir{"alpha": client.StateDir(t.TempDir()), "bravo": client.StateDir(t.TempDir())}
		if err := c["alpha"].DistributeSecret(ctx, collab, states["alpha"], nil); err != nil {
			t.Fatal(err)
		}
		v, err := c["bravo"].Collaboration(ctx, collab)
		if err != nil {
			t.Fatal(err)
		}
		if err := c["bravo"].Accept(ctx, collab, v.SettingsDigest); err != nil {
			t.Fatal(err)
		}
		if err := c["bravo"].ReceiveSecret(ctx, collab, states["bravo"], nil); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"alpha", "bravo"} {
			cols := map[string][]string{"alpha": {"band", "spend", "exposed"}, "bravo": {"band", "revenue", "converted"}}[id]
			if _, err := c[id].UploadCSV(ctx, client.UploadSpec{Collab: collab, Input: lists[id], IDColumn: "email", Kind: crypto.KindEmail,
				Columns: cols, State: states[id], RowsPerPart: 1000}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c["alpha"].Match(ctx, collab); err != nil {
			t.Fatal(err)
		}
	}

	q := func(m []api.Metric, groupBy []string, f []api.Filter) api.QuerySpec {
		return api.QuerySpec{Version: api.QueryVersion, Metrics: m, GroupBy: groupBy, Filters: f, Epsilon: 0.5}
	}
	specs := []api.QuerySpec{
		q([]api.Metric{{Kind: api.MetricCount}}, []string{"alpha.band"}, nil),
		q([]api.Metric{{Kind: api.MetricSum, Column: "alpha.spend"}, {Kind: api.MetricAvg, Column: "bravo.revenue"}}, []string{"alpha.band", "bravo.band"},
			[]api.Filter{{Column: "alpha.spend", Op: "ge", Value: "100"}}),
		q([]api.Metric{{Kind: api.MetricROI, Revenue: []string{"alpha.spend", "bravo.revenue"}, Cost: &api.Cost{Value: 20}}}, []string{"bravo.band"}, nil),
		q([]api.Metric{{Kind: api.MetricLift, Exposed: "alpha.exposed", Converted: "bravo.converted", Level: 0.9}}, nil, nil),
		q([]api.Metric{{Kind: api.MetricMatchRate, Member: "alpha"}}, []string{"alpha.band"}, []api.Filter{{Column: "alpha.band", Op: "ne", Value: "45+"}}),
	}
	answer := func(c *client.Client) []string {
		var out []string
		for _, s := range specs {
			res, err := c.Query(ctx, "exact", s)
			if err != nil {
				t.Fatal(err)
			}
			if res.Noise || len(res.Rows) == 0 {
				t.Fatalf("an exact query answered %+v", res)
			}
			res.Budget = api.BudgetInfo{}
			b, _ := json.Marshal(res)
			out = append(out, string(b))
		}
		return out
	}
	onBeam := answer(c["alpha"])
	// The match may have charged the collaboration already: the query's
	// charge is the difference.
	before, err := c["bravo"].Budget(ctx, "noisy")
	if err != nil {
		t.Fatal(err)
	}
	noisy, err := c["bravo"].Query(ctx, "noisy", specs[0])
	if err != nil {
		t.Fatal(err)
	}
	if spent := noisy.Budget.Spent - before.Spent; !noisy.Noise || noisy.Partitions != api.PartitionsDeclared || math.Abs(spent-0.5) > 1e-9 {
		t.Errorf("a noisy query on Beam: noise %v, partitions %s, spent %v", noisy.Noise, noisy.Partitions, spent)
	}

	// The same room, with its local engine.
	rm.stop()
	rm = serveRoom(t, dir, cleanroom.EngineConfig{})
	c = clients(rm.url)
	local := answer(c["alpha"])
	for i := range specs {
		if onBeam[i] != local[i] {
			t.Errorf("query %d\n beam  %s\n local %s", i, onBeam[i], local[i])
		}
	}
	b, err := c["alpha"].Budget(ctx, "exact")
	if err != nil {
		t.Fatal(err)
	}
	if b.QueriesToday != 2*len(specs) || b.Spent != 0 {
		t.Errorf("budget after %d queries on each engine: %+v", len(specs), b)
	}
}
