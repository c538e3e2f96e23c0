package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
)

// TokenSize is the size of a token or element on the wire.
const TokenSize = 32

// DatasetDigestLabel domain-separates DatasetDigest.
const DatasetDigestLabel = "cleanroom.dev/v1/dataset-digest\n"

// ErrInvalidPart is wrapped by every error in decoding a part. The client
// should fix the input named by row number and send the part again.
var ErrInvalidPart = errors.New("invalid upload part")

// Row is one row of an upload: a token and its attribute values.
type Row struct {
	Token [TokenSize]byte
	Attrs []string
}

type wireRow struct {
	T string   `json:"t"`
	A []string `json:"a"`
}

// PartWriter encodes rows as one gzip NDJSON part and computes its digest.
type PartWriter struct {
	gz   *gzip.Writer
	h    hash.Hash // of the uncompressed bytes
	w    io.Writer // to both
	line []byte
}

// NewPartWriter writes a part to w.
func NewPartWriter(w io.Writer) *PartWriter {
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	h := sha256.New()
	return &PartWriter{gz: gz, h: h, w: io.MultiWriter(h, gz)}
}

// Write encodes one row.
func (p *PartWriter) Write(r *Row) error {
	b := p.line[:0]
	b = append(b, `{"t":"`...)
	b = base64.StdEncoding.AppendEncode(b, r.Token[:])
	b = append(b, `","a":[`...)
	for i, v := range r.Attrs {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendJSONString(b, v); err != nil {
			return err
		}
	}
	b = append(b, "]}\n"...)
	p.line = b
	_, err := p.w.Write(b)
	return err
}

// appendJSONString appends v as a JSON string. Printable ASCII without
// quotes or backslashes, which is what attribute values almost always are,
// is copied as it is; anything else goes through encoding/json, whose
// escaping (and replacement of invalid UTF-8) every reader agrees on.
func appendJSONString(b []byte, v string) ([]byte, error) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, err := json.Marshal(v)
			return append(b, q...), err
		}
	}
	b = append(b, '"')
	b = append(b, v...)
	return append(b, '"'), nil
}

// Close flushes the part and returns its digest (hex SHA-256 of the
// uncompressed bytes).
func (p *PartWriter) Close() (string, error) {
	if err := p.gz.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(p.h.Sum(nil)), nil
}

// PartLimits bound what ReadPart accepts.
type PartLimits struct {
	Columns int // attribute values a row must have
	MaxRows int
}

// ReadPart decodes a gzip NDJSON part from r, calling fn for every row
// (the Row is reused after fn returns). It returns the number of rows and
// the part's digest. Errors name the line, never its content.
func ReadPart(r io.Reader, lim PartLimits, fn func(*Row) error) (rows int, digest string, err error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return 0, "", fmt.Errorf("%w: body is not gzip", ErrInvalidPart)
	}
	defer gz.Close()
	h := sha256.New()
	total := 0
	br := bufio.NewReaderSize(io.TeeReader(gz, h), 64<<10)
	maxLine := TokenSize*2 + lim.Columns*(MaxValueLen*6+3) + 64
	var row Row
	var w wireRow
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return 0, "", fmt.Errorf("%w: line %d is too long", ErrInvalidPart, line)
		}
		if err == io.EOF && len(b) == 0 {
			break
		}
		if err != nil && err != io.EOF {
			return 0, "", fmt.Errorf("%w: reading line %d: %v", ErrInvalidPart, line, errors.Unwrap(err))
		}
		total += len(b)
		if total > MaxPartBytes {
			return 0, "", fmt.Errorf("%w: more than %d bytes uncompressed", ErrInvalidPart, MaxPartBytes)
		}
		if len(b) > maxLine {
			return 0, "", fmt.Errorf("%w: line %d is too long", ErrInvalidPart, line)
		}
		if rows >= lim.MaxRows {
			return 0, "", fmt.Errorf("%w: more than %d rows", ErrInvalidPart, lim.MaxRows)
		}
		if err := decodeRow(bytes.TrimRight(b, "\r\n"), &w, &row, lim.Columns); err != nil {
			return 0, "", fmt.Errorf("%w: line %d: %v", ErrInvalidPart, line, err)
		}
		if err := fn(&row); err != nil {
			return 0, "", err
		}
		rows++
		if err == io.EOF {
			break
		}
	}
	return rows, hex.EncodeToString(h.Sum(nil)), nil
}

// decodeRow decodes one line. Lines in exactly the form PartWriter writes
// (no white space, no escapes) take a fast path that allocates only the
// values; any other valid JSON of the same shape goes through
// encoding/json, which also words the errors.
func decodeRow(b []byte, w *wireRow, row *Row, columns int) error {
	if fastRow(b, row, w, columns) {
		return nil
	}
	return slowRow(b, w, row, columns)
}

// fastRow parses {"t":"<base64>","a":["v",...]} with plain strings; it
// reports false, having decided nothing, for anything else.
func fastRow(b []byte, row *Row, w *wireRow, columns int) bool {
	const head, mid = `{"t":"`, `","a":[`
	if len(b) < len(head)+44+len(mid)+2 || string(b[:len(head)]) != head {
		return false
	}
	b = b[len(head):]
	tok := b[:44]
	if b[44] != '"' || string(b[44:44+len(mid)]) != mid {
		return false
	}
	var buf [TokenSize + 2]byte
	if n, err := base64.StdEncoding.Decode(buf[:], tok); err != nil || n != TokenSize {
		return false
	}
	b = b[44+len(mid):]
	w.A = w.A[:0]
	for len(b) > 0 && b[0] != ']' {
		// A value: a plain string, then a comma and another, or the end.
		if b[0] != '"' {
			return false
		}
		end := 1
		for end < len(b) && b[end] != '"' {
			if c := b[end]; c == '\\' || c < 0x20 {
				return false
			}
			end++
		}
		if end == len(b) {
			return false
		}
		w.A = append(w.A, string(b[1:end]))
		b = b[end+1:]
		if len(b) > 1 && b[0] == ',' && b[1] == '"' {
			b = b[1:]
			continue
		}
		break
	}
	if string(b) != "]}" || len(w.A) != columns {
		return false
	}
	for _, v := range w.A {
		if len(v) > MaxValueLen || !utf8.ValidString(v) {
			return false
		}
	}
	copy(row.Token[:], buf[:TokenSize])
	row.Attrs = w.A
	return true
}

func slowRow(b []byte, w *wireRow, row *Row, columns int) error {
	w.T, w.A = "", w.A[:0]
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(w); err != nil {
		return errors.New("not a JSON object of the form {\"t\":..., \"a\":[...]}")
	}
	if d.More() {
		return errors.New("more than one JSON value")
	}
	if base64.StdEncoding.DecodedLen(len(w.T)) > TokenSize+2 {
		return errors.New("token is not 32 bytes of base64")
	}
	var buf [TokenSize + 2]byte
	n, err := base64.StdEncoding.Decode(buf[:], []byte(w.T))
	if err != nil || n != TokenSize {
		return errors.New("token is not 32 bytes of base64")
	}
	copy(row.Token[:], buf[:TokenSize])
	if len(w.A) != columns {
		return fmt.Errorf("%d attribute values, want %d", len(w.A), columns)
	}
	for i, v := range w.A {
		if len(v) > MaxValueLen || !utf8.ValidString(v) {
			return fmt.Errorf("attribute %d is longer than %d bytes or not UTF-8", i+1, MaxValueLen)
		}
	}
	row.Attrs = w.A
	return nil
}

// DatasetDigest combines the digests of a dataset's parts, in order.
func DatasetDigest(parts []string) string {
	h := sha256.New()
	h.Write([]byte(DatasetDigestLabel))
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}
