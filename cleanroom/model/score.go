package model

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// reach returns the index of the node of tree t that a person whose
// feature values are x reaches: the deepest the model holds on the
// person's path. A categorical value outside the domain, or a withheld
// child, stops the path at the node.
func (m *Model) reach(t *Tree, x func(f int) float64) int {
	i := 0
	for {
		n := &t.Nodes[i]
		if n.Feature < 0 {
			return i
		}
		v := x(n.Feature)
		var c int
		if m.Features[n.Feature].Kind == Numeric {
			c = n.Children[0]
			if v >= n.Threshold {
				c = n.Children[1]
			}
		} else {
			if v < 0 || int(v) >= len(n.Children) {
				return i
			}
			c = n.Children[int(v)]
		}
		if c < 0 {
			return i
		}
		i = c
	}
}

// score is the mean over the trees of the share of label-true people at
// the node a person reaches, each share smoothed by one person of either
// label ((true + 1) / (all + 2)); 0.5 for a model without trees.
func (m *Model) score(x func(f int) float64) float64 {
	if len(m.Trees) == 0 {
		return 0.5
	}
	var sum float64
	for t := range m.Trees {
		c := m.Trees[t].Nodes[m.reach(&m.Trees[t], x)].Counts
		sum += (float64(c[1]) + 1) / (float64(c[0]+c[1]) + 2)
	}
	return sum / float64(len(m.Trees))
}

// Score returns the model's probability that the label is true for a
// person whose values of the features are values, as they appear in the
// member's list (values[i] of Features[i]).
func (m *Model) Score(values []string) float64 {
	x := make([]float64, len(m.Features))
	for i := range m.Features {
		if i < len(values) {
			x[i] = m.Features[i].Value(values[i])
		} else {
			x[i] = m.Features[i].Value("")
		}
	}
	return m.score(func(f int) float64 { return x[f] })
}

// Errors of ScoreCSV, each with what to do in its text.
var (
	// ErrMissingColumn means the input's header lacks a feature's column:
	// score the list the member uploaded, with its header.
	ErrMissingColumn = errors.New("model: the input's header lacks a column the model's features read")
	// ErrScoreColumn means the input already has a column named like the
	// score: rename it, or name the score column otherwise.
	ErrScoreColumn = errors.New("model: the input already has a column named like the score")
)

// bom is the UTF-8 byte-order mark, which a header may start with.
var bom = []byte{0xEF, 0xBB, 0xBF}

// ScoreCSV scores every row of a CSV list with a header row: it writes the
// header with column appended, then each row, in order, with its score
// (six decimals). Rows need no identifier: the model reads only its
// features' columns. It returns the rows scored. Errors name line numbers,
// never values.
func (m *Model) ScoreCSV(in io.Reader, out io.Writer, column string) (int64, error) {
	br := bufio.NewReaderSize(in, 1<<16)
	if head, err := br.Peek(len(bom)); err == nil && bytes.Equal(head, bom) {
		br.Discard(len(bom))
	}
	r := csv.NewReader(br)
	r.ReuseRecord = true
	header, err := r.Read()
	if err == io.EOF {
		return 0, errors.New("model: the input is empty: it needs a header row")
	}
	if err != nil {
		return 0, csvProblem(err)
	}
	header = slices.Clone(header)
	if slices.Contains(header, column) {
		return 0, fmt.Errorf("%w (%s)", ErrScoreColumn, column)
	}
	cols := make([]int, len(m.Features))
	for i, f := range m.Features {
		cols[i] = slices.Index(header, f.Column)
		if cols[i] < 0 {
			return 0, fmt.Errorf("%w: %s (feature %s)", ErrMissingColumn, f.Column, f.Name)
		}
	}
	bw := bufio.NewWriterSize(out, 1<<16)
	w := csv.NewWriter(bw)
	if err := w.Write(append(header, column)); err != nil {
		return 0, err
	}
	x := make([]float64, len(m.Features))
	get := func(f int) float64 { return x[f] }
	var n int64
	var buf []byte
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, csvProblem(err)
		}
		for i, c := range cols {
			x[i] = m.Features[i].Value(rec[c])
		}
		buf = strconv.AppendFloat(buf[:0], m.score(get), 'f', 6, 64)
		if err := w.Write(append(rec, string(buf))); err != nil {
			return n, err
		}
		n++
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// csvProblem names a malformed CSV's line, never its content.
func csvProblem(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("model: the CSV is malformed at line %d: %w", pe.Line, pe.Err)
	}
	return err
}
