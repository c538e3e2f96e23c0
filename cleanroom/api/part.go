package api

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// PartContentType is the media type of a binary upload part
// (PartFormat); a part sent with any other type is read as gzip NDJSON
// (UploadFormat).
const PartContentType = "application/vnd.cleanroom.part"

// Part is an upload part in the binary format, the one the partner client
// sends: its layout is the room's stored segment, so the room checks it in
// one pass and keeps the bytes as they came, and neither side spends time on
// base64, JSON or compressing 32-byte tokens that do not compress.
//
//	uvarint rows, uvarint columns,
//	rows × 32-byte tokens,
//	then every row's values in column order, each a uvarint length and bytes.
//
// Its digest is the SHA-256 of those bytes.
type Part struct {
	Rows, Columns int
	Tokens        []byte // Rows × TokenSize
	Values        []byte
}

// AppendValues appends one row's attribute values. Tokens are appended
// separately (AppendToken), since the client makes them in batches after
// reading the rows; MarshalBinary checks that the two agree.
func (p *Part) AppendValues(vals []string) error {
	if len(vals) != p.Columns {
		return fmt.Errorf("%w: %d attribute values, want %d", ErrInvalidPart, len(vals), p.Columns)
	}
	start := len(p.Values)
	for _, v := range vals {
		p.Values = binary.AppendUvarint(p.Values, uint64(len(v)))
		p.Values = append(p.Values, v...)
	}
	// A row in ASCII, lengths included, is valid whole: one pass over it,
	// as ParsePart makes, not a call a value. Its lengths are below 128
	// (a longer one has a varint byte of 0x80 or more), so within
	// MaxValueLen too.
	if isASCII(p.Values[start:]) {
		p.Rows++
		return nil
	}
	for i, v := range vals {
		if len(v) > MaxValueLen || !utf8.ValidString(v) {
			p.Values = p.Values[:start]
			return &ValueError{Attr: i, TooLong: len(v) > MaxValueLen}
		}
	}
	p.Rows++
	return nil
}

// ValueError is an attribute value a part cannot hold: longer than
// MaxValueLen bytes, or not UTF-8. It names the value's place in the row,
// never the value. It is an ErrInvalidPart.
type ValueError struct {
	Attr    int  // the value's index among the row's attributes
	TooLong bool // longer than MaxValueLen; otherwise not UTF-8
}

func (e *ValueError) Error() string {
	if e.TooLong {
		return fmt.Sprintf("%v: attribute %d is longer than %d bytes", ErrInvalidPart, e.Attr+1, MaxValueLen)
	}
	return fmt.Sprintf("%v: attribute %d is not UTF-8", ErrInvalidPart, e.Attr+1)
}

func (e *ValueError) Is(target error) bool { return target == ErrInvalidPart }

// AppendToken appends the next row's token.
func (p *Part) AppendToken(t [TokenSize]byte) { p.Tokens = append(p.Tokens, t[:]...) }

// Reset empties the part, keeping its buffers and columns.
func (p *Part) Reset() { p.Rows, p.Tokens, p.Values = 0, p.Tokens[:0], p.Values[:0] }

// AppendBinary appends the part's encoding to b.
func (p *Part) AppendBinary(b []byte) ([]byte, error) {
	if len(p.Tokens) != p.Rows*TokenSize {
		return nil, fmt.Errorf("api: a part of %d rows has %d bytes of tokens", p.Rows, len(p.Tokens))
	}
	b = binary.AppendUvarint(b, uint64(p.Rows))
	b = binary.AppendUvarint(b, uint64(p.Columns))
	b = append(b, p.Tokens...)
	return append(b, p.Values...), nil
}

// ParsePart checks a binary part against lim and returns it, aliasing b.
// Errors wrap ErrInvalidPart and name a row number, never a value.
func ParsePart(b []byte, lim PartLimits) (Part, error) {
	if len(b) > MaxPartBytes {
		return Part{}, fmt.Errorf("%w: more than %d bytes", ErrInvalidPart, MaxPartBytes)
	}
	rows, n := binary.Uvarint(b)
	if n <= 0 {
		return Part{}, fmt.Errorf("%w: no row count", ErrInvalidPart)
	}
	b = b[n:]
	cols, n := binary.Uvarint(b)
	if n <= 0 {
		return Part{}, fmt.Errorf("%w: no column count", ErrInvalidPart)
	}
	b = b[n:]
	if cols != uint64(lim.Columns) {
		return Part{}, fmt.Errorf("%w: %d columns, want %d", ErrInvalidPart, cols, lim.Columns)
	}
	if rows > uint64(lim.MaxRows) {
		return Part{}, fmt.Errorf("%w: more than %d rows", ErrInvalidPart, lim.MaxRows)
	}
	if rows*TokenSize > uint64(len(b)) {
		return Part{}, fmt.Errorf("%w: %d rows but fewer tokens", ErrInvalidPart, rows)
	}
	p := Part{Rows: int(rows), Columns: lim.Columns, Tokens: b[:rows*TokenSize], Values: b[rows*TokenSize:]}
	// Values in ASCII, as they nearly always are, are UTF-8 whatever their
	// boundaries: one pass over them all, not a call a value. (A length
	// below 128 is one byte below 0x80, so lengths do not spoil it.)
	ascii := isASCII(p.Values)
	v := p.Values
	for row := range p.Rows {
		for range p.Columns {
			l, n := binary.Uvarint(v)
			if n <= 0 || l > MaxValueLen || l > uint64(len(v)-n) {
				return Part{}, fmt.Errorf("%w: row %d: a value is cut short or longer than %d bytes", ErrInvalidPart, row+1, MaxValueLen)
			}
			if !ascii && !utf8.Valid(v[n:n+int(l)]) {
				return Part{}, fmt.Errorf("%w: row %d: a value is not UTF-8", ErrInvalidPart, row+1)
			}
			v = v[n+int(l):]
		}
	}
	if len(v) != 0 {
		return Part{}, fmt.Errorf("%w: bytes after the last row", ErrInvalidPart)
	}
	return p, nil
}

func isASCII(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
