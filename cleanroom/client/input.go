package client

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// Errors of checking the input before an upload, each with what to do in
// its text. The CLI adds a hint to each.
var (
	ErrEmptyInput    = errors.New("client: the input has no rows with a valid identifier")
	ErrUnknownColumn = errors.New("client: a column named on the command line is not in the input's header")
	// ErrColumnRefused means a column named on the command line may not be
	// sent: named twice, the identifier column itself, not a name the room
	// takes, or one of the collaboration's never-output columns.
	ErrColumnRefused = errors.New("client: a column named on the command line may not be uploaded")
	// ErrListTooSmall means the input has fewer data rows than the
	// collaboration's minimum list size (counted in distinct identifiers,
	// which are never more than the rows): the room would refuse it.
	ErrListTooSmall = errors.New("client: the input is smaller than the collaboration's minimum list size")
	// ErrInvalidValue means an attribute value cannot be uploaded: longer
	// than api.MaxValueLen bytes, or not UTF-8 text. The upload stops at
	// the first, before any part of it is sent.
	ErrInvalidValue = errors.New("client: an attribute value cannot be uploaded")
)

// valueError is an ErrInvalidValue: it names the line and the column,
// never the value.
type valueError struct {
	line    int
	column  string
	tooLong bool
}

func (e *valueError) Error() string {
	if e.tooLong {
		return fmt.Sprintf("client: line %d: the value of column %q is longer than the %d bytes the room takes", e.line, e.column, api.MaxValueLen)
	}
	return fmt.Sprintf("client: line %d: the value of column %q is not UTF-8 text", e.line, e.column)
}

func (e *valueError) Is(target error) bool { return target == ErrInvalidValue }

// checkSpec checks what the command line asks against the collaboration,
// before the input is read: the kind, and every attribute column's name.
// member is the partner whose dataset it is.
func checkSpec(v *api.Collaboration, member string, spec UploadSpec) error {
	if string(spec.Kind) != v.Kind {
		return fmt.Errorf("client: the collaboration matches %s identifiers, not %s", v.Kind, spec.Kind)
	}
	if len(spec.Columns) > api.MaxColumns {
		return fmt.Errorf("%w: at most %d attribute columns", ErrColumnRefused, api.MaxColumns)
	}
	var never []string
	if v.Constraints != nil {
		never = v.Constraints.NeverOutputColumns
	}
	for i, col := range spec.Columns {
		switch {
		case col == spec.IDColumn:
			return fmt.Errorf("%w: %q is the identifier column, which travels only as its token", ErrColumnRefused, col)
		case slices.Contains(spec.Columns[:i], col):
			return fmt.Errorf("%w: %q is named twice", ErrColumnRefused, col)
		case !crypto.ValidPartnerName(col):
			return fmt.Errorf("%w: %q is not a column name the room takes (1-63 of a-z 0-9 . _ -; rename it in the header)", ErrColumnRefused, col)
		case slices.Contains(never, col) || slices.Contains(never, member+"."+col):
			return fmt.Errorf("%w: %q is one of the collaboration's never-output columns (%s)", ErrColumnRefused, col, strings.Join(never, ", "))
		}
	}
	return nil
}

// csvLayout is where the columns an upload reads are in the input's header.
type csvLayout struct {
	id   int
	cols []int
}

// layout finds the identifier column and the attribute columns in header;
// each must be there exactly once.
func layout(header []string, idColumn string, columns []string) (csvLayout, error) {
	find := func(name string) (int, error) {
		i := slices.Index(header, name)
		if i < 0 {
			// The header's fields are neither listed nor quoted: a file
			// without a header would have them be its first row's
			// identifier and values, and a short value ("34", "gmail")
			// is as near a short column name as a typo. A near field is
			// named by its place.
			if len(header) == 1 && strings.ContainsAny(header[0], ";\t") {
				sep := "semicolons"
				if strings.Contains(header[0], "\t") {
					sep = "tabs"
				}
				return 0, fmt.Errorf("%w: %q (the first line is one field, with %s in it: the file reads as separated by %s; export it comma-separated)", ErrUnknownColumn, name, sep, sep)
			}
			if near := nearName(header, name); near > 0 {
				return 0, fmt.Errorf("%w: %q (field %d of the first line is close to it: is that the column, with a typo?)", ErrUnknownColumn, name, near)
			}
			return 0, fmt.Errorf("%w: %q (the header, the file's first line, has %d fields; is it there, with the column named so?)", ErrUnknownColumn, name, len(header))
		}
		if slices.Contains(header[i+1:], name) {
			return 0, fmt.Errorf("%w: the header names %q more than once", ErrColumnRefused, name)
		}
		return i, nil
	}
	var l csvLayout
	var err error
	if l.id, err = find(idColumn); err != nil {
		return l, err
	}
	l.cols = make([]int, len(columns))
	for i, name := range columns {
		if l.cols[i], err = find(name); err != nil {
			return l, err
		}
	}
	return l, nil
}

// nearName returns the place (from 1) of the first field of header that is
// a column name the room takes and at most two edits from name, or 0.
func nearName(header []string, name string) int {
	for i, f := range header {
		if crypto.ValidPartnerName(f) && editDistance(f, name) <= 2 {
			return i + 1
		}
	}
	return 0
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, sub)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// readHeader reads the input's header row.
func readHeader(r *csvReader) ([]string, error) {
	header, err := r.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%w (the file is empty)", ErrEmptyInput)
	}
	if err != nil {
		return nil, fmt.Errorf("client: reading the CSV header: %w", csvError(err))
	}
	return slices.Clone(header), nil
}

// checkHeader checks that the input's header has the columns spec names.
func checkHeader(spec UploadSpec) error {
	f, err := os.Open(spec.Input)
	if err != nil {
		return err
	}
	defer f.Close()
	header, err := readHeader(newCSVReader(f))
	if err != nil {
		return err
	}
	_, err = layout(header, spec.IDColumn, spec.Columns)
	return err
}

// csvError names a malformed CSV's line, never its content.
func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if pe.StartLine != pe.Line {
			return fmt.Errorf("client: the CSV is malformed at line %d, in the record that starts on line %d: %w", pe.Line, pe.StartLine, pe.Err)
		}
		return fmt.Errorf("client: the CSV is malformed at line %d: %w", pe.Line, pe.Err)
	}
	return err
}

// csvRows reads the input, calling fn with each row's line number,
// identifier, attribute values and the input's offset after the row. The
// identifier and values are valid only until fn returns: fn copies what it
// keeps.
func csvRows(path, idColumn string, columns []string,
	fn func(line int, id string, attrs []string, offset int64) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := newCSVReader(f)
	header, err := readHeader(r)
	if err != nil {
		return err
	}
	l, err := layout(header, idColumn, columns)
	if err != nil {
		return err
	}
	// Each record is normalized and its values copied before the next is
	// read.
	r.transient = true
	attrs := make([]string, len(l.cols))
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return csvError(err)
		}
		for i, c := range l.cols {
			attrs[i] = rec[c]
		}
		if err := fn(r.Line(), rec[l.id], attrs, r.InputOffset()); err != nil {
			return err
		}
	}
}

// inputScan is what one pass over the input learns before an upload.
type inputScan struct {
	// fingerprint identifies the input, so that a later run resumes an
	// upload only from the same bytes. It guards against a partner editing
	// or replacing the file between runs, not against an adversary on the
	// partner's own machine, so a CRC-32C and the size serve: the CRC runs
	// at memory speed, where a SHA-256 cost a tenth of the client's time on
	// a 10M-row upload.
	fingerprint string
	// rows counts the data rows (records after the header), as
	// encoding/csv would read them if the input is well formed, up to the
	// count the scan was asked for: an input with more has rows > upTo,
	// not all of them counted.
	rows int64
}

// scanInput reads the input once, for its fingerprint and its rows up to
// upTo and one more: the rows are counted only to compare them with the
// collaboration's minimum list size, and counting them runs at a quarter
// of the CRC's speed (BenchmarkScanInput).
func scanInput(ctx context.Context, path string, upTo int64) (inputScan, error) {
	f, err := os.Open(path)
	if err != nil {
		return inputScan{}, err
	}
	defer f.Close()
	h := newFingerprinter()
	var rc recordCounter
	buf := make([]byte, 256<<10)
	for {
		if err := ctx.Err(); err != nil {
			return inputScan{}, err
		}
		m, err := f.Read(buf)
		h.Write(buf[:m])
		if rc.n-1 <= upTo { // the header, and one row more than upTo (upTo+1 overflows at MaxInt64)
			rc.Write(buf[:m])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return inputScan{}, err
		}
	}
	return inputScan{fingerprint: h.String(), rows: max(rc.records()-1, 0)}, nil
}

// fingerprinter computes an input's fingerprint from its bytes, written
// in order.
type fingerprinter struct {
	h hash.Hash32
	n int64
}

func newFingerprinter() *fingerprinter {
	return &fingerprinter{h: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
}

func (f *fingerprinter) Write(b []byte) (int, error) {
	f.n += int64(len(b))
	return f.h.Write(b)
}

func (f *fingerprinter) String() string { return fmt.Sprintf("crc32c:%08x:%d", f.h.Sum32(), f.n) }

// recordCounter counts CSV records as its input is written: lines that end
// outside quotes and are not blank (a blank line holds nothing, or a lone
// "\r"), as encoding/csv reads them. It looks at quotes and newlines only,
// with bytes.IndexByte, so it runs near memory speed.
type recordCounter struct {
	n      int64
	quoted bool // inside a quoted field
	line   byte // the line so far: lineEmpty, lineCR or lineField
	bom    int  // bytes of a byte-order mark skipped at the start, or len(bom) once past it
}

// What a line holds so far.
const (
	lineEmpty = iota
	lineCR    // a lone "\r", which a "\n" makes a blank line
	lineField
)

func (c *recordCounter) Write(b []byte) (int, error) {
	n := len(b)
	if c.bom < len(bom) {
		// csvReader skips a byte-order mark at the start.
		k := 0
		for k < len(b) && c.bom < len(bom) && b[k] == bom[c.bom] {
			k, c.bom = k+1, c.bom+1
		}
		if k < len(b) && c.bom < len(bom) {
			if c.bom > 0 {
				c.line = lineField // the start of a mark, then something else
			}
			c.bom = len(bom)
		}
		b = b[k:]
	}
	for len(b) > 0 {
		if c.quoted {
			i := bytes.IndexByte(b, '"')
			if i < 0 {
				break
			}
			c.quoted, b = false, b[i+1:]
			continue
		}
		i := bytes.IndexByte(b, '\n')
		seg := b
		if i >= 0 {
			seg = b[:i]
		}
		if q := bytes.IndexByte(seg, '"'); q >= 0 {
			c.line, c.quoted, b = lineField, true, b[q+1:]
			continue
		}
		switch {
		case len(seg) == 0:
		case c.line == lineEmpty && len(seg) == 1 && seg[0] == '\r':
			c.line = lineCR
		default:
			c.line = lineField
		}
		if i < 0 {
			break
		}
		if c.line == lineField {
			c.n++
		}
		c.line, b = lineEmpty, b[i+1:]
	}
	return n, nil
}

// records is the count so far, a last line without a newline included.
func (c *recordCounter) records() int64 {
	if c.line == lineField || c.bom > 0 && c.bom < len(bom) {
		return c.n + 1
	}
	return c.n
}

// lineError names the input line of a row that cannot be sent.
func lineError(line int, err error) error { return fmt.Errorf("client: line %d: %w", line, err) }
