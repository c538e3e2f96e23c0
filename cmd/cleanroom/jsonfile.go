package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decodeJSONFile decodes the JSON document b, read from file, into v,
// strictly: unknown fields and anything after the document are errors.
// An error names where in the file it is, as file:line:column (columns
// counted in characters from 1), so that an editor can go there.
func decodeJSONFile(file string, b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	err := d.Decode(v)
	if err == nil {
		off := d.InputOffset()
		rest := bytes.TrimLeft(b[off:], " \t\r\n")
		if len(rest) == 0 {
			return nil
		}
		return jsonErrorAt(file, b, int64(len(b)-len(rest)), errors.New("more after the end of the document"))
	}
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%s: the file is empty", file)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return jsonErrorAt(file, b, int64(len(b)), errors.New("the document ends too soon (a missing } or ])"))
	case errors.As(err, &se):
		// Offset counts the bytes read, the offending one included.
		return jsonErrorAt(file, b, se.Offset-1, err)
	case errors.As(err, &te):
		// Offset is just after the value of the wrong type.
		return jsonErrorAt(file, b, te.Offset-1, err)
	}
	// An unknown field: encoding/json does not say where; the first key of
	// that name is the likely place.
	if q, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if name, uerr := strconv.Unquote(q); uerr == nil {
			if i := bytes.Index(b, []byte(q)); i >= 0 {
				return jsonErrorAt(file, b, int64(i), fmt.Errorf("unknown field %q", name))
			}
		}
	}
	return fmt.Errorf("%s: %w", file, err)
}

// jsonErrorAt places err at byte offset off of b.
func jsonErrorAt(file string, b []byte, off int64, err error) error {
	off = min(max(off, 0), int64(len(b)))
	line, col := lineColumn(b[:off])
	return fmt.Errorf("%s:%d:%d: %w", file, line, col, err)
}

// lineColumn is where the byte after prefix is: its line and column,
// counted from 1, the column in characters.
func lineColumn(prefix []byte) (line, col int) {
	line = 1 + bytes.Count(prefix, []byte{'\n'})
	start := bytes.LastIndexByte(prefix, '\n') + 1
	return line, 1 + utf8.RuneCount(prefix[start:])
}
