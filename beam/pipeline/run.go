package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/textio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/opencleanroom/cleanroom/cleanroom/job"
)

// RunQuery answers plan p on the export at dir with a pipeline on the
// named runner (registered by the caller's imports), its statistics
// written under work (a directory or URL the workers can write), and
// returns the result.
func RunQuery(ctx context.Context, runner, dir string, p *job.Plan, work string) (*job.Result, error) {
	m, err := readManifest(ctx, dir)
	if err != nil {
		return nil, err
	}
	pl, s := beam.NewPipelineWithRoot()
	out, collector, err := Query(s, dir, m, p)
	if err != nil {
		return nil, err
	}
	stats := join(work, "stats.jsonl")
	textio.Write(s, stats, out)
	if _, err := beam.Run(ctx, runner, pl); err != nil {
		return nil, fmt.Errorf("pipeline: the query pipeline failed: %w", err)
	}
	r, err := openRead(ctx, stats)
	if isNotExist(err) {
		// No group at all: textio writes no file for no line.
		return collector.Collect(strings.NewReader(""))
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return collector.Collect(r)
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
