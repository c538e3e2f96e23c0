package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/opencleanroom/cleanroom/cleanroom/columnar"
	"github.com/opencleanroom/cleanroom/cleanroom/job"
)

// RunQuery answers plan p on the export at dir with a pipeline on the
// named runner (registered by the caller's imports), its statistics
// written under work (a directory or URL the workers can write), and
// returns the result. On Prism, which holds every element of a pipeline in
// its one process, each Privacy on Beam aggregation is a pipeline of its
// own, run one after another (see Passes).
func RunQuery(ctx context.Context, runner, dir string, p *job.Plan, work string) (*job.Result, error) {
	return runQuery(ctx, runner, dir, p, work, runner == "prism")
}

// runQuery is RunQuery, with one pipeline per aggregation if apart.
func runQuery(ctx context.Context, runner, dir string, p *job.Plan, work string, apart bool) (*job.Result, error) {
	m, err := readManifest(ctx, dir)
	if err != nil {
		return nil, err
	}
	collector, passes, err := Passes(p, m, apart)
	if err != nil {
		return nil, err
	}
	var parts []string // nil: the first pass chooses them
	var outs []io.ReadCloser
	defer func() {
		for _, r := range outs {
			r.Close()
		}
	}()
	for i, aggs := range passes {
		pl, s := beam.NewPipelineWithRoot()
		out, selected, err := Query(s, dir, m, p, aggs, parts)
		if err != nil {
			return nil, err
		}
		stats := join(work, fmt.Sprintf("stats-%d.jsonl", i))
		textio.Write(s, stats, out)
		partitions := join(work, "partitions.jsonl")
		if selected.IsValid() {
			textio.Write(s, partitions, selected)
		}
		if _, err := beam.Run(ctx, runner, pl); err != nil {
			return nil, fmt.Errorf("pipeline: the query pipeline failed: %w", err)
		}
		r, err := openRead(ctx, stats)
		if err != nil && !isNotExist(err) {
			return nil, err
		}
		if err == nil { // textio writes no file for no line
			outs = append(outs, r)
		}
		if p.Declared() {
			parts = declaredKeys(p)
		} else if selected.IsValid() {
			if parts, err = readLines(ctx, partitions); err != nil {
				return nil, err
			}
		}
		if len(parts) == 0 {
			break // no group at all: nothing more to compute
		}
	}
	rs := make([]io.Reader, len(outs))
	for i, r := range outs {
		rs[i] = r
	}
	return collector.Collect(rs...)
}

// Passes returns the collector of plan p's result and its pipelines, each
// the aggregations it computes (the indexes Query takes): all in one, or,
// if apart, one each, the group counts (and partition selection) first.
func Passes(p *job.Plan, m *columnar.Manifest, apart bool) (*Collector, [][]int, error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	l, err := newLayout(p, m)
	if err != nil {
		return nil, nil, err
	}
	eps, _, err := privacy(p)
	if err != nil {
		return nil, nil, err
	}
	c := &Collector{stats: l.stats, first: l.first, plan: p, eps: eps}
	aggs := l.aggregations()
	if !apart {
		return c, [][]int{aggs}, nil
	}
	passes := make([][]int, len(aggs))
	for i, a := range aggs {
		passes[i] = []int{a}
	}
	return c, passes, nil
}

// readLines reads a text file's lines (none if textio wrote no file).
func readLines(ctx context.Context, file string) ([]string, error) {
	r, err := openRead(ctx, file)
	if isNotExist(err) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := []string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out, sc.Err()
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, os.ErrNotExist)
}

// RunMatch matches the export at dir with a pipeline on the named runner
// and returns its exact counts, written under work first.
func RunMatch(ctx context.Context, runner, dir, work string) (*MatchCounts, error) {
	m, err := readManifest(ctx, dir)
	if err != nil {
		return nil, err
	}
	pl, s := beam.NewPipelineWithRoot()
	counts := Match(s, dir, m.Shards)
	file := join(work, "match.json")
	textio.Write(s, file, beam.ParDo(s, encodeCounts, counts))
	if _, err := beam.Run(ctx, runner, pl); err != nil {
		return nil, fmt.Errorf("pipeline: the match pipeline failed: %w", err)
	}
	var c MatchCounts
	return &c, readJSON(ctx, file, &c)
}

// RunPAIR runs op on the list in dir with a pipeline on the named runner,
// writing the results to out, and returns the number of lines.
func RunPAIR(ctx context.Context, runner, op, keyFile, saltFile, dir, out, work string) (int64, error) {
	pl, s := beam.NewPipelineWithRoot()
	total, err := PAIR(ctx, s, op, keyFile, saltFile, dir, out)
	if err != nil {
		return 0, err
	}
	file := join(work, "pair.json")
	textio.Write(s, file, beam.ParDo(s, encodeTotal, total))
	if _, err := beam.Run(ctx, runner, pl); err != nil {
		return 0, fmt.Errorf("pipeline: the PAIR pipeline failed: %w", err)
	}
	var n int64
	return n, readJSON(ctx, file, &n)
}

func encodeCounts(c MatchCounts) string { b, _ := json.Marshal(c); return string(b) }

func encodeTotal(n int64) string { return fmt.Sprint(n) }

func readJSON(ctx context.Context, file string, v any) error {
	r, err := openRead(ctx, file)
	if err != nil {
		return err
	}
	defer r.Close()
	return json.NewDecoder(r).Decode(v)
}

func init() {
	register.Function1x1[MatchCounts, string](encodeCounts)
	register.Function1x1[int64, string](encodeTotal)
}
