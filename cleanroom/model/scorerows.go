package model

import (
	"bytes"
	"encoding/csv"
	"errors"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// rowScorer scores the records of a block. The model, its flattened
// forest and the column layout are shared; the buffers are one worker's.
type rowScorer struct {
	m      *Model
	forest *forest
	table  *table // nil when the forest has too many cells
	fields int    // fields of every record, as many as the header's
	cols   []int  // the column of each feature
	// domain maps a categorical feature's values to their indexes (nil
	// for a numeric feature).
	domain []map[string]int

	at      [][]byte // a record's fields
	x       []float64
	rec     []string
	num     []byte
	scratch bytes.Buffer
	w       *csv.Writer
}

func newRowScorer(m *Model, fields int, cols []int) *rowScorer {
	s := &rowScorer{m: m, forest: m.flatten(), fields: fields, cols: cols, domain: make([]map[string]int, len(m.Features))}
	s.table = m.tabulate(s.forest)
	for i, f := range m.Features {
		if f.Kind != Categorical {
			continue
		}
		s.domain[i] = make(map[string]int, len(f.Domain))
		for k, v := range f.Domain {
			s.domain[i][v] = k
		}
	}
	return s
}

// clone is a scorer of the same model and layout with buffers of its own.
func (s *rowScorer) clone() *rowScorer {
	c := &rowScorer{m: s.m, forest: s.forest, table: s.table, fields: s.fields, cols: s.cols, domain: s.domain,
		at: make([][]byte, 0, s.fields), x: make([]float64, len(s.m.Features))}
	c.w = csv.NewWriter(&c.scratch)
	return c
}

// score scores the records of b.in into b.out, up to the first problem.
func (s *rowScorer) score(b *block) {
	b.out = b.out[:0]
	data := b.in
	line := 0
	for len(data) > 0 {
		n := len(data)
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			n = i + 1
		}
		raw := data[:n]
		data = data[n:]
		line++
		body := trimEOL(raw)
		if len(body) == 0 {
			continue // an empty line, which encoding/csv skips
		}
		if bytes.IndexByte(body, '"') < 0 && bytes.IndexByte(body, '\r') < 0 {
			if err := s.plain(b, body); err != nil {
				b.err, b.errLine = err, line
				break
			}
			b.rows++
			continue
		}
		// A record with quotes ends at a line where they are even: the
		// block holds all of it (readBlocks cuts there).
		start := line
		for bytes.Count(raw, quote)%2 == 1 && len(data) > 0 {
			n := len(data)
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				n = i + 1
			}
			raw = raw[:len(raw)+n]
			data = data[n:]
			line++
		}
		if at, err := s.quoted(b, raw); err != nil {
			b.err, b.errLine = err, start-1+at
			break
		}
		b.rows++
	}
	b.lines = line
}

// plain scores a record without quotes or carriage returns: its fields
// are what lies between its commas. Its text is its output, unless a
// field is one that encoding/csv would quote.
func (s *rowScorer) plain(b *block, body []byte) error {
	s.at = s.at[:0]
	quoted := false
	for rest := body; ; {
		i := bytes.IndexByte(rest, ',')
		f := rest
		if i >= 0 {
			f = rest[:i]
		}
		if len(f) > 0 && (f[0] <= ' ' || f[0] >= utf8.RuneSelf || f[0] == '\\') {
			quoted = quoted || needsQuotes(f)
		}
		s.at = append(s.at, f)
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	if len(s.at) != s.fields {
		return csv.ErrFieldCount
	}
	for i, c := range s.cols {
		s.x[i] = s.value(i, s.at[c])
	}
	if !quoted {
		b.out = append(b.out, body...)
		b.out = append(b.out, ',')
		b.out = s.appendScore(b.out)
		b.out = append(b.out, '\n')
		return nil
	}
	s.num = s.appendScore(s.num[:0])
	s.rec = s.rec[:0]
	for _, f := range s.at {
		s.rec = append(s.rec, string(f))
	}
	return s.write(b)
}

// needsQuotes says whether encoding/csv's writer quotes a field that has
// no comma, quote or line end in it.
func needsQuotes(f []byte) bool {
	r, _ := utf8.DecodeRune(f)
	return unicode.IsSpace(r) || string(f) == `\.`
}

// quoted reads and scores one record with quotes (or carriage returns)
// with encoding/csv, and writes it as encoding/csv does. A problem comes
// with its line in rec.
func (s *rowScorer) quoted(b *block, rec []byte) (int, error) {
	r := csv.NewReader(bytes.NewReader(rec))
	r.FieldsPerRecord = s.fields
	fields, err := r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return pe.Line, pe.Err
		}
		return 1, err
	}
	for i, c := range s.cols {
		s.x[i] = s.value(i, []byte(fields[c]))
	}
	s.num = s.appendScore(s.num[:0])
	s.rec = append(s.rec[:0], fields...)
	return 0, s.write(b)
}

// write appends s.rec and the score to b.out as encoding/csv writes them.
func (s *rowScorer) write(b *block) error {
	s.scratch.Reset()
	if err := s.w.Write(append(s.rec, string(s.num))); err != nil {
		return err
	}
	s.w.Flush()
	if err := s.w.Error(); err != nil {
		return err
	}
	b.out = append(b.out, s.scratch.Bytes()...)
	return nil
}

// appendScore appends the score of the person whose feature values are
// s.x, with six decimals: its cell's, or the forest's.
func (s *rowScorer) appendScore(dst []byte) []byte {
	if s.table != nil {
		c := s.table.cell(s.x) * scoreWidth
		return append(dst, s.table.text[c:c+scoreWidth]...)
	}
	return strconv.AppendFloat(dst, s.forest.score(s.x), 'f', 6, 64)
}

// value is Feature.Value of feature i for the field v.
func (s *rowScorer) value(i int, v []byte) float64 {
	if d := s.domain[i]; d != nil {
		if k, ok := d[string(v)]; ok {
			return float64(k)
		}
		return -1
	}
	return s.m.Features[i].Value(string(v))
}
