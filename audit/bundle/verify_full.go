package bundle

import (
	"bufio"
	"bytes"
	"fmt"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// verifyChunk is how many entries are checked in parallel at a time.
const verifyChunk = 8192

// verifyFull checks a BundleFormat bundle: every entry of a range, and the
// tree recomputed from them.
func verifyFull(br *bufio.Reader, first []byte, v note.Verifier, since []byte, fn func(int64, Entry) error) (*Report, error) {
	var h Header
	if err := decodeHeader(first, &h); err != nil {
		return nil, err
	}
	rep := &Report{Format: h.Format, From: h.From, To: h.To}
	// The tree of every size in from+1..to is recomputed from the entries:
	// the reader's checkpoint of such a size is checked against it.
	inTree := func(size int64) bool { return h.From < size && size <= h.To }
	latest, older, err := verifyCheckpoints(v, h.Origin, h.Checkpoint, h.History, MaxRangeCheckpoints+1, since, rep, inTree)
	if err != nil {
		return nil, err
	}
	if h.From < 0 || h.From > h.To || h.To > latest.Size {
		return nil, failf(-1, "range %d..%d does not fit a checkpoint of size %d", h.From, h.To, latest.Size)
	}
	t := newTreeCheck(h, older, fn)
	if since != nil {
		s, _ := ParseCheckpoint(since, v) // checked by verifyCheckpoints
		if _, ok := t.inRange[s.Size]; !ok && inTree(s.Size) {
			t.inRange[s.Size], t.yours = s, s.Size
		}
	}
	if err := t.readEntries(br); err != nil {
		return nil, err
	}
	if err := t.checkLatest(latest); err != nil {
		return nil, err
	}
	// One signed log, one verified file: nothing after the end line that
	// a reader of the file could take for an entry.
	if _, err := br.ReadByte(); err == nil {
		return nil, failf(-1, "data after the end line")
	}
	rep.Entries = h.To - h.From
	return rep, nil
}

// treeCheck recomputes the tree of a full bundle's range as its entries
// are read, and checks it against every signed checkpoint that falls
// inside the range as it reaches that checkpoint's size.
type treeCheck struct {
	h       Header
	rp      *Replay
	inRange map[int64]*Checkpoint // earlier checkpoints inside the range, by size
	prev    int64                 // size of the last checkpoint matched
	yours   int64                 // the size of the reader's checkpoint in inRange, if it was put there
	fn      func(int64, Entry) error

	leaves []tlog.Hash
	parsed []Entry // kept only for fn
}

func newTreeCheck(h Header, older []*Checkpoint, fn func(int64, Entry) error) *treeCheck {
	t := &treeCheck{h: h, rp: NewReplay(h.From, h.Left, nil), inRange: map[int64]*Checkpoint{}, prev: h.From, fn: fn,
		leaves: make([]tlog.Hash, verifyChunk)}
	for _, c := range older {
		if c.Size > h.From && c.Size <= h.To {
			t.inRange[c.Size] = c
		}
	}
	if fn != nil {
		t.parsed = make([]Entry, verifyChunk)
	}
	return t
}

// readEntries reads and checks the entry lines up to the end line, a chunk
// at a time.
func (t *treeCheck) readEntries(br *bufio.Reader) error {
	cr := chunkReader{br: br, lines: make([][]byte, 0, verifyChunk)}
	next := t.h.From
	for done := false; !done; {
		lines, end, err := cr.next(next, t.h.To-t.h.From)
		if err != nil {
			return err
		}
		if next+int64(len(lines)) > t.h.To {
			return failf(t.h.To, "more entries than the header's range")
		}
		if err := t.add(next, lines); err != nil {
			return err
		}
		next += int64(len(lines))
		done = end
	}
	if next != t.h.To {
		return failf(next, "entry missing: the bundle stops at %d of %d..%d", next, t.h.From, t.h.To-1)
	}
	return nil
}

// add checks one chunk of lines, the first of which is entry first, adds
// their leaves to the tree and hands the entries to fn.
func (t *treeCheck) add(first int64, lines [][]byte) error {
	if err := checkLines(first, lines, t.leaves, t.parsed); err != nil {
		return err
	}
	for i := range lines {
		if err := t.rp.Add(t.leaves[i]); err != nil {
			return failf(first+int64(i), "%v", err)
		}
		if err := t.checkAt(t.rp.n); err != nil {
			return err
		}
		if t.fn != nil {
			if err := t.fn(first+int64(i), t.parsed[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkAt checks the tree of size entries against the signed checkpoint of
// that size, if the bundle has one inside its range.
func (t *treeCheck) checkAt(size int64) error {
	c, ok := t.inRange[size]
	if !ok {
		return nil
	}
	root, err := t.rp.Root()
	if err != nil {
		return failf(-1, "%v", err)
	}
	if root != c.Root && size == t.yours {
		return &VerifyError{Index: -1, Range: [2]int64{t.prev, size},
			Reason: fmt.Sprintf("do not hash to your checkpoint of size %d: the log was rewritten", size)}
	}
	if root != c.Root {
		return &VerifyError{Index: -1, Range: [2]int64{t.prev, size},
			Reason: fmt.Sprintf("do not hash to the signed checkpoint of size %d", size)}
	}
	t.prev = size
	return nil
}

// checkLatest checks the recomputed tree against the latest checkpoint:
// equal to it when the range ends at its size, else a prefix of it by the
// bundle's tail proof.
func (t *treeCheck) checkLatest(latest *Checkpoint) error {
	root, err := t.rp.Root()
	if err != nil {
		return failf(-1, "%v", err)
	}
	if t.h.To == latest.Size {
		if root != latest.Root {
			return &VerifyError{Index: -1, Range: [2]int64{t.prev, t.h.To},
				Reason: "do not hash to the latest signed checkpoint"}
		}
		return nil
	}
	if err := tlog.CheckTree(t.h.TailProof, latest.Size, latest.Root, t.h.To, root); err != nil {
		return &VerifyError{Index: -1, Range: [2]int64{t.prev, t.h.To},
			Reason: "are not a prefix of the latest signed checkpoint"}
	}
	return nil
}

// chunkReader reads a full bundle's entry lines up to verifyChunk at a
// time. One buffer holds a chunk's lines, so there is no allocation per
// line. When it grows, lines already taken keep pointing into the old
// array, whose bytes do not change.
type chunkReader struct {
	br    *bufio.Reader
	lines [][]byte
	arena []byte
}

// next reads the lines of the chunk that starts at entry first; end says
// it stopped at the end line, which must count want entries. The lines are
// valid until the next call.
func (c *chunkReader) next(first, want int64) (lines [][]byte, end bool, err error) {
	c.lines, c.arena = c.lines[:0], c.arena[:0]
	for len(c.lines) < verifyChunk {
		line, err := readLine(c.br)
		if err != nil {
			return nil, false, failf(first+int64(len(c.lines)), "bundle ends early (no end line): truncated")
		}
		if bytes.HasPrefix(line, []byte("end ")) {
			n, err := strconv.ParseInt(string(line[4:]), 10, 64)
			if err != nil || n != want || strconv.FormatInt(n, 10) != string(line[4:]) {
				return nil, false, failf(-1, "end line says %q entries, header says %d", line[4:], want)
			}
			return c.lines, true, nil
		}
		start := len(c.arena)
		c.arena = append(c.arena, line...)
		c.lines = append(c.lines, c.arena[start:len(c.arena):len(c.arena)])
	}
	return c.lines, false, nil
}

// checkLines parses and checks one chunk of entry lines on all cores: the
// index sequence, the entry's canonical form and its recorded leaf hash.
// It reports the lowest bad index. If parsed is not nil, it receives the
// entries.
func checkLines(first int64, lines [][]byte, leaves []tlog.Hash, parsed []Entry) error {
	workers := min(runtime.GOMAXPROCS(0), 1+len(lines)/512)
	per := (len(lines) + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*per, min((w+1)*per, len(lines))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				var e *Entry
				if parsed != nil {
					e = &parsed[i]
				}
				if err := checkLine(first+int64(i), lines[i], &leaves[i], e); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err // workers cover ascending ranges: the first is lowest
		}
	}
	return nil
}

func checkLine(want int64, line []byte, leaf *tlog.Hash, parsed *Entry) error {
	idx, rest, ok1 := bytes.Cut(line, []byte(" "))
	hash, entry, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 {
		return failf(want, "malformed line")
	}
	i, err := strconv.ParseInt(string(idx), 10, 64)
	if err != nil || strconv.FormatInt(i, 10) != string(idx) {
		return failf(want, "malformed index")
	}
	if i != want {
		return failf(want, "missing or out of order (found entry %d in its place)", i)
	}
	*leaf = tlog.RecordHash(entry)
	var recorded tlog.Hash
	if !decodeHash(&recorded, hash) {
		return failf(want, "malformed leaf hash")
	}
	if recorded != *leaf {
		return failf(want, "content does not match the leaf hash the room recorded")
	}
	e, err := ParseEntry(entry)
	if err != nil {
		return failf(want, "%v", err)
	}
	if parsed != nil {
		*parsed = e
	}
	return nil
}
