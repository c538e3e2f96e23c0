package store

import (
	"encoding/binary"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/matcher"
)

// The payloads stored in segments.

// Part is an upload part as stored under Segments: the binary part format
// (api.Part) in which partners send it, kept as it came,
//
//	uvarint rows, uvarint columns, rows × 32-byte tokens,
//	then every row's values in column order, each a uvarint length and bytes.
type Part struct {
	Rows, Columns int
	Tokens        []byte // Rows × api.TokenSize
	values        []byte
}

// DecodePart reads the header of a stored part (aliasing b); EachValue
// reads its values.
func DecodePart(b []byte) (Part, error) {
	rows, n := binary.Uvarint(b)
	if n <= 0 {
		return Part{}, ErrCorruptSegment
	}
	b = b[n:]
	cols, n := binary.Uvarint(b)
	if n <= 0 || rows > uint64(len(b)-n)/api.TokenSize || cols > uint64(len(b)) {
		return Part{}, ErrCorruptSegment
	}
	b = b[n:]
	t := int(rows) * api.TokenSize
	return Part{Rows: int(rows), Columns: int(cols), Tokens: b[:t], values: b[t:]}, nil
}

// Token returns row i's token.
func (p Part) Token(i int) []byte { return p.Tokens[i*api.TokenSize : (i+1)*api.TokenSize] }

// EachValue calls fn with every row's values, in order, each with its
// column, in a buffer fn must not keep.
func (p Part) EachValue(fn func(col int, v []byte)) error {
	b := p.values
	for range p.Rows {
		for col := range p.Columns {
			v, rest, ok := nextValue(b)
			if !ok {
				return ErrCorruptSegment
			}
			fn(col, v)
			b = rest
		}
	}
	return nil
}

// EachWanted is EachValue for the columns want marks (want[col], one a
// column): it calls row with each row's index in the part before that
// row's values, and fn with the values of the marked columns only; the
// others are stepped over by their lengths, never handed out.
func (p Part) EachWanted(want []bool, row func(r int), fn func(col int, v []byte)) error {
	if len(want) != p.Columns {
		return ErrCorruptSegment
	}
	b := p.values
	for r := range p.Rows {
		row(r)
		for col, w := range want {
			v, rest, ok := nextValue(b)
			if !ok {
				return ErrCorruptSegment
			}
			if w {
				fn(col, v)
			}
			b = rest
		}
	}
	return nil
}

// nextValue splits b's first value, a uvarint length and its bytes, from
// the rest. Most values are shorter than 128 bytes: their length is one
// byte, read without the general decoder.
func nextValue(b []byte) (v, rest []byte, ok bool) {
	if len(b) > 0 && b[0] < 0x80 {
		l := int(b[0])
		if len(b)-1 < l {
			return nil, nil, false
		}
		return b[1 : 1+l], b[1+l:], true
	}
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return nil, nil, false
	}
	return b[n : n+int(l)], b[n+int(l):], true
}

// PairSize is the size of one stored (element, row) pair: the element, then
// its row as a little-endian uint32. Layers and task canaries are sequences
// of pairs.
const PairSize = api.TokenSize + 4

// AppendPair appends the pair (elem, row) to b.
func AppendPair(b, elem []byte, row uint32) []byte {
	return binary.LittleEndian.AppendUint32(append(b, elem[:api.TokenSize]...), row)
}

// EachPair calls fn with every pair of b, elem aliasing b.
func EachPair(b []byte, fn func(elem []byte, row uint32)) error {
	if len(b)%PairSize != 0 {
		return ErrCorruptSegment
	}
	for ; len(b) > 0; b = b[PairSize:] {
		fn(b[:api.TokenSize], binary.LittleEndian.Uint32(b[api.TokenSize:PairSize]))
	}
	return nil
}

// TaskPart is a relay task's part: the same pairs, stored by column (every
// element, then every row), so that the elements, which the member is sent,
// are one slice of the stored value.
type TaskPart struct {
	Elements []byte
	rows     []byte
}

// AppendTaskPart appends the encoding of pairs as a task part to b.
func AppendTaskPart(b []byte, pairs []matcher.Pair) []byte {
	for _, p := range pairs {
		b = append(b, p.Token[:]...)
	}
	for _, p := range pairs {
		b = binary.LittleEndian.AppendUint32(b, p.Row)
	}
	return b
}

// DecodeTaskPart reads a task part (aliasing b).
func DecodeTaskPart(b []byte) (TaskPart, error) {
	if len(b)%PairSize != 0 {
		return TaskPart{}, ErrCorruptSegment
	}
	n := len(b) / PairSize * api.TokenSize
	return TaskPart{Elements: b[:n], rows: b[n:]}, nil
}

// Len returns how many pairs the part holds.
func (p TaskPart) Len() int { return len(p.rows) / 4 }

// Row returns the row of element i.
func (p TaskPart) Row(i int) uint32 { return binary.LittleEndian.Uint32(p.rows[4*i:]) }

// Rows are what joins and duplicate lists store: rows as little-endian
// uint32s. A join part holds, for each match, one row per member, in the
// collaboration's member order.

// AppendRows appends rows to b.
func AppendRows(b []byte, rows ...uint32) []byte {
	for _, r := range rows {
		b = binary.LittleEndian.AppendUint32(b, r)
	}
	return b
}

// DecodeRows returns the rows of b.
func DecodeRows(b []byte) ([]uint32, error) {
	if len(b)%4 != 0 {
		return nil, ErrCorruptSegment
	}
	rows := make([]uint32, len(b)/4)
	for i := range rows {
		rows[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return rows, nil
}

// EachMatch calls fn with every match of a join part of members members,
// in a slice fn must not keep.
func EachMatch(b []byte, members int, fn func(rows []uint32)) error {
	if members <= 0 || len(b)%(4*members) != 0 {
		return ErrCorruptSegment
	}
	rows := make([]uint32, members)
	for ; len(b) > 0; b = b[4*members:] {
		for i := range rows {
			rows[i] = binary.LittleEndian.Uint32(b[4*i:])
		}
		fn(rows)
	}
	return nil
}

// Fingerprints are what an audience stores of its people: 64-bit keyed
// fingerprints, ascending, each little-endian.

// AppendFingerprints appends fps to b.
func AppendFingerprints(b []byte, fps []uint64) []byte {
	for _, f := range fps {
		b = binary.LittleEndian.AppendUint64(b, f)
	}
	return b
}

// DecodeFingerprints returns the fingerprints of b.
func DecodeFingerprints(b []byte) ([]uint64, error) {
	if len(b)%8 != 0 {
		return nil, ErrCorruptSegment
	}
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out, nil
}
