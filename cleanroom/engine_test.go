package cleanroom

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/cleanroom/columnar"
	"github.com/opencleanroom/cleanroom/cleanroom/job"
	"github.com/opencleanroom/cleanroom/matcher"
	"github.com/opencleanroom/cleanroom/policy"
)

// matchedRoom is a room with a matched collaboration "c1" of alpha and
// bravo in mode, whose lists repeat some identifiers.
func matchedRoom(t *testing.T, mode string, configure func(*Config)) (*testRoom, *client.Client) {
	t.Helper()
	tr := startRoomWith(t, configure)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	states := tr.collab("c1", mode, map[string]any{"noise_off": true, "bounds": map[string][2]float64{"alpha.spend": {0, 300}}}, a, b)
	ctx := context.Background()
	// alpha's list names 20 people twice; the room keeps each at its
	// first row.
	lists := map[*client.Client][]int{a: append(span(0, 1500), span(100, 120)...), b: span(900, 2400)}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range []*client.Client{a, b} {
		if _, err := p.UploadCSV(ctx, uploadSpec("c1", writeList(t, lists[p]), states[p.Principal()])); err != nil {
			t.Fatal(err)
		}
		if mode == api.ModeBlinded {
			wg.Go(func() { _, errs[i] = p.Sync(ctx, "c1", true, 10*time.Millisecond) })
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	return tr, a
}

// TestExportMatchesTheRoom: the export holds each member's tokens as the
// match compared them and its values as the room decodes them; matching
// the exported pairs gives the room's join; an export is made once per
// match run.
func TestExportMatchesTheRoom(t *testing.T) {
	for _, mode := range []string{api.ModeHashed, api.ModeBlinded} {
		t.Run(mode, func(t *testing.T) {
			tr, a := matchedRoom(t, mode, func(cfg *Config) { cfg.Engine = EngineConfig{Kind: EngineBeam, Shards: 8} })
			r := tr.room
			c, err := r.collab("c1")
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			dir, err := r.exportForJob(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			m, err := columnar.ReadManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			if m.Shards != 8 || len(m.Members) != 2 || m.Members[0].Name != "alpha" || m.Members[1].Name != "bravo" {
				t.Fatalf("manifest: %d shards, members %+v", m.Shards, m.Members)
			}
			var sets []matcher.Reader
			for _, mem := range m.Members {
				ds := c.Datasets[mem.Name]
				pairs, vals := readExported(t, dir, &mem)
				if int64(len(pairs)) != ds.Rows || int64(len(vals)) != ds.Rows || !slices.Equal(mem.Columns, ds.Columns) {
					t.Fatalf("%s: %d pairs, %d rows of values, for %d rows", mem.Name, len(pairs), len(vals), ds.Rows)
				}
				cols, err := r.decodeColumns(ds, []int{0, 1}, []columnForm{asDict, asDict})
				if err != nil {
					t.Fatal(err)
				}
				for row, v := range vals {
					for j, col := range cols {
						if want := col.Dict[col.Codes[row]]; v[j] != want {
							t.Fatalf("%s row %d column %d: exported %q, the room holds %q", mem.Name, row, j, v[j], want)
						}
					}
				}
				sets = append(sets, &matcher.SliceReader{Pairs: pairs})
			}
			var join [][2]uint32
			res, err := matcher.Intersect(ctx, sets, matcher.Options{}, func(rows []uint32) error {
				join = append(join, [2]uint32{rows[0], rows[1]})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var roomJoin [][2]uint32
			if err := r.readJoin(c, func(rows []uint32) { roomJoin = append(roomJoin, [2]uint32{rows[0], rows[1]}) }); err != nil {
				t.Fatal(err)
			}
			cmp := func(x, y [2]uint32) int { return int(x[0]) - int(y[0]) }
			slices.SortFunc(join, cmp)
			slices.SortFunc(roomJoin, cmp)
			if res.Matches != 600 || !slices.Equal(join, roomJoin) {
				t.Fatalf("the export matches %d people, the room %d; joins equal: %v", res.Matches, len(roomJoin), slices.Equal(join, roomJoin))
			}

			// The same run's export is reused; a new run's replaces it.
			info, _ := os.Stat(filepath.Join(dir, columnar.ManifestName))
			again, err := r.exportForJob(ctx, c)
			if err != nil || again != dir {
				t.Fatalf("second export: %v, %s", err, again)
			}
			if info2, _ := os.Stat(filepath.Join(dir, columnar.ManifestName)); !info2.ModTime().Equal(info.ModTime()) {
				t.Error("the export was written again for the same run")
			}
			if _, err := a.Match(ctx, "c1"); err != nil {
				t.Fatal(err)
			}
			if c, err = r.collab("c1"); err != nil {
				t.Fatal(err)
			}
			next, err := r.exportForJob(ctx, c)
			if err != nil || next == dir {
				t.Fatalf("the next run's export: %v, %s", err, next)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the older run's export was kept: %v", err)
			}
		})
	}
}

// readExported reads a member's exported pairs and values.
func readExported(t *testing.T, dir string, mem *columnar.Member) ([]matcher.Pair, map[uint32][]string) {
	t.Helper()
	var pairs []matcher.Pair
	vals := map[uint32][]string{}
	for s := range mem.Pairs {
		f, err := columnar.Open(dir, mem.Pairs[s])
		if err != nil {
			t.Fatal(err)
		}
		err = columnar.ReadPairs(f, func(tokens []byte, rows []uint32) error {
			for i, row := range rows {
				p := matcher.Pair{Row: row}
				copy(p.Token[:], tokens[i*columnar.TokenSize:])
				pairs = append(pairs, p)
			}
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		f, err = columnar.Open(dir, mem.Cols[s])
		if err != nil {
			t.Fatal(err)
		}
		err = columnar.ReadCols(f, len(mem.Columns), nil, func(rows []uint32, cols []*columnar.Column) error {
			for i, row := range rows {
				for _, c := range cols {
					vals[row] = append(vals[row], string(bytes.Clone(c.Value(i))))
				}
			}
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return pairs, vals
}

// beamRoom is a room whose query engine is Beam, run as binary, with a
// collaboration "c1" of alpha and bravo under settings, both lists of 1,200
// people uploaded and matched.
func beamRoom(t *testing.T, binary string, settings map[string]any) (*testRoom, *client.Client, *client.Client) {
	t.Helper()
	tr := startRoomWith(t, func(cfg *Config) { cfg.Engine = EngineConfig{Kind: EngineBeam, Binary: binary} })
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	states := tr.collab("c1", api.ModeHashed, settings, a, b)
	ctx := context.Background()
	for _, p := range []*client.Client{a, b} {
		if _, err := p.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(0, 1200)), states[p.Principal()])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	return tr, a, b
}

// TestFailedJobChargesNothing: with the Beam engine and no engine binary,
// a query fails with a server error, is not charged, and the room keeps
// serving.
func TestFailedJobChargesNothing(t *testing.T) {
	tr, a, _ := beamRoom(t, filepath.Join(t.TempDir(), "no-such-engine"), map[string]any{"allowed_dimensions": []string{"alpha.age_band"},
		"domains": map[string][]string{"alpha.age_band": {"18-24", "25-34"}}, "bounds": map[string][2]float64{"alpha.spend": {0, 500}}})
	ctx := context.Background()
	before, err := a.Budget(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{"alpha.age_band"}, Epsilon: 0.5})
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != http.StatusInternalServerError {
		t.Fatalf("the failed job answered %v", err)
	}
	after, err := a.Budget(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if after.Spent != before.Spent {
		t.Errorf("a failed job was charged: spent %v, then %v", before.Spent, after.Spent)
	}
	// A query the Beam engine cannot run is refused as such.
	_, err = a.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, KMeans: &api.KMeans{K: 2, Columns: []string{"alpha.spend"}}, Epsilon: 0.5})
	if !errors.As(err, &p) || p.Status != http.StatusBadRequest {
		t.Fatalf("a k-means query answered %v", err)
	}
	// The failed job left its log alone, in the collaboration's jobs,
	// which go with its data.
	jobs := filepath.Join(string(tr.dir), "engine", "jobs")
	if left, _ := filepath.Glob(filepath.Join(jobs, "*", "query-*", "*")); len(left) != 1 || filepath.Base(left[0]) != "job.log" {
		t.Errorf("the failed job left %v, want its log alone", left)
	}
	if err := a.Revoke(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(jobs, "*")); len(left) != 0 {
		t.Errorf("the revoked collaboration's jobs stay: %v", left)
	}
}

func TestJobPlan(t *testing.T) {
	c := &collabRecord{ID: "c1", Members: []string{"alpha", "bravo"},
		Datasets: map[string]*datasetRecord{"alpha": {Upload: "u1", Columns: []string{"band", "spend"}}, "bravo": {Upload: "u2", Columns: []string{"rev"}}},
		Match:    &matchRecord{Uploads: map[string]string{"alpha": "u1", "bravo": "u2"}},
		Settings: policy.Settings{Domains: map[string][]string{"alpha.band": {"x", "y"}}, Bounds: map[string][2]float64{"alpha.spend": {0, 100}, "bravo.rev": {-5, 5}}}}
	spec := api.QuerySpec{Version: api.QueryVersion, GroupBy: []string{"alpha.band"}, Epsilon: 1,
		Filters: []api.Filter{{Column: "alpha.spend", Op: "ge", Value: "10"}, {Column: "bravo.rev", Op: "in", Values: []string{"1", "2"}}},
		Metrics: []api.Metric{{Kind: api.MetricAvg, Column: "alpha.spend"}, {Kind: api.MetricROI, Revenue: []string{"bravo.rev"}, Cost: &api.Cost{Column: "alpha.spend"}, Level: 0.9}}}
	p, err := jobPlan(c, spec, 50, 0.5, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := jsonMarshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":"cleanroom-job/2","members":["alpha","bravo"],` +
		`"group_by":[{"member":"alpha","column":"band","domain":["x","y"]}],` +
		`"filters":[{"member":"alpha","column":"spend","op":"ge","value":"10","bounds":[0,100]},{"member":"bravo","column":"rev","op":"in","values":["1","2"]}],` +
		`"metrics":[{"kind":"avg","column":{"member":"alpha","column":"spend","lo":0,"hi":100}},` +
		`{"kind":"roi","revenue":[{"member":"bravo","column":"rev","lo":-5,"hi":5}],"cost":{"member":"alpha","column":"spend","lo":0,"hi":100},"level":0.9}],` +
		`"min_group":50,"epsilon":0.5}`
	if string(got) != want {
		t.Errorf("plan\n got %s\nwant %s", got, want)
	}
	for name, tc := range map[string]struct {
		spec   api.QuerySpec
		status int
	}{
		"unknown column":      {api.QuerySpec{GroupBy: []string{"alpha.nope"}}, http.StatusBadRequest},
		"no bounds":           {api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricSum, Column: "alpha.band"}}}, http.StatusBadRequest},
		"filter outside":      {api.QuerySpec{Filters: []api.Filter{{Column: "alpha.spend", Op: "lt", Value: "101"}}}, http.StatusBadRequest},
		"k-means":             {api.QuerySpec{KMeans: &api.KMeans{K: 2, Columns: []string{"alpha.spend"}}}, http.StatusBadRequest},
		"roi without a cost":  {api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricROI, Revenue: []string{"bravo.rev"}}}}, http.StatusBadRequest},
		"changed since match": {api.QuerySpec{GroupBy: []string{"bravo.rev"}}, http.StatusConflict},
	} {
		c := *c
		if name == "changed since match" {
			c.Match = &matchRecord{Uploads: map[string]string{"alpha": "u1", "bravo": "u0"}}
		}
		spec := tc.spec
		spec.Version, spec.Epsilon = api.QueryVersion, 1
		if spec.Metrics == nil && spec.KMeans == nil {
			spec.Metrics = []api.Metric{{Kind: api.MetricCount}}
		}
		_, err := jobPlan(&c, spec, 50, 1, 1e-8)
		var p *api.Problem
		if !errors.As(err, &p) || p.Status != tc.status {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestStaleExportsGo: exports no query reads go, whatever the room's
// engine: a newer run's match drops the older run's export on a room that
// no longer runs Beam, and the room, opening, removes the exports a stop
// left (another run's, an unknown collaboration's, an unfinished one) and
// those of a retired collaboration, and keeps the latest run's. Jobs go
// the same way, but for the logs of a live collaboration's.
func TestStaleExportsGo(t *testing.T) {
	tr, a := matchedRoom(t, api.ModeHashed, nil) // the local engine
	r := tr.room
	ctx := context.Background()
	c, err := r.collab("c1")
	if err != nil {
		t.Fatal(err)
	}
	first, err := r.exportForJob(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(first); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the older run's export was kept by a room on the local engine: %v", err)
	}
	if c, err = r.collab("c1"); err != nil {
		t.Fatal(err)
	}
	current, err := r.exportForJob(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	exports := filepath.Join(r.engineDir(), "exports")
	stale := []string{
		filepath.Join(filepath.Dir(current), "run-1-"+strings.Repeat("0", 16)),
		filepath.Join(filepath.Dir(current), "run-3-unfinished"),
		filepath.Join(exports, "0123456789abcdef", "run-1-"+strings.Repeat("1", 16)),
	}
	// Jobs a stop cut short: their partial output goes, their logs stay;
	// an unknown collaboration's jobs go whole.
	cutShort := filepath.Join(r.jobsDir("c1"), "query-1")
	unknownJob := filepath.Join(r.engineDir(), "jobs", "0123456789abcdef", "query-2")
	for _, d := range []string{cutShort, unknownJob} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"job.log", "partitions.jsonl", "stats-0.jsonl"} {
			os.WriteFile(filepath.Join(d, f), []byte("a group value"), 0o600)
		}
	}
	stale = append(stale, filepath.Dir(unknownJob))
	for _, d := range stale[:3] {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "pairs"), []byte("tokens"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tr.restart()
	for _, d := range stale {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: left after the room opened: %v", d, err)
		}
	}
	if kept, _ := os.ReadDir(cutShort); len(kept) != 1 || kept[0].Name() != "job.log" {
		t.Errorf("a job cut short keeps %v after the room opened, want its log alone", kept)
	}
	if _, err := os.Stat(filepath.Join(exports, "0123456789abcdef")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the unknown collaboration's exports directory was left: %v", err)
	}
	if _, err := columnar.ReadManifest(current); err != nil {
		t.Fatalf("the latest run's export went when the room opened: %v", err)
	}
	b, err := reconnect(tr, "bravo")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Revoke(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(current, 0o700); err != nil { // as a stop before its drop would leave it
		t.Fatal(err)
	}
	if err := os.MkdirAll(cutShort, 0o700); err != nil {
		t.Fatal(err)
	}
	tr.restart()
	if _, err := os.Stat(current); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a retired collaboration's export was left after the room opened: %v", err)
	}
	if _, err := os.Stat(r.jobsDir("c1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a retired collaboration's jobs were left after the room opened: %v", err)
	}
}

// engineGateEnv makes the test binary a Beam engine's stand-in (see
// TestMain): it answers a count query once the file the variable names
// exists, so that a test holds a job running for as long as it needs.
const engineGateEnv = "CLEANROOM_TEST_ENGINE_GATE"

func engineForTest(gate string, args []string) int {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	plan, out := fs.String("plan", "", ""), fs.String("out", "", "")
	fs.String("export", "", "")
	fs.String("runner", "", "")
	if len(args) == 0 || args[0] != "query" || fs.Parse(args[1:]) != nil {
		return 2
	}
	p, err := job.ReadPlan(*plan)
	if err != nil {
		return 2
	}
	for {
		if _, err := os.Stat(gate); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	res, err := job.Finish(p, []job.GroupStats{{Values: []string{}, Count: 1000, Metrics: [][]float64{nil}}}, p.ShareEpsilon())
	if err != nil || job.WriteResult(*out, res) != nil {
		return 1
	}
	return 0
}

// TestAbandonedEngineQueryIsCharged: a query on the Beam engine that its
// caller abandons runs to its answer and is charged and counted, as one
// it waits for is; and a member runs one engine job at a time, so that
// abandoning requests buys neither free jobs nor more of them at once.
func TestAbandonedEngineQueryIsCharged(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "open")
	t.Setenv(engineGateEnv, gate)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tr, a, b := beamRoom(t, exe, nil)
	ctx := context.Background()
	before, err := a.Budget(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	count := api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.5}
	jobs := filepath.Join(string(tr.dir), "engine", "jobs", "*", "query-*", "plan.json")
	running := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for left, _ := filepath.Glob(jobs); len(left) != n; left, _ = filepath.Glob(jobs) {
			if time.Now().After(deadline) {
				t.Fatalf("%d engine jobs running, want %d", len(left), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// alpha asks, and leaves once its job runs.
	qctx, abandon := context.WithCancel(ctx)
	asked := make(chan error, 1)
	go func() { _, err := a.Query(qctx, "c1", count); asked <- err }()
	running(1)
	abandon()
	if err := <-asked; !errors.Is(err, context.Canceled) {
		t.Fatalf("the abandoned query answered %v", err)
	}
	// Its job holds alpha's place: another is refused, bravo's runs.
	_, err = a.Query(ctx, "c1", count)
	if p := wantProblem(t, err, api.ProblemConflict); !strings.Contains(p.Title, "running on the query engine") {
		t.Fatalf("a second job of alpha's: %q", p.Title)
	}
	bravo := make(chan error, 1)
	go func() { _, err := b.Query(ctx, "c1", count); bravo <- err }()
	running(2)
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-bravo; err != nil {
		t.Fatalf("bravo's query beside alpha's job: %v", err)
	}
	// The abandoned query is charged and counted once its job answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		after, err := a.Budget(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if after.QueriesToday == before.QueriesToday+2 {
			if got, want := after.Spent-before.Spent, 1.0; got < want-1e-9 || got > want+1e-9 {
				t.Fatalf("two queries of epsilon 0.5 spent %v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned query was not counted: %d queries today, %d before", after.QueriesToday, before.QueriesToday)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// alpha's place is free again.
	if _, err := a.Query(ctx, "c1", count); err != nil {
		t.Fatalf("alpha's query after its job answered: %v", err)
	}
}

// TestAbandonedMatchIsCounted: a match whose caller leaves while it waits
// for a commit runs once the commit is done, and is counted and charged
// as one it waited for.
func TestAbandonedMatchIsCounted(t *testing.T) {
	tr, a := matchedRoom(t, api.ModeHashed, nil)
	ctx := context.Background()
	before, err := a.Budget(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	release, err := tr.room.lockForCommit(ctx, "c1", "alpha")
	if err != nil {
		t.Fatal(err)
	}
	waiting := func() int {
		tr.room.gates.mu.Lock()
		defer tr.room.gates.mu.Unlock()
		if g := tr.room.gates.m["collab/c1"]; g != nil {
			return g.refs
		}
		return 0
	}
	mctx, abandon := context.WithCancel(ctx)
	asked := make(chan error, 1)
	go func() { _, err := a.Match(mctx, "c1"); asked <- err }()
	for deadline := time.Now().Add(30 * time.Second); waiting() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the match never reached the commit's gate")
		}
	}
	abandon()
	if err := <-asked; !errors.Is(err, context.Canceled) {
		t.Fatalf("the abandoned match answered %v", err)
	}
	release()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		after, err := a.Budget(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if after.MatchesToday == before.MatchesToday+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned match was not counted: %d matches today, %d before", after.MatchesToday, before.MatchesToday)
		}
	}
}
