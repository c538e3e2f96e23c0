package columnar

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// TokenSize is the size of a token: an HMAC token or a fully encrypted
// ristretto255 element.
const TokenSize = 32

// MaxBlock is the most rows one block holds.
const MaxBlock = 1 << 16

// The files' magic numbers.
const (
	pairsMagic = "crpairs1"
	colsMagic  = "crcols01"
)

// Column is one attribute column of a block: value i is
// Data[Ends[i-1]:Ends[i]] (from 0 for the first).
type Column struct {
	Ends []uint32
	Data []byte
}

// Value returns value i, aliasing the block.
func (c *Column) Value(i int) []byte {
	lo := uint32(0)
	if i > 0 {
		lo = c.Ends[i-1]
	}
	return c.Data[lo:c.Ends[i]]
}

// ReadPairs reads a pairs file, calling fn with each block: the block's
// tokens (TokenSize bytes each) and rows, valid only during the call.
func ReadPairs(r io.Reader, fn func(tokens []byte, rows []uint32) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	if err := readMagic(br, pairsMagic); err != nil {
		return err
	}
	var tokens, raw []byte
	var rows []uint32
	for {
		n, err := readCount(br)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		tokens = grow(tokens, n*TokenSize)
		if _, err := io.ReadFull(br, tokens); err != nil {
			return short(err)
		}
		if raw, rows, err = readU32s(br, raw, rows, n); err != nil {
			return err
		}
		if err := fn(tokens, rows); err != nil {
			return err
		}
	}
}

// ReadCols reads a cols file of c columns, calling fn with each block's
// rows and the columns want marks (nil for the others; want nil: all),
// valid only during the call. Rows must ascend across the file.
func ReadCols(r io.Reader, c int, want []bool, fn func(rows []uint32, cols []*Column) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	if err := readMagic(br, colsMagic); err != nil {
		return err
	}
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return short(err)
	}
	if int(binary.LittleEndian.Uint16(hdr[:])) != c {
		return fmt.Errorf("%w: a cols file has %d columns, the manifest %d", ErrCorrupt, binary.LittleEndian.Uint16(hdr[:]), c)
	}
	var (
		raw   []byte
		rows  []uint32
		cols  = make([]*Column, c)
		store = make([]Column, c)
		next  = int64(-1) // rows must ascend
	)
	for {
		n, err := readCount(br)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if raw, rows, err = readU32s(br, raw, rows, n); err != nil {
			return err
		}
		for _, row := range rows {
			if int64(row) <= next {
				return fmt.Errorf("%w: rows of a cols file do not ascend", ErrCorrupt)
			}
			next = int64(row)
		}
		for j := range c {
			var lb [4]byte
			if _, err := io.ReadFull(br, lb[:]); err != nil {
				return short(err)
			}
			size := binary.LittleEndian.Uint32(lb[:])
			if want != nil && !want[j] {
				cols[j] = nil
				if _, err := br.Discard(4*n + int(size)); err != nil {
					return short(err)
				}
				continue
			}
			col := &store[j]
			if raw, col.Ends, err = readU32s(br, raw, col.Ends, n); err != nil {
				return err
			}
			prev := uint32(0)
			for _, e := range col.Ends {
				if e < prev || e > size {
					return fmt.Errorf("%w: a column's offsets are out of order", ErrCorrupt)
				}
				prev = e
			}
			if prev != size {
				return fmt.Errorf("%w: a column's offsets do not end at its length", ErrCorrupt)
			}
			if col.Data, err = readBytes(br, col.Data, int64(size)); err != nil {
				return short(err)
			}
			cols[j] = col
		}
		if err := fn(rows, cols); err != nil {
			return err
		}
	}
}

func readMagic(r io.Reader, magic string) error {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return short(err)
	}
	if string(b[:]) != magic {
		return fmt.Errorf("%w: not a %s file", ErrCorrupt, magic)
	}
	return nil
}

// readCount reads a block's row count; io.EOF at a block boundary is the
// end of the file.
func readCount(r io.Reader) (int, error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		if err == io.EOF {
			return 0, io.EOF
		}
		return 0, short(err)
	}
	n := binary.LittleEndian.Uint32(b[:])
	if n == 0 || n > MaxBlock {
		return 0, fmt.Errorf("%w: a block of %d rows", ErrCorrupt, n)
	}
	return int(n), nil
}

func readU32s(r io.Reader, raw []byte, out []uint32, n int) ([]byte, []uint32, error) {
	raw = grow(raw, 4*n)
	if _, err := io.ReadFull(r, raw); err != nil {
		return raw, out, short(err)
	}
	out = grow(out, n)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(raw[4*i:])
	}
	return raw, out, nil
}

// readBytes reads n bytes into buf, growing it only as they arrive, so
// that a corrupt length cannot make it allocate more than the file holds.
func readBytes(r io.Reader, buf []byte, n int64) ([]byte, error) {
	if n <= int64(cap(buf)) || n <= 1<<20 {
		buf = grow(buf, int(n))
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	b := bytes.NewBuffer(buf[:0])
	if _, err := io.CopyN(b, r, n); err != nil {
		return buf, err
	}
	return b.Bytes(), nil
}

// short turns a truncated read into ErrCorrupt and keeps other errors
// (those of the storage underneath, or of Verified) as they are.
func short(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated", ErrCorrupt)
	}
	return err
}

// grow returns s with length n, reusing its array when it can.
func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}
