package job

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// Runner runs queries as jobs of an engine's binary.
type Runner struct {
	// Binary is the engine's executable (cleanroom-beam).
	Binary string
	// Runner is the Beam runner: prism (in the job's process), flink,
	// spark, dataflow, or universal for any portable job service.
	Runner string
	// Endpoint is the runner's job service (host:port); empty for prism,
	// which then starts in the job's process.
	Endpoint string
	// Options are more pipeline options passed through to the binary
	// (for Dataflow: --project, --region, --staging_location...).
	Options []string
	// WorkDir holds each job's directory: its plan, result and log.
	WorkDir string
}

// ErrJob means the engine's job failed (it exited with an error, or wrote
// no valid result). The room answers the query with an error and charges
// nothing; the job's log, in the job's directory, says why.
var ErrJob = errors.New("job: the query engine's job failed")

// Query runs plan against the export in dir and returns its result, once
// CheckResult accepts it. The job's directory is removed when it
// succeeds; when it fails, its log alone is kept: what else the engine
// wrote there (a pipeline's partial output: group values, noisy
// statistics) is data the room keeps no longer than the query.
func (r *Runner) Query(ctx context.Context, dir string, p *Plan) (res *Result, err error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.WorkDir, 0o700); err != nil {
		return nil, err
	}
	jobDir, err := os.MkdirTemp(r.WorkDir, "query-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err == nil {
			os.RemoveAll(jobDir)
		} else {
			KeepLog(jobDir)
		}
	}()
	planFile, outFile, logFile := filepath.Join(jobDir, "plan.json"), filepath.Join(jobDir, "result.json"), filepath.Join(jobDir, "job.log")
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(planFile, b, 0o600); err != nil {
		return nil, err
	}
	args := append([]string{"query", "--export", dir, "--plan", planFile, "--out", outFile}, r.runnerArgs()...)
	if err := r.run(ctx, logFile, args); err != nil {
		return nil, fmt.Errorf("%w: %w (log: %s)", ErrJob, err, logFile)
	}
	if res, err = ReadResult(outFile); err != nil {
		return nil, fmt.Errorf("%w: %w (log: %s)", ErrJob, err, logFile)
	}
	if !slices.Equal(res.Columns, p.Columns()) || res.Declared != p.Declared() ||
		!p.NoiseOff && !(res.StatisticEpsilon > 0 && res.StatisticEpsilon <= p.ShareEpsilon()) {
		return nil, fmt.Errorf("%w: its result does not answer the plan (log: %s)", ErrJob, logFile)
	}
	if err := p.CheckResult(res); err != nil {
		return nil, fmt.Errorf("%w: %w (log: %s)", ErrJob, err, logFile)
	}
	return res, nil
}

// KeepLog empties a job's directory but for its log.
func KeepLog(jobDir string) {
	entries, _ := os.ReadDir(jobDir)
	for _, e := range entries {
		if e.Name() != "job.log" {
			os.RemoveAll(filepath.Join(jobDir, e.Name()))
		}
	}
}

// runnerArgs are the Beam options every job gets.
func (r *Runner) runnerArgs() []string {
	runner := r.Runner
	if runner == "" {
		runner = "prism"
	}
	args := []string{"--runner", runner}
	if r.Endpoint != "" {
		args = append(args, "--endpoint", r.Endpoint)
	}
	return append(args, r.Options...)
}

// run runs the binary with args, its output to logFile, until it exits or
// ctx is done (then it is killed).
func (r *Runner) run(ctx context.Context, logFile string, args []string) error {
	log, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, r.Binary, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// ReadResult reads a result file, numbers as they were written (json.Number).
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var res Result
	if err := d.Decode(&res); err != nil {
		return nil, err
	}
	if res.Version != Version {
		return nil, fmt.Errorf("job: result version %q, want %q", res.Version, Version)
	}
	for _, row := range res.Rows {
		if len(row) != len(res.Columns) {
			return nil, errors.New("job: a result row does not match its columns")
		}
	}
	return &res, nil
}

// WriteResult writes res to path (the engine's side).
func WriteResult(path string, res *Result) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// ReadPlan reads and validates a plan file (the engine's side).
func ReadPlan(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p Plan
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	return &p, p.Validate()
}
