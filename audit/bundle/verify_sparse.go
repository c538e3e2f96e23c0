package bundle

import (
	"bufio"
	"bytes"
	"errors"
	"strconv"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// verifySparse checks a SparseBundleFormat bundle: each entry on its own,
// by its inclusion proof in the signed tree.
func verifySparse(br *bufio.Reader, first []byte, v note.Verifier, since []byte, fn func(int64, Entry) error) (*Report, error) {
	var h SparseHeader
	if err := decodeHeader(first, &h); err != nil {
		return nil, err
	}
	rep := &Report{Format: h.Format, Scope: h.Scope}
	latest, _, err := verifyCheckpoints(v, h.Origin, h.Checkpoint, h.History, 1, since, rep, nil)
	if err != nil {
		return nil, err
	}
	prev := int64(-1)
	var n int64
	for {
		line, err := readLine(br)
		if err != nil {
			return nil, failf(prev+1, "bundle ends early (no end line): truncated")
		}
		if rest, ok := bytes.CutPrefix(line, []byte("end ")); ok {
			c, err := strconv.ParseInt(string(rest), 10, 64)
			if err != nil || c != n || strconv.FormatInt(c, 10) != string(rest) {
				return nil, failf(-1, "end line says %q entries, the bundle holds %d", rest, n)
			}
			break
		}
		i, e, err := checkSparseLine(line, prev, latest)
		if err != nil {
			return nil, err
		}
		if fn != nil {
			if err := fn(i, e); err != nil {
				return nil, err
			}
		}
		if n == 0 {
			rep.From = i
		}
		prev, n = i, n+1
	}
	if _, err := br.ReadByte(); err == nil {
		return nil, failf(-1, "data after the end line")
	}
	rep.Entries, rep.To = n, prev+1
	return rep, nil
}

// checkSparseLine checks one "<index> <leaf hash> <proof> <entry>" line
// whose index must follow prev, against the latest checkpoint.
func checkSparseLine(line []byte, prev int64, latest *Checkpoint) (int64, Entry, error) {
	idx, rest, ok1 := bytes.Cut(line, []byte(" "))
	hash, rest, ok2 := bytes.Cut(rest, []byte(" "))
	proof, entry, ok3 := bytes.Cut(rest, []byte(" "))
	i, err := strconv.ParseInt(string(idx), 10, 64)
	if err != nil || strconv.FormatInt(i, 10) != string(idx) {
		return 0, Entry{}, failf(prev+1, "malformed index")
	}
	if i <= prev {
		return 0, Entry{}, failf(i, "repeated or out of order (after entry %d)", prev)
	}
	if i >= latest.Size {
		return 0, Entry{}, failf(i, "not in the signed checkpoint of %d entries", latest.Size)
	}
	if !ok1 || !ok2 || !ok3 {
		return 0, Entry{}, failf(i, "malformed line")
	}
	var recorded tlog.Hash
	if !decodeHash(&recorded, hash) {
		return 0, Entry{}, failf(i, "malformed leaf hash")
	}
	p, err := parseProof(proof)
	if err != nil {
		return 0, Entry{}, failf(i, "malformed inclusion proof")
	}
	leaf := tlog.RecordHash(entry)
	if recorded != leaf {
		return 0, Entry{}, failf(i, "content does not match the leaf hash the room recorded")
	}
	e, err := ParseEntry(entry)
	if err != nil {
		return 0, Entry{}, failf(i, "%v", err)
	}
	if err := tlog.CheckRecord(p, latest.Size, latest.Root, i, leaf); err != nil {
		return 0, Entry{}, failf(i, "its inclusion proof does not lead to the signed checkpoint of %d entries", latest.Size)
	}
	return i, e, nil
}

var (
	errProofTooLong = errors.New("inclusion proof longer than any tree's depth")
	errProofHash    = errors.New("inclusion proof hash is not 32 bytes in base64")
)

// parseProof reads comma-separated base64 hashes, or "-" for none.
func parseProof(b []byte) (tlog.RecordProof, error) {
	if string(b) == "-" {
		return tlog.RecordProof{}, nil
	}
	if n := bytes.Count(b, []byte(",")) + 1; n > MaxProof {
		return nil, errProofTooLong
	}
	var p tlog.RecordProof
	for part := range bytes.SplitSeq(b, []byte(",")) {
		var h tlog.Hash
		if !decodeHash(&h, part) {
			return nil, errProofHash
		}
		p = append(p, h)
	}
	return p, nil
}
