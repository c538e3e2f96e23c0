package model

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
)

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
//
// The output is what encoding/csv would write of each record with its
// score appended, and the errors are those encoding/csv would find: a row
// without quotes is copied as it is, split only at its commas, and a row
// with quotes (or a lone carriage return) is read and written by
// encoding/csv. Blocks of whole records are scored on all cores and
// written in order.
func (m *Model) ScoreCSV(in io.Reader, out io.Writer, column string) (int64, error) {
	br := bufio.NewReaderSize(in, 1<<16)
	if head, err := br.Peek(len(bom)); err == nil && bytes.Equal(head, bom) {
		br.Discard(len(bom))
	}
	header, lines, err := readHeader(br)
	if err != nil {
		return 0, err
	}
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
	if w.Flush(); w.Error() != nil {
		return 0, w.Error()
	}
	n, err := newRowScorer(m, len(header), cols).run(br, bw, lines)
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// readHeader reads the first record, after any empty lines, as
// encoding/csv reads it, and returns it with the number of lines read.
func readHeader(br *bufio.Reader) ([]string, int, error) {
	var rec []byte
	lines, start := 0, 0
	for {
		l, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, 0, err
		}
		if len(l) > 0 {
			lines++
		}
		switch {
		case len(rec) == 0 && len(trimEOL(l)) == 0:
			// An empty line, skipped.
		case len(rec) == 0:
			rec, start = l, lines
		default:
			rec = append(rec, l...)
		}
		if err == io.EOF || len(rec) > 0 && bytes.Count(rec, quote)%2 == 0 {
			break
		}
	}
	if len(rec) == 0 {
		return nil, 0, errors.New("model: the input is empty: it needs a header row")
	}
	header, err := csv.NewReader(bytes.NewReader(rec)).Read()
	if err != nil {
		return nil, 0, csvProblem(err, start-1)
	}
	return header, lines, nil
}

// quote is the CSV quote, whose count tells whether a record is complete:
// in valid CSV a line ends one where the quotes before it are even.
var quote = []byte{'"'}

// trimEOL is a line without its end, as encoding/csv reads it: "\n" or
// "\r\n", or a "\r" that ends the input.
func trimEOL(l []byte) []byte {
	l = bytes.TrimSuffix(l, []byte{'\n'})
	return bytes.TrimSuffix(l, []byte{'\r'})
}

// csvProblem names a malformed CSV's line, never its content: the line of
// a *csv.ParseError, after offset lines that its reader did not see.
func csvProblem(err error, offset int) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return malformed(offset+pe.Line, pe.Err)
	}
	return err
}

func malformed(line int, err error) error {
	return fmt.Errorf("model: the CSV is malformed at line %d: %w", line, err)
}

// blockSize is how many bytes of the input a block holds, at least: big
// enough that handing blocks between cores costs nothing next to scoring
// them, small enough that a few per core stay in the caches' reach.
const blockSize = 512 << 10

// block is a run of whole records: read in order, scored by any worker,
// written in order.
type block struct {
	in, out []byte
	lines   int   // the lines of in
	rows    int64 // the records scored, all of them unless err
	// err is the first problem in the block, at errLine of it (1 is its
	// first line); readErr a failure to read the input after it.
	err     error
	errLine int
	readErr error
	done    chan struct{}
}

// run scores the records after the header (lines of the input) and
// writes them to bw in order.
func (s *rowScorer) run(br *bufio.Reader, bw *bufio.Writer, lines int) (int64, error) {
	workers := max(1, runtime.GOMAXPROCS(0))
	work := make(chan *block, workers)
	order := make(chan *block, 2*workers)
	free := make(chan *block, 3*workers+2)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { readBlocks(br, order, work, free, quit) })
	for range workers {
		wg.Go(func() {
			rs := s.clone()
			for b := range work {
				rs.score(b)
				close(b.done)
			}
		})
	}
	defer wg.Wait()
	defer close(quit)
	var n int64
	for b := range order {
		<-b.done
		if b.err != nil {
			return n + b.rows, malformed(lines+b.errLine, b.err)
		}
		if _, err := bw.Write(b.out); err != nil {
			return n, err
		}
		n += b.rows
		lines += b.lines
		if b.readErr != nil {
			return n, b.readErr
		}
		select {
		case free <- b:
		default:
		}
	}
	return n, nil
}

// readBlocks cuts the input into blocks of whole records, each ending
// where the quotes before it are even (or at the end of the input), and
// hands each to order and to work, until the input ends or quit closes.
func readBlocks(br *bufio.Reader, order, work chan<- *block, free <-chan *block, quit <-chan struct{}) {
	defer close(work)
	defer close(order)
	var carry []byte
	for eof := false; !eof; {
		var b *block
		select {
		case b = <-free:
		default:
			b = &block{in: make([]byte, 0, blockSize)}
		}
		b.done, b.rows, b.lines, b.err, b.errLine, b.readErr = make(chan struct{}), 0, 0, nil, 0, nil
		buf := append(b.in[:0], carry...)
		for {
			if len(buf) == cap(buf) {
				if recordEnd(buf) > 0 {
					break
				}
				buf = slices.Grow(buf, len(buf)) // one record longer than the block
			}
			k, err := br.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+k]
			if err == io.EOF {
				eof = true
				break
			}
			if err != nil {
				b.readErr, eof = err, true
				break
			}
		}
		cut := len(buf)
		if !eof {
			cut = recordEnd(buf)
		}
		carry = append(carry[:0], buf[cut:]...)
		b.in = buf[:cut]
		select {
		case order <- b:
		case <-quit:
			return
		}
		select {
		case work <- b:
		case <-quit:
			return
		}
	}
}

// recordEnd is the length of b's longest prefix that ends a line where
// the quotes before it are even (b starting with a record), or 0.
func recordEnd(b []byte) int {
	q := bytes.IndexByte(b, '"')
	if q < 0 {
		return bytes.LastIndexByte(b, '\n') + 1
	}
	end := bytes.LastIndexByte(b[:q], '\n') + 1
	for even := true; ; {
		even = !even // b[q] is a quote
		next := len(b)
		if j := bytes.IndexByte(b[q+1:], '"'); j >= 0 {
			next = q + 1 + j
		}
		if even {
			if k := bytes.LastIndexByte(b[q+1:next], '\n'); k >= 0 {
				end = q + 1 + k + 1
			}
		}
		if next == len(b) {
			return end
		}
		q = next
	}
}
