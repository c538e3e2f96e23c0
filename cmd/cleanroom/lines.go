package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxLine bounds one input line. Identifiers and tokens are short; a longer
// line is a wrong file, not data.
const maxLine = 64 << 10

// lines reads input one line at a time, counting lines from 1 and dropping
// a trailing "\r" so that files from Windows work.
type lines struct {
	sc *bufio.Scanner
	n  int
}

func newLines(r io.Reader) *lines {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	return &lines{sc: sc}
}

// next returns the next line, valid until the following call.
func (l *lines) next() ([]byte, bool) {
	if !l.sc.Scan() {
		return nil, false
	}
	l.n++
	return bytes.TrimSuffix(l.sc.Bytes(), []byte{'\r'}), true
}

// err returns the read error that stopped next, if any.
func (l *lines) err() error {
	err := l.sc.Err()
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("line %d: longer than %d KiB", l.n+1, maxLine>>10)
	}
	if err != nil {
		return fmt.Errorf("reading input: %w", err)
	}
	return nil
}
