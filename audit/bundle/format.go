package bundle

import (
	"encoding/base64"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// BundleFormat names and versions the export bundle, a text file that a
// compliance officer verifies offline with nothing but the room's public key:
//
//	line 1:  a JSON header, on one line:
//	         {"format": "cleanroom.dev/audit-bundle/v1",
//	          "origin": the log's origin,
//	          "from": F, "to": T,            entries F..T-1 follow
//	          "checkpoint": signed note,      the latest checkpoint, size N >= T
//	          "history": [{"checkpoint": signed note, "proof": [hash, ...]}, ...],
//	                                          earlier checkpoints, each with its
//	                                          consistency proof to N: those the room
//	                                          signed of sizes in F+1..T (at most
//	                                          1,024, spread over the range), and the
//	                                          reader's, if the export named its size
//	          "left": [{"index": i, "hash": h}, ...],
//	                                          stored hashes of complete subtrees
//	                                          before F (none when F = 0)
//	          "tail_proof": [hash, ...]}      consistency proof from T to N
//	then:    one line per entry, "<index> <leaf hash> <canonical entry JSON>"
//	last:    "end <number of entries>"
//
// Hashes are standard base64 of 32 bytes; leaf and tree hashes are RFC 6962
// (SHA-256 with 0x00 and 0x01 prefixes). Verify recomputes the leaf hash of
// every entry and the tree root at T from the entries and "left" alone, checks
// it against the signed checkpoint through the tail proof, checks every
// historical checkpoint through its consistency proof and, inside F+1..T,
// against its own recomputation, and names the first entry that does not
// match (or the span between two checkpoints where a leaf hash was
// recomputed over an edited entry). The reader's own checkpoint (Verify's
// since) of a size in F+1..T is checked against the recomputation; of
// another size, through the history's proof.
const BundleFormat = "cleanroom.dev/audit-bundle/v1"

// Header is the first line of a BundleFormat bundle, as its writer
// (audit.Log.Export) fills it and Verify reads it.
type Header struct {
	Format     string         `json:"format"`
	Origin     string         `json:"origin"`
	From       int64          `json:"from"`
	To         int64          `json:"to"`
	Checkpoint string         `json:"checkpoint"`
	History    []History      `json:"history"`
	Left       []StoredHash   `json:"left"`
	TailProof  tlog.TreeProof `json:"tail_proof"`
}

// History is an earlier signed checkpoint with its consistency proof to
// the bundle's latest.
type History struct {
	Checkpoint string         `json:"checkpoint"`
	Proof      tlog.TreeProof `json:"proof"`
}

// StoredHash is a stored hash of the tree (tlog.StoredHashIndex numbering).
type StoredHash struct {
	Index int64     `json:"index"`
	Hash  tlog.Hash `json:"hash"`
}

// Replay rebuilds the Merkle tree over entries from..to-1, keeping only the
// frontier (at most one stored hash per level) so memory stays small for any
// log size. Hashes it needs from before "from" come from left; missing, it
// asks fetch (the exporter reads the store and records them; the verifier
// has no fetch, so a missing hash is a bad bundle).
type Replay struct {
	from, n int64
	known   map[int64]tlog.Hash
	fetch   func(index int64) (tlog.Hash, error)
	read    []int64 // indexes read during the current add, to prune
}

// NewReplay starts a Replay at entry from, with the stored hashes left
// before it and, for a writer, fetch to read those it lacks.
func NewReplay(from int64, left []StoredHash, fetch func(int64) (tlog.Hash, error)) *Replay {
	r := &Replay{from: from, n: from, known: make(map[int64]tlog.Hash, 64+len(left)), fetch: fetch}
	for _, h := range left {
		r.known[h.Index] = h.Hash
	}
	return r
}

// ReadHashes makes a Replay a tlog.HashReader.
func (r *Replay) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		h, ok := r.known[idx]
		if !ok {
			if r.fetch == nil {
				return nil, fmt.Errorf("bundle lacks stored hash %d", idx)
			}
			var err error
			if h, err = r.fetch(idx); err != nil {
				return nil, err
			}
			r.known[idx] = h
		}
		out[i] = h
	}
	r.read = append(r.read, indexes...)
	return out, nil
}

// Add appends the next leaf and prunes the hashes the new subtree covers:
// neither later appends nor any tree hash will read them again.
func (r *Replay) Add(leaf tlog.Hash) error {
	r.read = r.read[:0]
	hashes, err := tlog.StoredHashesForRecordHash(r.n, leaf, r)
	if err != nil {
		return err
	}
	for _, idx := range r.read {
		delete(r.known, idx)
	}
	top := len(hashes) - 1
	r.known[tlog.StoredHashIndex(top, r.n>>uint(top))] = hashes[top]
	r.n++
	return nil
}

// Root is the tree hash of every leaf added so far.
func (r *Replay) Root() (tlog.Hash, error) { return tlog.TreeHash(r.n, r) }

// SparseBundleFormat names and versions the sparse export bundle: some of
// the log's entries, each with its own proof, for an auditor who may see
// only those:
//
//	line 1:  a JSON header, on one line:
//	         {"format": "cleanroom.dev/audit-bundle/v2",
//	          "origin": the log's origin,
//	          "scope": what the room says it selected (a description: unsigned),
//	          "checkpoint": signed note,      the latest checkpoint, size N
//	          "history": [{"checkpoint": signed note, "proof": [hash, ...]}, ...]}
//	                                          the reader's earlier checkpoint, if the
//	                                          export named its size, with its
//	                                          consistency proof to N; else empty
//	then:    one line per entry, indexes ascending:
//	         "<index> <leaf hash> <inclusion proof> <canonical entry JSON>"
//	         the proof is the RFC 6962 audit path of the entry in the tree of
//	         size N, hashes comma-separated ("-" when empty)
//	last:    "end <number of entries>"
//
// Verify checks each entry's canonical form and leaf hash, and its
// inclusion proof against the signed checkpoint (tlog.CheckRecord), so it
// needs neither the other entries nor any hash but the proofs. A sparse
// bundle proves that every entry it holds is in the signed log, unedited;
// it cannot prove that the room left nothing out of the scope: a room-wide
// auditor's full bundle (BundleFormat) can.
const SparseBundleFormat = "cleanroom.dev/audit-bundle/v2"

// SparseHeader is the first line of a SparseBundleFormat bundle.
type SparseHeader struct {
	Format     string    `json:"format"`
	Origin     string    `json:"origin"`
	Scope      string    `json:"scope,omitempty"`
	Checkpoint string    `json:"checkpoint"`
	History    []History `json:"history"`
}

// MaxProof bounds an inclusion proof: one hash per level of a tree of at
// most 2^63 entries.
const MaxProof = 63

// AppendProof appends an inclusion proof as a sparse bundle line holds it:
// hashes in standard base64, comma-separated, "-" when empty.
func AppendProof(line []byte, p tlog.RecordProof) []byte {
	if len(p) == 0 {
		return append(line, '-')
	}
	for j, h := range p {
		if j > 0 {
			line = append(line, ',')
		}
		line = base64.StdEncoding.AppendEncode(line, h[:])
	}
	return line
}
