package job

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestMain lets this test binary play an engine's binary when the runner
// tests start it with CLEANROOM_JOB_HELPER set: it follows the job
// protocol (flags in, result file out, exit status) as the helper's mode
// says. The Beam engine itself is tested, with the room, in module
// github.com/opencleanroom/cleanroom/beam.
func TestMain(m *testing.M) {
	if mode := os.Getenv("CLEANROOM_JOB_HELPER"); mode != "" {
		os.Exit(helper(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func helper(mode string, args []string) int {
	if len(args) == 0 || args[0] != "query" {
		fmt.Fprintln(os.Stderr, "want the query verb")
		return 2
	}
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	export, plan, out := fs.String("export", "", ""), fs.String("plan", "", ""), fs.String("out", "", "")
	runner, endpoint := fs.String("runner", "", ""), fs.String("endpoint", "", "")
	fs.String("project", "", "")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	p, err := ReadPlan(*plan)
	if err != nil || *export == "" || *runner != "flink" || *endpoint != "localhost:8099" {
		fmt.Fprintln(os.Stderr, "bad invocation", err)
		return 2
	}
	switch mode {
	case "fail":
		fmt.Fprintln(os.Stderr, "the pipeline failed")
		return 1
	case "hang":
		time.Sleep(time.Minute)
		return 0
	case "wrong":
		return boolExit(WriteResult(*out, &Result{Version: Version, Columns: []string{"x"}, Rows: [][]any{}}) == nil)
	case "partial":
		// A pipeline that wrote part of its output next to the result, then
		// failed.
		os.WriteFile(filepath.Join(filepath.Dir(*out), "partitions.jsonl"), []byte(`["a group value"]`), 0o644)
		fmt.Fprintln(os.Stderr, "the pipeline failed halfway")
		return 1
	case "under-k":
		// A result releasing a group under k.
		res := &Result{Version: Version, Columns: p.Columns(), Rows: [][]any{{1}}, Declared: true, StatisticEpsilon: p.ShareEpsilon()}
		return boolExit(WriteResult(*out, res) == nil)
	case "greedy":
		// A result whose noise had more epsilon than the plan's share.
		res := &Result{Version: Version, Columns: p.Columns(), Rows: [][]any{{12}}, Declared: true, StatisticEpsilon: 2 * p.ShareEpsilon()}
		return boolExit(WriteResult(*out, res) == nil)
	}
	res, err := Finish(p, []GroupStats{{Values: []string{}, Count: 12, Metrics: [][]float64{nil}}}, p.ShareEpsilon())
	if err != nil {
		return 1
	}
	return boolExit(WriteResult(*out, res) == nil)
}

func boolExit(ok bool) int {
	if ok {
		return 0
	}
	return 1
}

func TestRunnerQuery(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &Plan{Version: Version, Members: []string{"a", "b"}, MinGroup: 10, Epsilon: 0.5, Metrics: []Metric{{Kind: Count}}}
	for _, tc := range []struct {
		mode    string
		timeout time.Duration
		want    error
	}{
		{"ok", time.Minute, nil},
		{"fail", time.Minute, ErrJob},
		{"wrong", time.Minute, ErrJob},
		{"greedy", time.Minute, ErrJob},
		{"partial", time.Minute, ErrJob},
		{"under-k", time.Minute, ErrJob},
		{"hang", 2 * time.Second, context.DeadlineExceeded},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Setenv("CLEANROOM_JOB_HELPER", tc.mode)
			work := t.TempDir()
			r := &Runner{Binary: exe, Runner: "flink", Endpoint: "localhost:8099", Options: []string{"--project", "p"}, WorkDir: work}
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			res, err := r.Query(ctx, t.TempDir(), p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			left, _ := filepath.Glob(filepath.Join(work, "query-*"))
			if tc.want == nil {
				if len(res.Rows) != 1 || fmt.Sprint(res.Rows[0]) != "[12]" || !slices.Equal(res.Columns, []string{"count"}) {
					t.Fatalf("result %+v", res)
				}
				if len(left) != 0 {
					t.Errorf("a successful job's directory was kept: %v", left)
				}
				return
			}
			if len(left) != 1 {
				t.Fatalf("a failed job's directory (with its log) was not kept: %v", left)
			}
			kept, _ := os.ReadDir(left[0])
			if len(kept) != 1 || kept[0].Name() != "job.log" {
				t.Errorf("a failed job's directory keeps %v, want its log alone", kept)
			}
		})
	}
}

func TestRunnerRefusesInvalidPlan(t *testing.T) {
	r := &Runner{Binary: "/nonexistent", WorkDir: t.TempDir()}
	_, err := r.Query(context.Background(), t.TempDir(), &Plan{Version: Version})
	if !errors.Is(err, ErrPlan) {
		t.Fatalf("got %v", err)
	}
}

func FuzzReadPlan(f *testing.F) {
	f.Add([]byte(`{"version":"cleanroom-job/2","members":["a","b"],"metrics":[{"kind":"count"}],"min_group":1,"epsilon":1}`))
	f.Add([]byte(`{"version":"cleanroom-job/2","members":["a","b"],"group_by":[{"member":"a","column":"g"}],"metrics":[{"kind":"lift"}],"min_group":1,"epsilon":1,"delta":1e-8}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "plan.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := ReadPlan(path)
		if err != nil {
			if !errors.Is(err, ErrPlan) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// A valid plan finishes, whatever its statistics.
		var groups []GroupStats
		if p.Declared() && p.DeclaredGroups() <= 16 {
			for range p.DeclaredGroups() {
				g := GroupStats{Values: make([]string, len(p.GroupBy)), Count: 100}
				for _, m := range p.Metrics {
					n := map[string]int{Count: 0, Sum: 1, Avg: 1, MatchRate: 1, Lift: 4, ROI: 1}[m.Kind]
					if m.Kind == ROI && m.Cost != nil {
						n = 2
					}
					g.Metrics = append(g.Metrics, make([]float64, n))
				}
				groups = append(groups, g)
			}
			if _, err := Finish(p, groups, p.ShareEpsilon()); err != nil {
				t.Fatalf("a valid plan did not finish: %v", err)
			}
		}
	})
}
