package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/model"
)

func runModel(e *env, args []string) error {
	return runSubcommand(e, "model", `Usage:
  cleanroom model train --room URL --key KEY --collab ID --spec FILE --out MODEL.json
  cleanroom model apply --model MODEL.json --input LIST.csv --out SCORES.csv [--column score]

train asks the room for a lookalike model of the matched people under
differential privacy (a spec, version `+api.ModelSpecVersion+`), charged
to the budget like a query; apply scores every row of your own list with
it, on this machine, without the room.
`, args, []subcommand{{"train", runModelTrain}, {"apply", runModelApply}})
}

func runModelTrain(e *env, args []string) error {
	v := newCollabVerb(e, "model train", "--room URL --key KEY --collab ID --spec FILE --out MODEL.json", `
Trains a lookalike model on the matched people: a forest of random decision
trees whose splits come from the declared domains and bounds of your own
columns (the features) and whose leaf counts of the label carry Laplace
noise, charged to the privacy budget. The spec (JSON):
  {"version": "`+api.ModelSpecVersion+`",
   "label": {"column": "pulsefit.conversions"},        or {"column": ..., "op": "ge", "value": "50"}
   "features": ["coursely.age_band", "coursely.revenue"],
   "epsilon": 0.5, "trees": 10, "depth": 2, "holdout": 0.2}
The model file (`+model.Format+`) holds the trees and noisy counts only;
score your list with cleanroom model apply.`)
	spec := v.String("spec", "", "the model spec file (required)")
	out := v.String("out", "", "where to write the model file (required)")
	c, err := v.start(args)
	if err != nil {
		return err
	}
	if *spec == "" || *out == "" {
		return usagef("--spec and --out are required")
	}
	b, err := os.ReadFile(*spec)
	if err != nil {
		return err
	}
	var s api.ModelSpec
	if err := decodeJSONFile(*spec, b, &s); err != nil {
		return withHint(fmt.Errorf("the spec is not a model spec: %w", err),
			`e.g. {"version":"`+api.ModelSpecVersion+`","label":{"column":"pulsefit.conversions"},"features":["coursely.age_band"]}`)
	}
	m, res, err := c.TrainModel(e.Context(), *v.collab, s)
	if err != nil {
		return explain(err)
	}
	file, err := m.Marshal()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(*out, file); err != nil {
		return err
	}
	return v.print(res, func() {
		noise := fmt.Sprintf("epsilon %g", res.Epsilon)
		if !res.Noise {
			noise = "EXACT: noise off by the collaboration's settings"
		}
		acc := "no held-out accuracy"
		if m.Accuracy != nil {
			acc = fmt.Sprintf("noisy held-out accuracy %.3f", *m.Accuracy)
		}
		fmt.Fprintf(e.stdout, "wrote %s: %d trees of depth %d predicting %s from %d features (%s; %s; budget %g of %g left)\n",
			*out, len(m.Trees), m.Depth, m.Label, len(m.Features), noise, acc, res.Budget.Remaining, res.Budget.Total)
	})
}

func runModelApply(e *env, args []string) error {
	fs := newFlags(e, "model apply", "--model MODEL.json --input LIST.csv --out SCORES.csv [--column score]", `
Scores every row of your own list with a model file, on this machine: the
output is the input, in the same order, with a score column (the model's
probability of its label, six decimals). Rows need no identifier, only the
columns the model's features name. The room is not involved.`)
	modelFile := fs.String("model", "", "the model file, from cleanroom model train (required)")
	input := fs.String("input", "", "your list: a CSV file with a header row (required)")
	out := fs.String("out", "", "where to write the scored list (required)")
	column := fs.String("column", "score", "the name of the score column")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *modelFile == "" || *input == "" || *out == "" {
		return usagef("--model, --input and --out are required")
	}
	if err := outIsNotInput(*out, *input); err != nil {
		return err
	}
	b, err := os.ReadFile(*modelFile)
	if err != nil {
		return err
	}
	m, err := model.Parse(b)
	if err != nil {
		return withHint(err, "pass the file cleanroom model train wrote")
	}
	in, err := os.Open(*input)
	if err != nil {
		return err
	}
	defer in.Close()
	n, err := writeAtomic(*out, func(f *os.File) (int64, error) { return m.ScoreCSV(in, f, *column) })
	switch {
	case errors.Is(err, model.ErrMissingColumn):
		return withHint(err, "score the list the model's member uploaded: its header names the features' columns")
	case errors.Is(err, model.ErrScoreColumn):
		return withHint(err, "name the score column otherwise with --column")
	case err != nil:
		return err
	}
	fmt.Fprintf(e.stdout, "scored %d rows of %s with the model of %s; wrote %s\n", n, filepath.Base(*input), m.Label, *out)
	return nil
}

// outIsNotInput refuses an --out that is the --input file (by any name):
// the output would replace the list it is made from.
func outIsNotInput(out, input string) error {
	o, err := os.Stat(out)
	if err != nil {
		return nil // a new file
	}
	if i, err := os.Stat(input); err == nil && os.SameFile(o, i) {
		return usagef("--out names the --input list, which the output would replace: choose another file")
	}
	return nil
}

// writeFileAtomic writes b to path through a temporary file and a rename,
// so that a reader never sees half a file.
func writeFileAtomic(path string, b []byte) error {
	_, err := writeAtomic(path, func(f *os.File) (int64, error) { n, err := f.Write(b); return int64(n), err })
	return err
}

// writeAtomic writes path with fn through a temporary file in its
// directory, renamed into place only if fn and the close succeed.
func writeAtomic(path string, fn func(f *os.File) (int64, error)) (int64, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return 0, withHint(fmt.Errorf("%s is a directory", path), "name a file to write")
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, err
	}
	n, err := fn(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return n, err
	}
	return n, nil
}
