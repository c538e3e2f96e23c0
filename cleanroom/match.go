package cleanroom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"net/http"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/matcher"
)

// joinPartSize is how many matches one stored join part holds.
const joinPartSize = 16384

// matchRecord is the latest match run of a collaboration: its result, the
// uploads it matched, and where its join table is (prefixJoin, in Parts
// parts of len(Members) little-endian uint32 rows per match, members in
// the collaboration's order).
type matchRecord struct {
	api.MatchResult
	Uploads map[string]string `json:"uploads"`
	Parts   int               `json:"parts"`
	// JoinDigest is the SHA-256 of the join table's parts, in order.
	JoinDigest string `json:"join_digest"`
}

// match intersects the members' fully encrypted (or hashed) sets and keeps
// the join: for every person in all sets, the row in each. It compares the
// canary tokens first, so a normalization or secret mismatch is reported
// rather than matched at 0%.
func (r *Room) match(ctx context.Context, who *actor, collab string) (*api.MatchResult, error) {
	c, err := r.collab(collab)
	if err != nil {
		return nil, err
	}
	a := act{action: "match.run", collab: c}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	for _, m := range c.Members {
		if ds := c.Datasets[m]; ds == nil || !ds.ready(c) {
			return nil, conflict("the set of %s still waits for re-encryption by the other members (run cleanroom sync)", m)
		}
	}
	if err := dataAllowed(c, r.now()); err != nil {
		return nil, err
	}
	if m1, m2, ok := canaryMismatch(c); !ok {
		reason := fmt.Sprintf("the canary identifiers of %s and %s do not match: they normalized differently (profile %s, kind %s) or hold different collaboration secrets", m1, m2, c.Profile, c.Kind)
		d.Allow, d.Reasons = false, []string{reason}
		if _, err := r.audit.Append(ctx, r.entry(who, a.action, c.ID, d, nil, "")); err != nil {
			return nil, r.auditFailed(err)
		}
		return nil, &api.Problem{Type: api.ProblemCanaryMismatch, Title: "the members' canary identifiers do not match", Detail: reason, Status: http.StatusConflict}
	}

	r.matchMu.Lock()
	defer r.matchMu.Unlock()
	run := c.Runs + 1
	sets := make([]matcher.Reader, len(c.Members))
	for i, m := range c.Members {
		sets[i] = r.newLayerReader(c.Datasets[m], false)
	}
	jw := &joinWriter{r: r, prefix: fmt.Sprintf("%s%s/%d", prefixJoin, c.ID, run), h: sha256.New()}
	res, err := matcher.Intersect(ctx, sets, matcher.Options{MemoryBudget: r.cfg.MatchMemory, TempDir: r.cfg.TempDir}, jw.add)
	if err == nil {
		err = jw.flush()
	}
	if err != nil {
		return nil, fmt.Errorf("cleanroom: matching: %w", err)
	}
	mr := &matchRecord{
		MatchResult: api.MatchResult{Run: run, Matched: res.Matches, Rows: map[string]int64{}, Duplicates: map[string]int64{}, At: r.now().UTC()},
		Uploads:     map[string]string{}, Parts: jw.parts,
	}
	refs := make([]audit.DataRef, 0, len(c.Members)+1)
	for i, m := range c.Members {
		ds := c.Datasets[m]
		mr.Rows[m] = res.Sets[i].Rows
		mr.Duplicates[m] = res.Sets[i].Duplicates
		mr.Uploads[m] = ds.Upload
		refs = append(refs, audit.DataRef{Name: "dataset/" + ds.Upload, Digest: ds.Digest, Rows: ds.Rows})
	}
	mr.JoinDigest = hex.EncodeToString(jw.h.Sum(nil))
	refs = append(refs, audit.DataRef{Name: fmt.Sprintf("join/%s/%d", c.ID, run), Digest: mr.JoinDigest, Rows: res.Matches})
	out, _ := json.Marshal(mr.MatchResult)
	digest, err := r.resultDigest(ctx, c.ID, out)
	if err != nil {
		return nil, err
	}
	err = r.commit(ctx, who, a, d, refs, digest, func(txn *badger.Txn) error {
		return updateCollab(txn, collab, func(c *collabRecord) error {
			if err := dataAllowed(c, r.now()); err != nil {
				return err
			}
			for m, up := range mr.Uploads {
				if ds := c.Datasets[m]; ds == nil || ds.Upload != up {
					return conflict("a member replaced its dataset during the match; match again")
				}
			}
			c.Match, c.Runs = mr, run
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if run > 1 {
		var older []string
		for prev := range run - 1 {
			older = append(older, joinPrefix(c.ID, prev+1))
		}
		r.forget(ctx, fmt.Sprintf("older-joins/%s", c.ID), older...)
	}
	r.metrics.matches.Inc()
	return &mr.MatchResult, nil
}

// canaryMismatch reports the first two members whose canary tokens differ.
func canaryMismatch(c *collabRecord) (string, string, bool) {
	first := c.Datasets[c.Members[0]]
	for _, m := range c.Members[1:] {
		ds := c.Datasets[m]
		if len(ds.Canary) != len(first.Canary) {
			return c.Members[0], m, false
		}
		for i := range ds.Canary {
			if !bytes.Equal(ds.Canary[i], first.Canary[i]) {
				return c.Members[0], m, false
			}
		}
	}
	return "", "", true
}

// joinWriter stores the join table a part at a time, under keys nothing
// reads until the match run is committed.
type joinWriter struct {
	r      *Room
	prefix string
	buf    []byte
	n      int
	parts  int
	h      hash.Hash
}

func (w *joinWriter) add(rows []uint32) error {
	for _, row := range rows {
		w.buf = binary.LittleEndian.AppendUint32(w.buf, row)
	}
	w.n++
	if w.n == joinPartSize {
		return w.flush()
	}
	return nil
}

func (w *joinWriter) flush() error {
	if w.n == 0 {
		return nil
	}
	w.h.Write(w.buf)
	key := partKey(w.prefix, w.parts)
	val := sealSegment(w.buf)
	if err := w.r.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(key), val) }); err != nil {
		return err
	}
	w.parts++
	w.buf, w.n = w.buf[:0], 0
	return nil
}

// readJoin calls fn with every match's rows (one per member), part by part.
func (r *Room) readJoin(c *collabRecord, fn func(rows []uint32)) error {
	m := c.Match
	n := len(c.Members)
	rows := make([]uint32, n)
	for p := range m.Parts {
		err := r.withSegment(partKey(fmt.Sprintf("%s%s/%d", prefixJoin, c.ID, m.Run), p), func(b []byte) error {
			for ; len(b) >= 4*n; b = b[4*n:] {
				for i := range rows {
					rows[i] = binary.LittleEndian.Uint32(b[4*i:])
				}
				fn(rows)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
