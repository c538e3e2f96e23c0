package audit

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Report says what a successful Verify checked.
type Report struct {
	Origin      string `json:"origin"`
	From        int64  `json:"from"`
	To          int64  `json:"to"`
	TreeSize    int64  `json:"tree_size"`
	Root        string `json:"root"`
	Entries     int64  `json:"entries"`
	Checkpoints int    `json:"checkpoints_checked"`
	Since       int64  `json:"since_size,omitempty"` // size of the caller's earlier checkpoint, if given
}

// VerifyError is a failed verification. Index is the first entry found bad,
// or -1 when the failure is not one entry's (a bad signature, a failed
// consistency proof); Range narrows it to entries (Range[0], Range[1]] when a
// historical checkpoint is what disagreed.
type VerifyError struct {
	Index  int64
	Range  [2]int64
	Reason string
}

func (e *VerifyError) Error() string {
	switch {
	case e.Index >= 0:
		return fmt.Sprintf("audit bundle: entry %d: %s", e.Index, e.Reason)
	case e.Range[1] > 0:
		return fmt.Sprintf("audit bundle: entries %d..%d: %s", e.Range[0], e.Range[1]-1, e.Reason)
	}
	return "audit bundle: " + e.Reason
}

func failf(index int64, format string, a ...any) error {
	return &VerifyError{Index: index, Reason: fmt.Sprintf(format, a...)}
}

// verifyChunk is how many entries are checked in parallel at a time.
const verifyChunk = 8192

// Verify checks an export bundle offline with the room's signed-note
// verifier key. If since is not nil (a checkpoint the caller saved earlier),
// Verify also proves that the bundle's log extends it: a log that was rolled
// back or forked since then fails. On failure the error is a *VerifyError.
func Verify(r io.Reader, v note.Verifier, since []byte) (*Report, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	first, err := readLine(br)
	if err != nil {
		return nil, failf(-1, "no header: %v", err)
	}
	var h bundleHeader
	if err := json.Unmarshal(first, &h); err != nil {
		return nil, failf(-1, "header is not JSON")
	}
	if h.Format != BundleFormat {
		return nil, failf(-1, "format %q, want %q", h.Format, BundleFormat)
	}
	latest, err := ParseCheckpoint([]byte(h.Checkpoint), v)
	if err != nil {
		return nil, failf(-1, "latest checkpoint: %v", err)
	}
	if h.From < 0 || h.From > h.To || h.To > latest.Size {
		return nil, failf(-1, "range %d..%d does not fit a checkpoint of size %d", h.From, h.To, latest.Size)
	}
	rep := &Report{Origin: latest.Origin, From: h.From, To: h.To, TreeSize: latest.Size,
		Root: base64.StdEncoding.EncodeToString(latest.Root[:]), Checkpoints: 1}

	// Every earlier checkpoint: signed by the same key, and a prefix of the
	// latest. Those inside the range are also recomputed below.
	inRange := map[int64]*Checkpoint{}
	var sizes []int64
	for _, hc := range h.History {
		c, err := ParseCheckpoint([]byte(hc.Checkpoint), v)
		if err != nil {
			return nil, failf(-1, "historical checkpoint: %v", err)
		}
		if err := CheckConsistency(c, latest, hc.Proof); err != nil {
			return nil, &VerifyError{Index: -1, Reason: err.Error()}
		}
		rep.Checkpoints++
		if c.Size > h.From && c.Size <= h.To {
			inRange[c.Size] = c
			sizes = append(sizes, c.Size)
		}
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })

	if since != nil {
		if err := checkSince(since, v, latest, h.History); err != nil {
			return nil, err
		}
		s, _ := ParseCheckpoint(since, v)
		rep.Since = s.Size
	}

	rp := newReplay(h.From, h.Left, nil)
	prev := h.From
	checkAt := func(size int64) error {
		c, ok := inRange[size]
		if !ok {
			return nil
		}
		root, err := rp.root()
		if err != nil {
			return failf(-1, "%v", err)
		}
		if root != c.Root {
			return &VerifyError{Index: -1, Range: [2]int64{prev, size},
				Reason: fmt.Sprintf("do not hash to the signed checkpoint of size %d", size)}
		}
		prev = size
		return nil
	}

	leaves := make([]tlog.Hash, verifyChunk)
	lines := make([][]byte, 0, verifyChunk)
	// One buffer holds a chunk's lines, so there is no allocation per line.
	// When it grows, lines already taken keep pointing into the old array,
	// whose bytes do not change.
	var arena []byte
	next := h.From
	done := false
	for !done {
		lines, arena = lines[:0], arena[:0]
		for len(lines) < verifyChunk {
			line, err := readLine(br)
			if err != nil {
				return nil, failf(next+int64(len(lines)), "bundle ends early (no end line): truncated")
			}
			if bytes.HasPrefix(line, []byte("end ")) {
				n, err := strconv.ParseInt(string(line[4:]), 10, 64)
				if err != nil || n != h.To-h.From {
					return nil, failf(-1, "end line says %q entries, header says %d", line[4:], h.To-h.From)
				}
				done = true
				break
			}
			start := len(arena)
			arena = append(arena, line...)
			lines = append(lines, arena[start:len(arena):len(arena)])
		}

		if next+int64(len(lines)) > h.To {
			return nil, failf(h.To, "more entries than the header's range")
		}
		if err := checkLines(next, lines, leaves); err != nil {
			return nil, err
		}
		for i := range lines {
			if err := rp.add(leaves[i]); err != nil {
				return nil, failf(next+int64(i), "%v", err)
			}
			if err := checkAt(rp.n); err != nil {
				return nil, err
			}
		}
		next += int64(len(lines))
	}
	if next != h.To {
		return nil, failf(next, "entry missing: the bundle stops at %d of %d..%d", next, h.From, h.To-1)
	}
	root, err := rp.root()
	if err != nil {
		return nil, failf(-1, "%v", err)
	}
	if h.To == latest.Size {
		if root != latest.Root {
			return nil, &VerifyError{Index: -1, Range: [2]int64{prev, h.To},
				Reason: "do not hash to the latest signed checkpoint"}
		}
	} else if err := tlog.CheckTree(h.TailProof, latest.Size, latest.Root, h.To, root); err != nil {
		return nil, &VerifyError{Index: -1, Range: [2]int64{prev, h.To},
			Reason: "are not a prefix of the latest signed checkpoint"}
	}
	rep.Entries = h.To - h.From
	return rep, nil
}

// checkLines parses and checks one chunk of entry lines on all cores: the
// index sequence, the entry's canonical form and its recorded leaf hash.
// It reports the lowest bad index.
func checkLines(first int64, lines [][]byte, leaves []tlog.Hash) error {
	workers := min(runtime.GOMAXPROCS(0), 1+len(lines)/512)
	per := (len(lines) + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*per, min((w+1)*per, len(lines))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				if err := checkLine(first+int64(i), lines[i], &leaves[i]); err != nil {
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

func checkLine(want int64, line []byte, leaf *tlog.Hash) error {
	idx, rest, ok1 := bytes.Cut(line, []byte(" "))
	hash, entry, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 {
		return failf(want, "malformed line")
	}
	i, err := strconv.ParseInt(string(idx), 10, 64)
	if err != nil {
		return failf(want, "malformed index")
	}
	if i != want {
		return failf(want, "missing or out of order (found entry %d in its place)", i)
	}
	*leaf = tlog.RecordHash(entry)
	var recorded tlog.Hash
	if n, err := base64.StdEncoding.Decode(recorded[:], hash); err != nil || n != tlog.HashSize {
		return failf(want, "malformed leaf hash")
	}
	if recorded != *leaf {
		return failf(want, "content does not match the leaf hash the room recorded")
	}
	if _, err := ParseEntry(entry); err != nil {
		return failf(want, "%v", err)
	}
	return nil
}

// checkSince proves the bundle's latest checkpoint extends the caller's
// earlier one.
func checkSince(since []byte, v note.Verifier, latest *Checkpoint, history []bundleHistory) error {
	s, err := ParseCheckpoint(since, v)
	if err != nil {
		return failf(-1, "your earlier checkpoint: %v", err)
	}
	if s.Size > latest.Size {
		return failf(-1, "the log shrank from %d entries (your checkpoint) to %d: it was rolled back", s.Size, latest.Size)
	}
	if s.Size == latest.Size {
		if s.Root != latest.Root {
			return failf(-1, "your checkpoint and the bundle's sign different trees of the same size: the log forked")
		}
		return nil
	}
	for _, hc := range history {
		c, err := ParseCheckpoint([]byte(hc.Checkpoint), v)
		if err != nil || c.Size != s.Size {
			continue
		}
		if c.Root != s.Root {
			return failf(-1, "your checkpoint of size %d and the room's differ: the log was rewritten", s.Size)
		}
		return nil // the history's proof to latest was checked already
	}
	return failf(-1, "the bundle has no consistency proof from your checkpoint of size %d", s.Size)
}

// readLine returns the next line without its newline.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, errors.New("line too long")
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF // a last line without its newline was cut off
		}
		return nil, err
	}
	return line[:len(line)-1], nil
}
