package bundle

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Report says what a successful Verify checked.
type Report struct {
	Format      string `json:"format"` // BundleFormat or SparseBundleFormat
	Scope       string `json:"scope,omitempty"`
	Origin      string `json:"origin"`
	From        int64  `json:"from"` // the first entry's index
	To          int64  `json:"to"`   // one past the last entry's index
	TreeSize    int64  `json:"tree_size"`
	Root        string `json:"root"`
	Entries     int64  `json:"entries"`
	Checkpoints int    `json:"checkpoints_checked"`
	Since       int64  `json:"since_size,omitempty"` // size of the caller's earlier checkpoint, if given
	// Checkpoint is the latest checkpoint, as signed, which the entries
	// were verified against: the one to keep for a later since.
	Checkpoint string `json:"checkpoint"`
}

// MaxRangeCheckpoints bounds the earlier checkpoints of sizes inside its
// range that a full bundle's history may hold; with the reader's own, a
// full bundle's history holds at most MaxRangeCheckpoints+1, a sparse
// one's at most 1. A verifier checks a signature and a proof for each: a
// history without bounds would let a bundle cost it without bounds.
const MaxRangeCheckpoints = 1024

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

// hashText is the length of a hash in standard base64.
const hashText = 44

// decodeHash decodes a hash in standard base64. Decode writes as many bytes
// as the text holds (33 for 44 characters without padding), so it decodes
// into a buffer that fits them and checks the count.
func decodeHash(h *tlog.Hash, text []byte) bool {
	var buf [hashText * 3 / 4]byte
	if len(text) != hashText {
		return false
	}
	n, err := base64.StdEncoding.Decode(buf[:], text)
	if err != nil || n != tlog.HashSize {
		return false
	}
	copy(h[:], buf[:n])
	return true
}

// Verify checks an export bundle of either format (BundleFormat or
// SparseBundleFormat) offline with the room's signed-note verifier key. If
// since is not nil (a checkpoint the caller saved earlier), Verify also
// proves that the bundle's log extends it: a log that was rolled back or
// forked since then fails. On failure the error is a *VerifyError.
func Verify(r io.Reader, v note.Verifier, since []byte) (*Report, error) {
	return VerifyEntries(r, v, since, nil)
}

// VerifyEntries is Verify that also hands fn every entry, parsed, in index
// order, once the entry itself is checked. What fn saw is to be trusted
// only when VerifyEntries returns nil (a later entry or the tree may still
// fail). An error from fn ends the verification and is returned as is.
func VerifyEntries(r io.Reader, v note.Verifier, since []byte, fn func(index int64, e Entry) error) (*Report, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	first, err := readHeader(br)
	if err != nil {
		return nil, failf(-1, "no header: %v", err)
	}
	if err := checkHeaderKeys(first); err != nil {
		return nil, failf(-1, "header: %v", err)
	}
	var f struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(first, &f); err != nil {
		return nil, failf(-1, "header is not JSON")
	}
	switch f.Format {
	case BundleFormat:
		return verifyFull(br, first, v, since, fn)
	case SparseBundleFormat:
		return verifySparse(br, first, v, since, fn)
	}
	return nil, failf(-1, "format %q, want %q or %q", f.Format, BundleFormat, SparseBundleFormat)
}

// verifyCheckpoints checks the latest checkpoint, every earlier one (signed
// by the same key, and a prefix of the latest) and, if given, the caller's
// own earlier checkpoint. It returns the latest and the earlier ones.
// recomputed, if set, says which tree sizes the bundle's entries let the
// verifier recompute: the caller's checkpoint of such a size needs no proof
// in the history, the caller checks it against the tree (verifyFull).
func verifyCheckpoints(v note.Verifier, origin, signed string, history []History, maxHistory int, since []byte, rep *Report, recomputed func(size int64) bool) (*Checkpoint, []*Checkpoint, error) {
	latest, err := ParseCheckpoint([]byte(signed), v)
	if err != nil {
		return nil, nil, failf(-1, "latest checkpoint: %v", err)
	}
	if origin != latest.Origin {
		return nil, nil, failf(-1, "the header names origin %q, its checkpoint %q", origin, latest.Origin)
	}
	if len(history) > maxHistory {
		return nil, nil, failf(-1, "%d earlier checkpoints in the history, where a bundle of this format holds at most %d", len(history), maxHistory)
	}
	rep.Origin, rep.TreeSize, rep.Checkpoints = latest.Origin, latest.Size, 1
	rep.Root = base64.StdEncoding.EncodeToString(latest.Root[:])
	rep.Checkpoint = string(latest.Note)
	var older []*Checkpoint
	for _, hc := range history {
		c, err := ParseCheckpoint([]byte(hc.Checkpoint), v)
		if err != nil {
			return nil, nil, failf(-1, "historical checkpoint: %v", err)
		}
		if err := CheckConsistency(c, latest, hc.Proof); err != nil {
			return nil, nil, &VerifyError{Index: -1, Reason: err.Error()}
		}
		rep.Checkpoints++
		older = append(older, c)
	}
	if since != nil {
		if err := checkSince(since, v, latest, older, recomputed); err != nil {
			return nil, nil, err
		}
		s, _ := ParseCheckpoint(since, v)
		rep.Since = s.Size
	}
	return latest, older, nil
}

// checkSince proves the bundle's latest checkpoint extends the caller's
// earlier one.
func checkSince(since []byte, v note.Verifier, latest *Checkpoint, older []*Checkpoint, recomputed func(int64) bool) error {
	s, err := ParseCheckpoint(since, v)
	if err != nil {
		return failf(-1, "your earlier checkpoint: %v", err)
	}
	if s.Size == 0 {
		return nil // every log extends the empty one
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
	for _, c := range older {
		if c.Size != s.Size {
			continue
		}
		if c.Root != s.Root {
			return failf(-1, "your checkpoint of size %d and the room's differ: the log was rewritten", s.Size)
		}
		return nil // the history's proof to latest was checked already
	}
	if recomputed != nil && recomputed(s.Size) {
		return nil // checked against the tree as it is recomputed
	}
	return failf(-1, "the bundle has no consistency proof from your checkpoint of size %d: export one that extends it (cleanroom audit export --since)", s.Size)
}

// MaxHeader bounds a bundle's header line: the latest checkpoint and at
// most MaxRangeCheckpoints+1 earlier ones, each a signed note of a few
// hundred bytes with a consistency proof of up to two hashes a level of the
// tree (under 4 KB in all for a tree of 2^40 entries), and the range's left
// hashes and tail proof.
const MaxHeader = 8 << 20

// readHeader returns the first line, without its newline, of up to
// MaxHeader bytes.
func readHeader(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, err := br.ReadSlice('\n')
		if len(line)+len(part) > MaxHeader {
			return nil, errors.New("line too long")
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			line = append(line, part...)
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(line)+len(part) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if line == nil {
			return part[:len(part)-1], nil
		}
		return append(line, part[:len(part)-1]...), nil
	}
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

// decodeHeader decodes a header line into h (a *Header or *SparseHeader),
// refusing members h does not have.
func decodeHeader(line []byte, h any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(h); err != nil {
		return failf(-1, "header does not decode as its format's: %v", err)
	}
	return nil
}

// headerKeys are the names of the members of a header's objects: the
// header's own, a history entry's and a left hash's.
var headerKeys = map[string]bool{
	"format": true, "origin": true, "scope": true, "from": true, "to": true, "checkpoint": true, "history": true,
	"left": true, "tail_proof": true, "proof": true, "index": true, "hash": true,
}

// checkHeaderKeys refuses a header whose objects have a member named other
// than exactly as the format writes it, or named twice. encoding/json would
// take "Checkpoint" or "chec\u212apoint" (KELVIN SIGN) for "checkpoint",
// and the last of two: the header would read one way to Verify and another
// to a reader that matches names exactly (jq, a map), which could keep a
// checkpoint Verify never checked. Members outside the format are refused
// by the decoding that follows (DisallowUnknownFields).
func checkHeaderKeys(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	type container struct {
		object  bool
		seen    map[string]bool // an object's members so far
		wantKey bool            // an object's next token is a member's name
	}
	var stack []*container
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return errors.New("not JSON")
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if n := len(stack); n > 0 && stack[n-1].object {
				stack[n-1].wantKey = true // the value ended
			}
			continue
		}
		var top *container
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		if top != nil && top.wantKey {
			name, _ := tok.(string)
			if !headerKeys[name] {
				return fmt.Errorf("member %q is not the format's", name)
			}
			if top.seen[name] {
				return fmt.Errorf("member %q appears twice", name)
			}
			top.seen[name], top.wantKey = true, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &container{object: true, seen: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &container{})
		default:
			if top != nil && top.object {
				top.wantKey = true
			}
		}
	}
}
