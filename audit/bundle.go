package audit

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/dgraph-io/badger/v4"
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
//	                                          every earlier checkpoint the room
//	                                          signed, with its consistency proof to N
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
// historical checkpoint it can against its own recomputation and through its
// consistency proof, and names the first entry that does not match.
const BundleFormat = "cleanroom.dev/audit-bundle/v1"

type bundleHeader struct {
	Format     string          `json:"format"`
	Origin     string          `json:"origin"`
	From       int64           `json:"from"`
	To         int64           `json:"to"`
	Checkpoint string          `json:"checkpoint"`
	History    []bundleHistory `json:"history"`
	Left       []bundleHash    `json:"left"`
	TailProof  tlog.TreeProof  `json:"tail_proof"`
}

type bundleHistory struct {
	Checkpoint string         `json:"checkpoint"`
	Proof      tlog.TreeProof `json:"proof"`
}

type bundleHash struct {
	Index int64     `json:"index"`
	Hash  tlog.Hash `json:"hash"`
}

// replay rebuilds the Merkle tree over entries from..to-1, keeping only the
// frontier (at most one stored hash per level) so memory stays small for any
// log size. Hashes it needs from before "from" come from left; missing, it
// asks fetch (the exporter reads the store and records them; the verifier
// has no fetch, so a missing hash is a bad bundle).
type replay struct {
	from, n int64
	known   map[int64]tlog.Hash
	fetch   func(index int64) (tlog.Hash, error)
	read    []int64 // indexes read during the current add, to prune
}

func newReplay(from int64, left []bundleHash, fetch func(int64) (tlog.Hash, error)) *replay {
	r := &replay{from: from, n: from, known: make(map[int64]tlog.Hash, 64+len(left)), fetch: fetch}
	for _, h := range left {
		r.known[h.Index] = h.Hash
	}
	return r
}

func (r *replay) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
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

// add appends the next leaf and prunes the hashes the new subtree covers:
// neither later appends nor any tree hash will read them again.
func (r *replay) add(leaf tlog.Hash) error {
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

func (r *replay) root() (tlog.Hash, error) { return tlog.TreeHash(r.n, r) }

// Export writes a bundle of entries from..to-1 (to <= 0 means up to the
// latest checkpoint) to w. A writable log signs a checkpoint first, so the
// bundle covers every entry; a read-only one exports up to its latest.
func (l *Log) Export(ctx context.Context, w io.Writer, from, to int64) error {
	c, err := l.exportCheckpoint(ctx)
	if err != nil {
		return err
	}
	if to <= 0 {
		to = c.Size
	}
	if from < 0 || from > to || to > c.Size {
		return fmt.Errorf("audit: cannot export entries %d..%d against a checkpoint of size %d", from, to-1, c.Size)
	}
	return l.db.View(func(txn *badger.Txn) error {
		store := txnHashReader{txn}
		h := bundleHeader{Format: BundleFormat, Origin: c.Origin, From: from, To: to, Checkpoint: string(c.Note)}
		if h.History, err = l.history(ctx, c, store); err != nil {
			return err
		}
		if to < c.Size {
			if h.TailProof, err = tlog.ProveTree(c.Size, to, store); err != nil {
				return err
			}
		}

		// Replay the range once to learn which hashes before "from" the
		// verifier will need.
		rp := newReplay(from, nil, func(idx int64) (tlog.Hash, error) {
			hs, err := store.ReadHashes([]int64{idx})
			if err != nil {
				return tlog.Hash{}, err
			}
			h.Left = append(h.Left, bundleHash{idx, hs[0]})
			return hs[0], nil
		})
		for i := from; i < to; i++ {
			// Which hashes are read depends only on positions, not on
			// values, so the replay needs no leaf values here.
			if err := rp.add(tlog.Hash{}); err != nil {
				return err
			}
		}
		if _, err := rp.root(); err != nil {
			return err
		}

		bw := bufio.NewWriterSize(w, 1<<20)
		hb, err := json.Marshal(h)
		if err != nil {
			return err
		}
		bw.Write(hb)
		bw.WriteByte('\n')
		var line []byte
		err = l.scanEntries(ctx, txn, from, to, func(i int64, entry []byte) error {
			line = strconv.AppendInt(line[:0], i, 10)
			line = append(line, ' ')
			// The leaf hash the room stored when it appended the entry, not
			// one recomputed now: if the entry was edited since, the two
			// differ and the verifier names it.
			recorded, err := store.ReadHashes([]int64{tlog.StoredHashIndex(0, i)})
			if err != nil {
				return err
			}
			line = base64.StdEncoding.AppendEncode(line, recorded[0][:])
			line = append(line, ' ')
			line = append(line, entry...)
			line = append(line, '\n')
			_, err = bw.Write(line)
			return err
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(bw, "end %d\n", to-from)
		return bw.Flush()
	})
}

// scanEntries calls fn for entries from..to-1 in order, failing on a gap.
func (l *Log) scanEntries(ctx context.Context, txn *badger.Txn, from, to int64, fn func(int64, []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixEntry), PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	next := from
	for it.Seek(indexKey(prefixEntry, from)); it.Valid() && next < to; it.Next() {
		if next%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		item := it.Item()
		if i := u64(item.Key()[len(prefixEntry):]); i != next {
			return fmt.Errorf("%w: entry %d is missing from the store", ErrCorrupt, next)
		}
		if err := item.Value(func(v []byte) error { return fn(next, v) }); err != nil {
			return err
		}
		next++
	}
	if next != to {
		return fmt.Errorf("%w: entry %d is missing from the store", ErrCorrupt, next)
	}
	return nil
}
