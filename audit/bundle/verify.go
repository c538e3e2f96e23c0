package bundle

import (
	"bufio"
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
func verifyCheckpoints(v note.Verifier, signed string, history []History, since []byte, rep *Report, recomputed func(size int64) bool) (*Checkpoint, []*Checkpoint, error) {
	latest, err := ParseCheckpoint([]byte(signed), v)
	if err != nil {
		return nil, nil, failf(-1, "latest checkpoint: %v", err)
	}
	rep.Origin, rep.TreeSize, rep.Checkpoints = latest.Origin, latest.Size, 1
	rep.Root = base64.StdEncoding.EncodeToString(latest.Root[:])
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
		if err := checkSince(since, v, latest, history, recomputed); err != nil {
			return nil, nil, err
		}
		s, _ := ParseCheckpoint(since, v)
		rep.Since = s.Size
	}
	return latest, older, nil
}

// checkSince proves the bundle's latest checkpoint extends the caller's
// earlier one.
func checkSince(since []byte, v note.Verifier, latest *Checkpoint, history []History, recomputed func(int64) bool) error {
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
	if recomputed != nil && recomputed(s.Size) {
		return nil // checked against the tree as it is recomputed
	}
	return failf(-1, "the bundle has no consistency proof from your checkpoint of size %d: export one that extends it (cleanroom audit export --since)", s.Size)
}

// maxHeader bounds a bundle's header line. The room writes at most 1,026
// checkpoints there, each with its consistency proof (about 0.75 MB in
// all); the format does not limit them, and the bound leaves a writer that
// carries every checkpoint it signed a million of them, where entry lines
// are held to the reader's 1 MiB.
const maxHeader = 1 << 30

// readHeader returns the first line, without its newline, of up to
// maxHeader bytes.
func readHeader(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, err := br.ReadSlice('\n')
		if len(line)+len(part) > maxHeader {
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
