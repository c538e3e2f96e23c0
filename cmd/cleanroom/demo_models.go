package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/cleanroom/model"
	"github.com/opencleanroom/cleanroom/crypto"
)

// The demo's second half: from insight to campaign. The course platform
// trains a lookalike model of the fitness app's converters from its own
// columns, scores its whole list on its own machine, and activates a
// consented segment of the overlap for a joint campaign.

// lookalikeReport is what the demo's --json says of it.
type lookalikeReport struct {
	ModelEpsilon float64  `json:"model_epsilon"`
	Trees        int      `json:"model_trees"`
	Accuracy     *float64 `json:"model_accuracy"`
	RowsScored   int64    `json:"rows_scored"`
	// AUCOutside is the AUC of the scores against the truth among the
	// course platform's customers the fitness app does not have: what the
	// model finds beyond the overlap (the demo knows every person).
	AUCOutside float64 `json:"model_auc_outside_overlap"`
	Audience   int     `json:"audience"`
	// AudienceRefused is the room's reason when it refused the audience
	// (too small, at small --rows).
	AudienceRefused string `json:"audience_refused,omitempty"`
	// budget is the ledger after the model, the demo's last charge.
	budget api.BudgetInfo
}

// tooSmall is the room's refusal of an audience its guards turned down: in
// the demo, below the minimum (one reason covers both guards, so that which
// one refused tells nothing about a person).
const tooSmall = "the audience is smaller than the collaboration's minimum audience, or differs from one you received before by fewer than the collaboration's minimum group size"

// demoFeatures are the course platform's columns the model reads.
var demoFeatures = []string{brandA + ".age_band", brandA + ".revenue", brandA + ".exposed"}

// lookalike runs the demo's second half. phase closes each of its steps'
// clocks (the report's phase_seconds and phase_cpu_seconds): "model"
// (training in the room), "scoring" (on the brand's machine, with the
// AUC of the scores) and "activation".
func lookalike(ctx context.Context, cfg demoConfig, clients map[string]*client.Client, files map[string]string, state client.StateDir, overlap int, phase func(string)) (*lookalikeReport, error) {
	say := cfg.say
	c := clients[brandA]
	m, res, err := c.TrainModel(ctx, demoCollab, api.ModelSpec{Version: api.ModelSpecVersion,
		Label: api.Filter{Column: brandB + ".conversions"}, Features: demoFeatures, Epsilon: 0.5})
	if err != nil {
		return nil, fmt.Errorf("training the model: %w", err)
	}
	rep := &lookalikeReport{ModelEpsilon: res.Epsilon, Trees: len(m.Trees), Accuracy: m.Accuracy, budget: res.Budget}
	acc := "withheld"
	if m.Accuracy != nil {
		acc = fmt.Sprintf("%.2f", *m.Accuracy)
	}
	say("\n%s trained a lookalike model of %s's converters from its own %s (random decision trees, Laplace leaf counts, epsilon %g; noisy held-out accuracy %s)",
		brandA, brandB, strings.Join(demoFeatures, ", "), res.Epsilon, acc)
	phase("model")

	// Scored on the course platform's machine, without the room.
	in, err := os.Open(files[brandA])
	if err != nil {
		return nil, err
	}
	defer in.Close()
	// The scores stream, as ScoreCSV writes them, into the AUC, a row at a
	// time, on the other core: at 10M rows, held in memory as text and
	// records they were gigabytes, and written to a file and read back
	// they cost the kernel more than the AUC costs.
	if rep.RowsScored, rep.AUCOutside, err = scoreAndRank(m, in, cfg.seed, overlap); err != nil {
		return nil, err
	}
	say("%s scored all %d of its customers on its own machine; among those %s does not have, the scores rank its future converters with an AUC of %.2f",
		brandA, rep.RowsScored, brandB, rep.AUCOutside)
	phase("scoring")

	// The joint campaign's audience: consented in the settings, exact.
	audience, err := os.OpenFile(filepath.Join(cfg.work, brandA+"-audience.csv"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer audience.Close()
	aw := bufio.NewWriterSize(audience, 1<<20)
	_, n, err := c.ActivateCSV(ctx, demoCollab, api.SegmentSpec{Version: api.SegmentVersion,
		Filters: []api.Filter{{Column: brandA + ".age_band", Op: "in", Values: []string{"18-24", "25-34"}}}},
		client.AudienceInput{Input: files[brandA], IDColumn: "email", Kind: crypto.KindEmail, State: state}, aw)
	var p *api.Problem
	if errors.As(err, &p) && slices.Contains(p.Reasons, tooSmall) {
		// Small demo lists: the room refuses, as it must.
		rep.AudienceRefused = tooSmall
		say("%s asked to activate \"shared customers aged 18-34\": refused, %s (run the demo with more --rows)", brandA, tooSmall)
		phase("activation")
		return rep, nil
	}
	if err != nil {
		return nil, fmt.Errorf("activating the segment: %w", err)
	}
	rep.Audience = n
	if err := aw.Flush(); err != nil {
		return nil, err
	}
	if err := audience.Close(); err != nil {
		return nil, err
	}
	say("%s activated the consented segment \"shared customers aged 18-34\": %d of its own rows, exactly (outside the privacy budget, as the settings say)", brandA, n)
	phase("activation")
	return rep, nil
}

// outsideAUC is the AUC of the scores (ScoreCSV's output) against
// whether each person really converted, among the course platform's customers outside the overlap
// (person ids from overlap on, in the demo's data).
//
// A score has six decimals in [0, 1] (ScoreCSV writes them so): it is
// counted by its millionths, people and converters for each of the
// 1,000,001 possible scores, so the ranks come from running totals in one
// pass, without sorting the scores. Ties are the people of one score, as
// a sort would group them, and every sum is exact (halves, below 2^53).
func outsideAUC(scores io.Reader, seed uint64, overlap int) (float64, error) {
	br := bufio.NewReaderSize(scores, 1<<20)
	if _, err := br.ReadSlice('\n'); err != nil { // the header
		return 0, err
	}
	who := newPeople(seed)
	people := make([]uint32, scoreSteps+1)
	converters := make([]uint32, scoreSteps+1)
	for {
		line, err := br.ReadSlice('\n')
		if err == io.EOF && len(line) == 0 {
			break
		}
		if err != nil && err != io.EOF {
			return 0, err
		}
		first, last, err := firstLastFields(line)
		if err != nil {
			return 0, err
		}
		id, err := strconv.Atoi(string(bytes.TrimSuffix(bytes.TrimPrefix(first, []byte("customer")), []byte("@example.com"))))
		if err != nil || id < overlap {
			continue
		}
		s, ok := millionths(last)
		if !ok {
			return 0, errors.New("a score in the scores is not a number from 0 to 1 with six decimals")
		}
		people[s]++
		if who.person(id).conversions > 0 {
			converters[s]++
		}
	}
	var pos, below, rankSum float64
	for s := range people {
		n, p := float64(people[s]), float64(converters[s])
		// The people of this score hold ranks below+1 to below+n: each
		// converter among them gets their mean.
		rankSum += p * (2*below + n + 1) / 2
		pos += p
		below += n
	}
	neg := below - pos
	if pos == 0 || neg == 0 {
		return 0.5, nil
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg), nil
}

// scoreSteps is how many steps of a millionth a score in [0, 1] takes.
const scoreSteps = 1_000_000

// millionths reads a score written with six decimals, 0.000000 to
// 1.000000, as a whole number of millionths.
func millionths(b []byte) (int, bool) {
	if len(b) != 8 || b[1] != '.' || b[0] != '0' && b[0] != '1' {
		return 0, false
	}
	n := int(b[0] - '0')
	for _, c := range b[2:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = 10*n + int(c-'0')
	}
	return n, n <= scoreSteps
}

// scoreAndRank scores the CSV in with m and returns the rows scored and
// the AUC of their scores outside the overlap (outsideAUC), which reads
// the scores as they are written.
func scoreAndRank(m *model.Model, in io.Reader, seed uint64, overlap int) (int64, float64, error) {
	pr, pw := io.Pipe()
	var n int64
	scored := make(chan error, 1)
	go func() {
		var err error
		n, err = m.ScoreCSV(bufio.NewReaderSize(in, 1<<20), pw, "score")
		pw.CloseWithError(err) // nil: the reader sees the end
		scored <- err
	}()
	auc, err := outsideAUC(pr, seed, overlap)
	pr.CloseWithError(errAUCStopped) // a scorer still writing stops
	if serr := <-scored; serr != nil && serr != errAUCStopped {
		return 0, 0, serr
	}
	if err != nil {
		return 0, 0, err
	}
	return n, auc, nil
}

// errAUCStopped is what the scorer's writes return once the AUC stopped
// reading.
var errAUCStopped = errors.New("the AUC stopped reading the scores")

// firstLastFields returns the first and last fields of one CSV line of the
// scores: split at its first and last commas, or, if it has a quote, parsed
// by encoding/csv (the course platform's emails are never quoted, nor is
// anything ScoreCSV writes after them).
func firstLastFields(line []byte) (first, last []byte, err error) {
	line = bytes.TrimRight(line, "\r\n")
	if bytes.IndexByte(line, '"') >= 0 {
		r, err := csv.NewReader(bytes.NewReader(line)).Read()
		if err != nil {
			return nil, nil, err
		}
		return []byte(r[0]), []byte(r[len(r)-1]), nil
	}
	i, j := bytes.IndexByte(line, ','), bytes.LastIndexByte(line, ',')
	if i < 0 {
		return nil, nil, errors.New("a line of the scores has one field")
	}
	return line[:i], line[j+1:], nil
}
