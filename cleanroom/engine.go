package cleanroom

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/columnar"
	"github.com/opencleanroom/cleanroom/cleanroom/job"
)

// Query engines: where a room computes its answers.
const (
	// EngineLocal computes in the room's process (package analytics).
	EngineLocal = "local"
	// EngineBeam computes in a job of the Beam engine's binary
	// (cleanroom-beam, module github.com/opencleanroom/cleanroom/beam),
	// on the runner the operator chose: past what one machine holds.
	EngineBeam = "beam"
)

// EngineConfig chooses where a room computes query answers. Whatever the
// engine, the room authenticates, decides, debits and audits every query
// itself; only the computation moves (package job).
type EngineConfig struct {
	// Kind is EngineLocal (the default) or EngineBeam.
	Kind string
	// Binary is the Beam engine's executable (default: cleanroom-beam on
	// the PATH).
	Binary string
	// Runner is the Beam runner (prism, flink, spark, dataflow, universal;
	// default prism) and Endpoint its job service, host:port (none for
	// prism, which runs in the job's process).
	Runner, Endpoint string
	// Options are more pipeline options for the runner (for Dataflow:
	// --project, --region, --staging_location...).
	Options []string
	// WorkDir holds the exports and the jobs' directories (default: the
	// data directory's "engine"). It is the room's alone: the room, opening,
	// removes the exports there that no query of its own reads.
	WorkDir string
	// Shards splits an export (default: about a million rows per member
	// and shard, columnar.Shards).
	Shards int
}

// Check refuses an engine configuration the room could not run.
func (e *EngineConfig) Check() error {
	switch e.Kind {
	case "", EngineLocal:
		return nil
	case EngineBeam:
		if e.Shards < 0 || e.Shards > columnar.MaxShards {
			return fmt.Errorf("cleanroom: an export has 1 to %d shards", columnar.MaxShards)
		}
		return nil
	}
	return fmt.Errorf("cleanroom: unknown query engine %q (local or beam)", e.Kind)
}

// engineDir holds the engine's exports and jobs.
func (r *Room) engineDir() string {
	if r.cfg.Engine.WorkDir != "" {
		return r.cfg.Engine.WorkDir
	}
	return filepath.Join(string(r.cfg.Dir), "engine")
}

// jobRunner runs the query jobs of collaboration collab, in a directory
// of its own, which goes with its exports (dropExports).
func (r *Room) jobRunner(collab string) *job.Runner {
	e := r.cfg.Engine
	bin := e.Binary
	if bin == "" {
		bin = "cleanroom-beam"
	}
	return &job.Runner{Binary: bin, Runner: e.Runner, Endpoint: e.Endpoint, Options: e.Options, WorkDir: r.jobsDir(collab)}
}

// runQueryJob computes a query's result on the collaboration's latest
// match with the Beam engine: it resolves the spec into a job.Plan, exports
// the matched datasets (once per match run), runs the job and reads its
// answer. It is runQuery's counterpart; the caller decides, debits and
// audits as for any query.
func (r *Room) runQueryJob(ctx context.Context, c *collabRecord, spec api.QuerySpec, minGroup int, eps, delta float64) (*api.QueryResult, error) {
	plan, err := jobPlan(c, spec, minGroup, eps, delta)
	if err != nil {
		return nil, err
	}
	dir, err := r.exportForJob(ctx, c)
	if err != nil {
		return nil, err
	}
	out, err := r.jobRunner(c.ID).Query(ctx, dir, plan)
	if errors.Is(err, job.ErrPlan) {
		return nil, badRequest("%v", err)
	}
	if errors.Is(err, job.ErrJob) {
		// The job's log is the operator's: it may say anything the
		// pipeline printed. The room's log names where it is.
		r.log.Error("query job failed", "collab", c.ID, "error", err)
		return nil, errors.New("cleanroom: the query engine's job failed")
	}
	if err != nil {
		return nil, err
	}
	res := &api.QueryResult{Columns: out.Columns, Rows: out.Rows, Partitions: api.PartitionsSelected,
		MinGroup: minGroup, Epsilon: eps, Delta: delta, Noise: !c.Settings.NoiseOff}
	if out.Declared {
		withheld := out.Withheld
		res.Partitions, res.Withheld = api.PartitionsDeclared, &withheld
	}
	if res.Rows == nil {
		res.Rows = [][]any{}
	}
	return res, nil
}

// jobPlan resolves a spec against a collaboration's settings and datasets,
// as plan does for package analytics, without reading any data.
func jobPlan(c *collabRecord, spec api.QuerySpec, k int, eps, delta float64) (*job.Plan, error) {
	if spec.KMeans != nil {
		return nil, badRequest("k-means profiles are computed by the room's local engine only, and this room runs queries on Beam")
	}
	p := &job.Plan{Version: job.Version, Members: c.Members, MinGroup: k, Epsilon: eps, Delta: delta, NoiseOff: c.Settings.NoiseOff}
	jr := jobResolver{c}
	for _, g := range spec.GroupBy {
		ref, err := jr.ref(g)
		if err != nil {
			return nil, err
		}
		p.GroupBy = append(p.GroupBy, job.Group{Ref: ref, Domain: c.Settings.Domains[g]})
	}
	for _, f := range spec.Filters {
		jf := job.Filter{Op: f.Op, Value: f.Value, Values: f.Values}
		var err error
		switch f.Op {
		case "eq", "ne", "in":
			jf.Ref, err = jr.ref(f.Column)
		case "lt", "le", "gt", "ge":
			var b job.Bounded
			if b, err = jr.bounded(f.Column); err == nil {
				jf.Ref, jf.Bounds = b.Ref, &[2]float64{b.Lo, b.Hi}
			}
		default:
			err = badRequest("filter ops are eq, ne, in, lt, le, gt and ge")
		}
		if err != nil {
			return nil, err
		}
		p.Filters = append(p.Filters, jf)
	}
	for _, m := range spec.Metrics {
		jm, err := jr.metric(m)
		if err != nil {
			return nil, err
		}
		p.Metrics = append(p.Metrics, jm)
	}
	if err := p.Validate(); err != nil {
		return nil, badRequest("%v", err)
	}
	return p, nil
}

// jobResolver resolves a spec's columns against one collaboration.
type jobResolver struct{ c *collabRecord }

func (jr jobResolver) ref(name string) (job.Ref, error) {
	c := jr.c
	member, col, ok := strings.Cut(name, ".")
	ds := c.Datasets[member]
	if !ok || !slices.Contains(c.Members, member) || ds == nil {
		return job.Ref{}, badRequest("columns are named member.column, after a member that uploaded")
	}
	if ds.Upload != c.Match.Uploads[member] {
		return job.Ref{}, conflict("the dataset of %s changed since the match; match again", member)
	}
	if !slices.Contains(ds.Columns, col) {
		return job.Ref{}, badRequest("the dataset of %s has no column %s", member, col)
	}
	return job.Ref{Member: member, Column: col}, nil
}

func (jr jobResolver) bounded(name string) (job.Bounded, error) {
	ref, err := jr.ref(name)
	if err != nil {
		return job.Bounded{}, err
	}
	b, ok := jr.c.Settings.Bounds[name]
	if !ok {
		return job.Bounded{}, badRequest("%s has no declared bounds in this collaboration: sums, averages, clusters and numeric filters need them", name)
	}
	return job.Bounded{Ref: ref, Lo: b[0], Hi: b[1]}, nil
}

func (jr jobResolver) metric(m api.Metric) (job.Metric, error) {
	jm := job.Metric{Kind: m.Kind, Level: m.Level}
	switch m.Kind {
	case api.MetricSum, api.MetricAvg:
		b, err := jr.bounded(m.Column)
		jm.Column = &b
		return jm, err
	case api.MetricMatchRate:
		if !slices.Contains(jr.c.Members, m.Member) || jr.c.Datasets[m.Member] == nil {
			return jm, badRequest("match_rate names a member of the collaboration")
		}
		jm.Member = m.Member
	case api.MetricROI:
		for _, rv := range m.Revenue {
			b, err := jr.bounded(rv)
			if err != nil {
				return jm, err
			}
			jm.Revenue = append(jm.Revenue, b)
		}
		if m.Cost == nil {
			return jm, badRequest("roi needs a cost: a value or a column")
		}
		jm.CostValue = m.Cost.Value
		if m.Cost.Column != "" {
			b, err := jr.bounded(m.Cost.Column)
			if err != nil {
				return jm, err
			}
			jm.Cost = &b
		}
	case api.MetricLift:
		exposed, err := jr.ref(m.Exposed)
		if err != nil {
			return jm, err
		}
		converted, err := jr.ref(m.Converted)
		if err != nil {
			return jm, err
		}
		jm.Exposed, jm.Converted = &exposed, &converted
	}
	return jm, nil
}
