package client

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"unsafe"
)

// csvReader reads CSV exactly as encoding/csv does with its defaults (comma
// separated, quotes per RFC 4180 and strict, \r\n read as \n, blank lines
// skipped, every record as long as the first), at about three times its
// speed on the plain exports partners upload: a line without a quote is
// split on its commas in place. Quoted records take a slower path that
// follows the same rules. FuzzCSVReader holds the two readers to the same
// records, record lines and errors.
//
// One difference: a UTF-8 byte-order mark at the start of the input is
// skipped, as spreadsheets write one ("CSV UTF-8" in Excel) and no header
// name starts with it.
type csvReader struct {
	br     *bufio.Reader
	line   int   // lines read
	start  int   // the line the last record started on
	offset int64 // bytes read
	fields int   // per record, from the first record
	long   []byte
	rec    []byte
	ends   []int
	out    []string
	// transient makes a record's strings alias the reader's buffers,
	// without a copy, where by default each record is one new string: for
	// a caller that is done with a record before it reads the next, as an
	// upload is once it has hashed the identifier and copied the values
	// into its part. It saves an allocation and a copy of every line.
	transient bool
}

// bom is the UTF-8 encoding of U+FEFF, the byte-order mark.
const bom = "\xef\xbb\xbf"

func newCSVReader(r io.Reader) *csvReader {
	return &csvReader{br: bufio.NewReaderSize(r, 256<<10), fields: -1}
}

// Read returns the next record in a slice that the next call reuses; if
// the reader is transient, its strings alias buffers that the next call
// reuses too.
func (r *csvReader) Read() ([]string, error) {
	for {
		l, err := r.readLine()
		if len(l) == 0 && err != nil {
			return nil, err
		}
		if len(l) == 0 || (len(l) == 1 && l[0] == '\n') {
			continue // a blank line
		}
		start := r.line
		r.start = start
		if bytes.IndexByte(l, '"') >= 0 {
			if err := r.quoted(l, start); err != nil {
				return nil, err
			}
		} else {
			r.plain(l)
		}
		if r.fields < 0 {
			r.fields = len(r.out)
		} else if len(r.out) != r.fields {
			return nil, &csv.ParseError{StartLine: start, Line: start, Column: 1, Err: csv.ErrFieldCount}
		}
		return r.out, nil
	}
}

// InputOffset is the offset in the input after the last record read.
func (r *csvReader) InputOffset() int64 { return r.offset }

// Line is the line, counted from 1, that the last record read starts on:
// the line encoding/csv's FieldPos(0) names.
func (r *csvReader) Line() int { return r.start }

// readLine returns the next line with its end normalized to "\n" (a last
// line without one gets none, and loses a trailing "\r"), in a buffer
// valid until the next call. Its error is nil if it returns a line.
func (r *csvReader) readLine() ([]byte, error) {
	l, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		r.long = append(r.long[:0], l...)
		for errors.Is(err, bufio.ErrBufferFull) {
			l, err = r.br.ReadSlice('\n')
			r.long = append(r.long, l...)
		}
		l = r.long
	}
	if len(l) == 0 {
		return nil, err
	}
	if r.line == 0 && r.offset == 0 && bytes.HasPrefix(l, []byte(bom)) {
		r.offset += int64(len(bom))
		if l = l[len(bom):]; len(l) == 0 {
			return nil, err
		}
	}
	r.line++
	r.offset += int64(len(l))
	if err == io.EOF {
		err = nil
		if l[len(l)-1] == '\r' {
			l = l[:len(l)-1]
		}
	}
	if n := len(l); n >= 2 && l[n-2] == '\r' && l[n-1] == '\n' {
		l[n-2] = '\n'
		l = l[:n-1]
	}
	return l, err
}

// plain splits a line without quotes.
func (r *csvReader) plain(l []byte) {
	if l[len(l)-1] == '\n' {
		l = l[:len(l)-1]
	}
	s := r.str(l)
	r.out = r.out[:0]
	for {
		i := strings.IndexByte(s, ',')
		if i < 0 {
			r.out = append(r.out, s)
			return
		}
		r.out = append(r.out, s[:i])
		s = s[i+1:]
	}
}

// quoted parses a record with quotes, which may go on over further lines,
// by the rules of encoding/csv's readRecord with LazyQuotes off. Each line
// is copied into the record before the next is read.
func (r *csvReader) quoted(line []byte, start int) error {
	buf, ends := r.rec[:0], r.ends[:0]
	defer func() { r.rec, r.ends = buf[:0], ends[:0] }()
	// Where an error is, counted as encoding/csv does: a line that ends up
	// empty is not counted.
	lineNo, col := start, 0
	bad := func(err error) error {
		return &csv.ParseError{StartLine: start, Line: lineNo, Column: col + 1, Err: err}
	}
parse:
	for {
		if len(line) == 0 || line[0] != '"' {
			// An unquoted field: up to the next comma or the line's end.
			i := bytes.IndexByte(line, ',')
			field := line
			if i >= 0 {
				field = line[:i]
			} else if n := len(field); n > 0 && field[n-1] == '\n' {
				field = field[:n-1]
			}
			if j := bytes.IndexByte(field, '"'); j >= 0 {
				col += j
				return bad(csv.ErrBareQuote)
			}
			buf = append(buf, field...)
			ends = append(ends, len(buf))
			if i < 0 {
				break parse
			}
			line = line[i+1:]
			col += i + 1
			continue
		}
		// A quoted field.
		line = line[1:]
		col++
		for {
			i := bytes.IndexByte(line, '"')
			if i < 0 {
				if len(line) == 0 {
					return bad(csv.ErrQuote) // the input ended inside quotes
				}
				// The field goes on over the next line.
				buf = append(buf, line...)
				var err error
				if line, err = r.readLine(); err != nil && err != io.EOF {
					return err
				}
				if col = 0; len(line) > 0 {
					lineNo++
				}
				continue
			}
			buf = append(buf, line[:i]...)
			line = line[i+1:]
			col += i + 1
			switch {
			case len(line) > 0 && line[0] == '"':
				buf = append(buf, '"') // "" is a quote
				line = line[1:]
				col++
			case len(line) > 0 && line[0] == ',':
				line = line[1:]
				col++
				ends = append(ends, len(buf))
				continue parse
			case len(line) == 0 || (len(line) == 1 && line[0] == '\n'):
				ends = append(ends, len(buf))
				break parse
			default:
				return bad(csv.ErrQuote)
			}
		}
	}
	s := r.str(buf)
	r.out = r.out[:0]
	prev := 0
	for _, e := range ends {
		r.out = append(r.out, s[prev:e])
		prev = e
	}
	return nil
}

// str is the record's bytes b as a string: one allocation for the whole
// record, or, if the reader is transient, b itself, which stays unchanged
// until the next Read (b is the line in the reader's buffer or the quoted
// record's reused buffer, neither written before then).
func (r *csvReader) str(b []byte) string {
	if r.transient && len(b) > 0 {
		return unsafe.String(&b[0], len(b))
	}
	return string(b)
}
