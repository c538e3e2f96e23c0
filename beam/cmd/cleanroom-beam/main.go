// Command cleanroom-beam runs a clean room's work as Apache Beam
// pipelines (package pipeline), past what one machine holds:
//
//	cleanroom-beam query --export DIR --plan plan.json --out result.json [--runner prism] [beam options]
//	cleanroom-beam match --export DIR --out counts.json [--runner prism] [beam options]
//	cleanroom-beam encrypt --key-file F --salt-file F --in DIR --out DIR [--runner prism] [beam options]
//	cleanroom-beam reencrypt --key-file F --in DIR --out DIR [--runner prism] [beam options]
//
// A room started with serve --engine beam runs the query verb, one process
// per query (package cleanroom/job), and reads its result file. match
// prints a match's exact figures, for the operator. encrypt and reencrypt
// are a partner's PAIR encryption of a list split into files, on its own
// cluster.
//
// The runner is prism (in this process, the default), flink, spark,
// dataflow or universal, with Beam's own options (--endpoint for a job
// service, --environment_type, Dataflow's --project and --region...).
// The same binary is the workers' (Beam calls it with --worker): its flags
// are Beam's global ones.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/dataflow"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/flink"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/spark"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/universal"

	"github.com/opencleanroom/cleanroom/beam/pipeline"
	"github.com/opencleanroom/cleanroom/cleanroom/job"
)

const usage = `Usage:
  cleanroom-beam query --export DIR --plan FILE --out FILE [--work DIR] [--runner prism]
  cleanroom-beam match --export DIR --out FILE [--work DIR] [--runner prism]
  cleanroom-beam encrypt --key-file F --salt-file F --in DIR --out DIR [--runner prism]
  cleanroom-beam reencrypt --key-file F --in DIR --out DIR [--runner prism]

Runs a clean room's query, match, or a partner's PAIR encryption as an
Apache Beam pipeline. The runner is prism (in this process), flink, spark,
dataflow or universal; Beam's options (--endpoint, --environment_type,
--project...) pass through. See docs/SCALING.md.
`

var (
	export   = flag.String("export", "", "the room's export of the collaboration's datasets (directory or URL)")
	planFile = flag.String("plan", "", "query: the plan the room wrote (JSON)")
	out      = flag.String("out", "", "query, match: the result file; encrypt, reencrypt: the output directory or URL")
	work     = flag.String("work", "", "where the pipeline writes its intermediate output, reachable by the workers (default: --out's directory)")
	in       = flag.String("in", "", "encrypt, reencrypt: the list's directory or URL, one file per part, one value a line")
	keyFile  = flag.String("key-file", "", "encrypt, reencrypt: this partner's scalar, standard base64, mode 0600 (on every worker)")
	saltFile = flag.String("salt-file", "", "encrypt: the collaboration secret, 64 hex characters, mode 0600 (on every worker)")
)

func main() {
	verb, args := "", os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		verb, args = args[0], args[1:]
	}
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	if err := flag.CommandLine.Parse(args); err != nil {
		os.Exit(2)
	}
	// On a worker, Beam takes over here and does not return.
	beam.Init()
	runner := *runners.Runner
	if runner == "" {
		runner = "prism"
	}
	ctx := context.Background()
	var err error
	switch verb {
	case "query":
		err = runQuery(ctx, runner)
	case "match":
		err = runMatch(ctx, runner)
	case "encrypt", "reencrypt":
		err = runPAIR(ctx, runner, verb)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cleanroom-beam %s: %v\n", verb, err)
		os.Exit(1)
	}
}

func required(names ...string) error {
	for _, n := range names {
		if flag.Lookup(n).Value.String() == "" {
			return fmt.Errorf("--%s is required", n)
		}
	}
	return nil
}

// workDir is where a pipeline writes its intermediate output.
func workDir() string {
	if *work != "" {
		return *work
	}
	return filepath.Dir(*out)
}

func runQuery(ctx context.Context, runner string) error {
	if err := required("export", "plan", "out"); err != nil {
		return err
	}
	p, err := job.ReadPlan(*planFile)
	if err != nil {
		return err
	}
	res, err := pipeline.RunQuery(ctx, runner, *export, p, workDir())
	if err != nil {
		return err
	}
	return job.WriteResult(*out, res)
}

func runMatch(ctx context.Context, runner string) error {
	if err := required("export", "out"); err != nil {
		return err
	}
	counts, err := pipeline.RunMatch(ctx, runner, *export, workDir())
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(counts, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o600)
}

func runPAIR(ctx context.Context, runner, op string) error {
	need := []string{"key-file", "in", "out"}
	if op == pipeline.OpEncrypt {
		need = append(need, "salt-file")
	}
	if err := required(need...); err != nil {
		return err
	}
	w := *work
	if w == "" {
		w = os.TempDir()
	}
	n, err := pipeline.RunPAIR(ctx, runner, op, *keyFile, *saltFile, *in, *out, w)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: %d lines\n", op, n)
	return nil
}
