package cleanroom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
)

// The fault suite: damage a stopped room's files as a failing disk would
// and require that the room either refuses to start (saying why), or
// refuses the answers that meet the damage, or answers exactly what the
// undamaged room answers. Never a silent change, never a crash. Each trial
// runs the room in a child process, so that a crash is counted, not fatal
// to the suite. More trials: go test ./cleanroom -run Fault -fault.flips 400.

var faultFlips = flag.Int("fault.flips", 24, "bit flips the fault suite tries in a stopped room's files")

// faultDirEnv makes the test binary answer the fault suite's fixed
// questions of the room in its directory (see TestMain and faultAnswers).
const faultDirEnv = "CLEANROOM_TEST_FAULT_DIR"

// faultRefused is the child's exit status when the room refused to start.
const faultRefused = 3

// faultAnswers opens the room in dir, asks it the suite's questions as
// alpha and prints the answers as JSON: each a value, or the type of the
// problem that refused it. It returns the process's exit status.
func faultAnswers(dir string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Open(ctx, Config{Dir: DataDir(dir), CheckpointInterval: -1})
	if err != nil {
		fmt.Fprintf(os.Stdout, "REFUSED %v\n", err)
		return faultRefused
	}
	defer r.Close()
	out := map[string]any{}
	note := func(name string, v any, err error) {
		var p *api.Problem
		switch {
		case err == nil:
			out[name] = v
		case errors.As(err, &p):
			out[name] = "ERR " + p.Type
		default:
			out[name] = "ERR " + fmt.Sprintf("%T", err)
		}
	}
	p, err := r.principal("alpha")
	if err != nil {
		note("principal", nil, err)
	} else {
		who := &actor{principalRecord: *p, requestID: "fault"}
		v, err := r.collaboration(ctx, who, "c1")
		note("collaboration", v, err)
		b, err := r.budgetInfo(ctx, who, "c1")
		note("budget", b, err)
		for i, q := range []api.QuerySpec{
			{Metrics: []api.Metric{{Kind: api.MetricCount}, {Kind: api.MetricSum, Column: "bravo.spend"}}, GroupBy: []string{"alpha.age_band"}},
			{Metrics: []api.Metric{{Kind: api.MetricMatchRate, Member: "alpha"}}},
		} {
			q.Version = api.QueryVersion
			res, err := r.query(ctx, who, "c1", q)
			if res != nil {
				res.Budget = api.BudgetInfo{}
			}
			note(fmt.Sprintf("query %d", i), res, err)
		}
	}
	st, err := r.MatchStats("c1")
	note("match", st, err)
	note("audit", nil, verifyLog(ctx, r.audit, r.id))
	json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

// matchedPair is a hashed collaboration c1 of alpha and bravo, noise off
// (so answers compare exactly), alpha.age_band a dimension and bravo.spend
// bounded, both lists uploaded and matched.
func matchedPair(t *testing.T) (*testRoom, *client.Client) {
	t.Helper()
	settings := map[string]any{"noise_off": true, "allowed_dimensions": []string{"alpha.age_band"},
		"bounds": map[string][2]float64{"bravo.spend": {0, 500}}}
	tr, a, _, _ := readyPair(t, api.ModeHashed, settings)
	if _, err := a.Match(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	return tr, a
}

// faultPristine makes the room the trials damage copies of: a noise-off
// collaboration (so answers compare exactly), two uploads, a match and a
// query, stopped cleanly.
func faultPristine(t *testing.T) DataDir {
	t.Helper()
	tr, a := matchedPair(t)
	ctx := context.Background()
	if _, err := a.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}}); err != nil {
		t.Fatal(err)
	}
	tr.stop()
	return tr.dir
}

// trial is one child's run on a room's directory.
type trial struct {
	status  int
	answers string
	stderr  string
}

func runTrial(t *testing.T, dir DataDir) trial {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), faultDirEnv+"="+string(dir))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	tr := trial{answers: strings.TrimSpace(stdout.String()), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		tr.status = ee.ExitCode()
		if tr.status < 0 {
			tr.status = 128 // killed by a signal
		}
	default:
		t.Fatal(err)
	}
	return tr
}

// copyDir copies a stopped room's directory.
func copyDir(t *testing.T, from DataDir) DataDir {
	t.Helper()
	to := filepath.Join(t.TempDir(), "room")
	if out, err := exec.Command("cp", "-a", string(from), to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return DataDir(to)
}

// TestFaultBitFlips flips one bit at a time in the SST, value-log and
// segment files of a stopped room and classifies what the room does.
func TestFaultBitFlips(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a room and runs a child process a trial: not in -short")
	}
	pristine := faultPristine(t)
	want := runTrial(t, copyDir(t, pristine))
	if want.status != 0 || !strings.Contains(want.answers, `"audit":null`) {
		t.Fatalf("the undamaged room: status %d, answers %s, stderr %s", want.status, want.answers, want.stderr)
	}
	var files []string // relative to the room's directory
	for _, pat := range []string{filepath.Join("db", "*.sst"), filepath.Join("db", "*.vlog"), filepath.Join("segments", "*.seg")} {
		m, _ := filepath.Glob(filepath.Join(string(pristine), pat))
		for _, f := range m {
			if fi, err := os.Stat(f); err == nil && fi.Size() > 64 {
				rel, _ := filepath.Rel(string(pristine), f)
				files = append(files, rel)
			}
		}
	}
	if !slices.ContainsFunc(files, func(f string) bool { return strings.HasSuffix(f, ".seg") }) {
		t.Fatal("no segment file to damage")
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	counts := map[string]int{}
	for i := range *faultFlips {
		dir := copyDir(t, pristine)
		file := filepath.Join(string(dir), files[rng.IntN(len(files))])
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		at, bit := rng.IntN(len(b)), rng.IntN(8)
		b[at] ^= 1 << bit
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		got := runTrial(t, dir)
		where := fmt.Sprintf("flip %d: bit %d of byte %d of %s", i, bit, at, filepath.Base(file))
		switch outcome := classify(want, got); outcome {
		case "silent change", "crash":
			t.Errorf("%s: %s\n  answers %s\n  want    %s\n  stderr %s", where, outcome, got.answers, want.answers, tail(got.stderr, 2000))
			counts[outcome]++
		default:
			counts[outcome]++
		}
		os.RemoveAll(filepath.Dir(string(dir)))
	}
	t.Logf("%d bit flips in %d files: %v", *faultFlips, len(files), counts)
}

// classify names what a damaged room did, given the undamaged room's run.
func classify(want, got trial) string {
	switch {
	case got.status == faultRefused:
		if strings.Contains(got.answers, "cleanroom doctor") || strings.Contains(got.answers, "another process") {
			return "refused to start"
		}
		return "refused to start without a hint"
	case got.status != 0 || strings.Contains(got.stderr, "panic:"):
		return "crash"
	case got.answers == want.answers:
		return "no effect"
	}
	var w, g map[string]json.RawMessage
	if json.Unmarshal([]byte(want.answers), &w) != nil || json.Unmarshal([]byte(got.answers), &g) != nil {
		return "silent change"
	}
	refused := false
	for k, v := range g {
		if bytes.Equal(v, w[k]) {
			continue
		}
		if bytes.HasPrefix(v, []byte(`"ERR `)) {
			refused = true
			continue
		}
		return "silent change"
	}
	if refused {
		return "refused what met the damage"
	}
	return "silent change"
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
