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

// scoreCSVRef is ScoreCSV as encoding/csv and Model.score make it, a
// record at a time on one core: the reference the tests hold ScoreCSV's
// output, row counts and errors to.
func (m *Model) scoreCSVRef(in io.Reader, out io.Writer, column string) (int64, error) {
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
		return 0, csvProblem(err, 0)
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
			return n, csvProblem(err, 0)
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
