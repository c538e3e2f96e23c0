package bundle

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a signed statement of the log's size and root hash, in the
// C2SP tlog-checkpoint format inside a C2SP signed note:
//
//	<origin>
//	<tree size, decimal>
//	<root hash, standard base64>
//
//	— <origin> <base64(key hash || Ed25519 signature)>
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	Note   []byte // the signed note, as published
}

// ErrCheckpoint means a checkpoint is malformed or its signature does not
// verify with the key given. The caller must not trust anything it vouches for.
var ErrCheckpoint = errors.New("invalid checkpoint")

// VerifierKey returns the signed-note verifier key ("origin+hash+key") for a
// room's public key: what an auditor passes to cleanroom audit verify --key.
func VerifierKey(origin string, pub ed25519.PublicKey) (string, error) {
	return note.NewEd25519VerifierKey(origin, pub)
}

// ParseCheckpoint verifies a signed checkpoint with v and parses it.
func ParseCheckpoint(signed []byte, v note.Verifier) (*Checkpoint, error) {
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	c, err := parseCheckpointText(n.Text)
	if err != nil {
		return nil, err
	}
	if c.Origin != v.Name() {
		return nil, fmt.Errorf("%w: origin %q is not the key's name %q", ErrCheckpoint, c.Origin, v.Name())
	}
	c.Note = bytes.Clone(signed)
	return c, nil
}

// parseCheckpointText parses the checkpoint body: origin, size (canonical
// decimal), root (standard base64 of 32 bytes), each ending in a newline.
func parseCheckpointText(text string) (*Checkpoint, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return nil, fmt.Errorf("%w: want origin, size and root lines", ErrCheckpoint)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return nil, fmt.Errorf("%w: bad size", ErrCheckpoint)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return nil, fmt.Errorf("%w: bad root hash", ErrCheckpoint)
	}
	return &Checkpoint{Origin: lines[0], Size: size, Root: tlog.Hash(root)}, nil
}

// ParseUnverified reads a checkpoint without checking its signature: for
// the log reading what it stored itself. Whoever relies on a checkpoint
// checks its signature (ParseCheckpoint, Verify).
func ParseUnverified(signed []byte) (*Checkpoint, error) {
	text, _, ok := bytes.Cut(signed, []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no signature block", ErrCheckpoint)
	}
	c, err := parseCheckpointText(string(text) + "\n")
	if err != nil {
		return nil, err
	}
	c.Note = signed
	return c, nil
}

// ErrProof means a proof does not check out: the entry is not in the tree,
// or the two trees are not one the extension of the other.
var ErrProof = errors.New("audit proof does not verify")

// CheckInclusion verifies that entry (canonical bytes) is entry index of
// the tree that checkpoint c signs.
func CheckInclusion(c *Checkpoint, index int64, entry []byte, p tlog.RecordProof) error {
	if err := tlog.CheckRecord(p, c.Size, c.Root, index, tlog.RecordHash(entry)); err != nil {
		return fmt.Errorf("%w: entry %d in tree of size %d: %v", ErrProof, index, c.Size, err)
	}
	return nil
}

// CheckConsistency verifies that the tree signed by older is a prefix of
// the tree signed by newer.
func CheckConsistency(older, newer *Checkpoint, p tlog.TreeProof) error {
	if older.Size > newer.Size {
		return fmt.Errorf("%w: older checkpoint is larger (%d > %d): the log was rolled back", ErrProof, older.Size, newer.Size)
	}
	if err := tlog.CheckTree(p, newer.Size, newer.Root, older.Size, older.Root); err != nil {
		return fmt.Errorf("%w: size %d is not a prefix of size %d: %v", ErrProof, older.Size, newer.Size, err)
	}
	return nil
}
