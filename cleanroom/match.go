package cleanroom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"net/http"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/matcher"
	"github.com/opencleanroom/cleanroom/policy"
)

// joinPartSize is how many matches one stored join part holds: 2 MiB of
// rows for two members. Each part is one synced commit, written while the
// match runs, so the part's size sets how often the match waits for the
// disk: at lists of 10M, 39 commits (joinParts) rather than 611 with parts
// of 16,384; at 5M matches and 305 commits the hashed 10M demo's match
// took 2.4–2.8 s against 1.6–1.9 s with 20, in three interleaved pairs of
// runs.
const joinPartSize = 1 << 18

// matchRecord is the latest match run of a collaboration: its exact
// figures (which stay inside the room), what was released to the members,
// the uploads it matched, and where its join table is (store.Join, in Parts
// parts of len(Members) little-endian uint32 rows per match, members in the
// collaboration's order).
type matchRecord struct {
	Run     int64     `json:"run"`
	At      time.Time `json:"at"`
	Matched int64     `json:"matched"`
	// Noisy is the noisy overlap behind the released rates (the exact
	// one with noise off): a model's training sample is sized by it.
	Noisy int64 `json:"noisy,omitempty"`
	// Rows and Distinct are each member's rows matched and distinct
	// identifiers among them.
	Rows     map[string]int64  `json:"rows"`
	Distinct map[string]int64  `json:"distinct"`
	Uploads  map[string]string `json:"uploads"`
	Parts    int               `json:"parts"`
	// JoinDigest is the SHA-256 of the join table's parts, in order.
	JoinDigest string `json:"join_digest"`
	// Released is what the members, their analysts and auditors see.
	Released api.MatchResult `json:"released"`
}

func (m *matchRecord) release() api.MatchResult { return m.Released }

// releaseMatch is what a match run tells the members: the overlap with
// Laplace noise (epsilon eps, a person is in it at most once), as a share of
// each member's distinct identifiers, rounded to whole percent and capped at
// ">85%". One person more or less in any list changes it only through the
// noise. With noise off, the exact overlap as well. It keeps the noisy
// overlap in m.Noisy.
func releaseMatch(m *matchRecord, members []string, eps float64, noiseOff bool) api.MatchResult {
	rel := api.MatchResult{Run: m.Run, At: m.At, MatchRate: map[string]string{}, Epsilon: eps, Noise: !noiseOff}
	var n analytics.Noise = analytics.Laplace{}
	if noiseOff {
		n = analytics.Exact{}
		matched := m.Matched
		rel.Matched = &matched
	}
	noisy := n.Count(m.Matched, eps)
	m.Noisy = noisy
	for _, member := range members {
		if d := m.Distinct[member]; d > 0 {
			rel.MatchRate[member] = analytics.Percent(float64(noisy) / float64(d))
		}
	}
	return rel
}

// match intersects the members' fully encrypted (or hashed) sets and keeps
// the join: for every person in all sets, the row in each. It compares the
// canary tokens first, so a normalization or secret mismatch is reported
// rather than matched at 0%. What it releases is noisy and charged to the
// collaboration's budget like a query, and match runs are limited a day, so
// that matching list after list cannot single anyone out.
func (r *Room) match(ctx context.Context, who *actor, collab string) (*api.MatchResult, error) {
	// Members only wait at the gate (a stranger would learn a match runs),
	// and the collaboration is read again once through it, when no commit
	// can change its datasets any more.
	if _, err := r.collabFor(who, collab); err != nil {
		return nil, err
	}
	unlock, err := r.lockForMatch(ctx, collab)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := r.collabFor(who, collab)
	if err != nil {
		return nil, err
	}
	usage, err := r.readBudget(collab)
	if err != nil {
		return nil, err
	}
	a := act{action: policy.ActionMatchRun, collab: c, usage: usage.usage(who.partner())}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if err := r.checkMatchable(ctx, who, a, d); err != nil {
		return nil, err
	}
	mr, err := r.intersect(ctx, c)
	if err != nil {
		return nil, err
	}
	if hook := r.beforeRecord.Load(); hook != nil {
		(*hook)()
	}
	total, err := r.recordMatch(ctx, who, a, d, mr)
	if err != nil {
		r.forgetUnrecorded(ctx, c.ID, mr.Run)
		return nil, err
	}
	if mr.Run > 1 {
		var older []store.Span
		for prev := range mr.Run - 1 {
			older = append(older, store.Join(c.ID, prev+1).Span())
		}
		r.forget(ctx, fmt.Sprintf("older-joins/%s", c.ID), older...)
		r.dropExports(c.ID)
	}
	r.metrics.matches.Inc()
	rel := mr.Released
	info := total.info(d.Constraints, c.budgetShares())
	rel.Budget = &info
	return &rel, nil
}

// checkMatchable refuses a match of sets not all ready, data no longer
// allowed, or canary tokens that differ; the last is recorded as the
// refusal it is.
func (r *Room) checkMatchable(ctx context.Context, who *actor, a act, d policy.Decision) error {
	c := a.collab
	for _, m := range c.Members {
		if ds := c.Datasets[m]; ds == nil || !ds.ready(c) {
			return conflict("the set of %s still waits for re-encryption by the other members (run cleanroom sync)", m)
		}
	}
	if err := dataAllowed(c, r.now()); err != nil {
		return err
	}
	m1, m2, ok := canaryMismatch(c)
	if ok {
		return nil
	}
	reason := fmt.Sprintf("the canary identifiers of %s and %s do not match: they normalized differently (profile %s, kind %s) or hold different collaboration secrets", m1, m2, c.Profile, c.Kind)
	d.Allow, d.Reasons = false, []string{reason}
	if _, err := r.appendEntry(ctx, who, r.entry(who, a.action, c.ID, d, nil, ""), nil); err != nil {
		return r.auditFailed(err)
	}
	return &api.Problem{Type: api.ProblemCanaryMismatch, Title: "the members' canary identifiers do not match", Detail: reason, Status: http.StatusConflict}
}

// intersect runs the matcher over the members' sets and stores the join of
// the next run, under keys nothing reads until recordMatch commits it. The
// record it returns has everything but what is released.
func (r *Room) intersect(ctx context.Context, c *collabRecord) (*matchRecord, error) {
	// What a match may write on the data directory's disk: its spill files
	// (about 36 bytes a token) and its join, reserved before it starts.
	var need int64
	for _, m := range c.Members {
		need += 40 * c.Datasets[m].Rows
	}
	release, err := r.disk.reserve(need)
	if err != nil {
		return nil, err
	}
	defer release()
	memory, freeMemory, err := r.matchMemory(ctx, matchShare)
	if err != nil {
		return nil, err
	}
	defer freeMemory()
	run := c.Runs + 1
	sets := make([]matcher.Reader, len(c.Members))
	for i, m := range c.Members {
		sets[i] = r.newLayerReader(c.Datasets[m], false)
	}
	jw := &joinWriter{r: r, parts: store.Join(c.ID, run), h: sha256.New()}
	res, err := matcher.Intersect(ctx, sets, matcher.Options{MemoryBudget: memory, TempDir: r.cfg.TempDir, DuplicateRows: true}, jw.add)
	if err == nil {
		err = jw.finish(joinParts(c))
	}
	if err == nil {
		err = r.writeDuplicates(c, run, res.Sets)
	}
	if err != nil {
		// What the run wrote goes: no record names it, and the next run,
		// with the same number, may write fewer parts.
		r.forget(ctx, "failed-join/"+c.ID, store.Join(c.ID, run).Span())
		return nil, fmt.Errorf("cleanroom: matching: %w", err)
	}
	mr := &matchRecord{Run: run, At: r.now().UTC(), Matched: res.Matches, Rows: map[string]int64{}, Distinct: map[string]int64{},
		Uploads: map[string]string{}, Parts: jw.written, JoinDigest: hex.EncodeToString(jw.h.Sum(nil))}
	for i, m := range c.Members {
		mr.Rows[m] = res.Sets[i].Rows
		mr.Distinct[m] = res.Sets[i].Rows - res.Sets[i].Duplicates
		mr.Uploads[m] = c.Datasets[m].Upload
	}
	return mr, nil
}

// recordMatch releases a match run's noisy figures and, with its audit
// entry and charge, makes it the collaboration's latest, unless a member
// replaced its dataset meanwhile. A join the ledger refuses is deleted.
func (r *Room) recordMatch(ctx context.Context, who *actor, a act, d policy.Decision, mr *matchRecord) (budgetRecord, error) {
	c := a.collab
	refs := make([]audit.DataRef, 0, len(c.Members)+1)
	for _, m := range c.Members {
		ds := c.Datasets[m]
		refs = append(refs, audit.DataRef{Name: "dataset/" + ds.Upload, Digest: ds.Digest, Rows: ds.Rows})
	}
	// The join is named by the room's commitment to its digest, not its
	// size: the exact overlap stays inside the room.
	joinRef := joinRef(c.ID, mr.Run)
	refs = append(refs, audit.DataRef{Name: joinRef, Digest: r.dataDigest(joinRef, mr.JoinDigest)})
	ch := charge{match: true, member: who.partner()}
	var eps float64
	if !c.Settings.NoiseOff {
		ch.epsilon = epsilonUnits(d.Constraints.EpsilonMatch)
		eps = float64(ch.epsilon) / unitsPerEpsilon
	}
	mr.Released = releaseMatch(mr, c.Members, eps, c.Settings.NoiseOff)
	out, _ := json.Marshal(mr.Released)
	digest, err := r.resultDigest(ctx, c.ID, out)
	if err != nil {
		return budgetRecord{}, err
	}
	a.spent.epsilonMicro = ch.epsilon
	var total budgetRecord
	err = r.commit(ctx, who, a, d, refs, digest, func(tx *store.Tx) error {
		if err := updateCollab(tx, c.ID, func(c *collabRecord) error {
			if err := dataAllowed(c, r.now()); err != nil {
				return err
			}
			for m, up := range mr.Uploads {
				if ds := c.Datasets[m]; ds == nil || ds.Upload != up {
					return conflict("a member replaced its dataset during the match; match again")
				}
			}
			c.Match, c.Runs = mr, mr.Run
			return nil
		}); err != nil {
			return err
		}
		total, err = r.debit(tx, c.ID, c.budgetShares(), d.Constraints, ch)
		return err
	})
	var ld ledgerDenial
	if errors.As(err, &ld) {
		return budgetRecord{}, r.refuseCharge(ctx, who, a, d, ld)
	}
	return total, err
}

// forgetUnrecorded deletes the join of a match run that recordMatch did not
// record (the ledger refused it, a member revoked the collaboration or it
// expired during the match, the log could not record it), unless the
// collaboration's record names it after all: a commit whose outcome was
// not known may have landed. The caller holds the collaboration's match
// lock, so no other run writes the same keys meanwhile. Left, the join
// would stay on disk until a later run, which a revoked or expired
// collaboration never has.
func (r *Room) forgetUnrecorded(ctx context.Context, collab string, run int64) {
	c, err := r.collab(collab)
	if err != nil {
		r.log.Warn("reading a collaboration after its match was not recorded failed; the run's join stays until a later run", "collab", collab, "err", err)
		return
	}
	if c.Match != nil && c.Match.Run == run {
		return
	}
	r.forget(ctx, "unrecorded-join/"+collab, store.Join(collab, run).Span())
}

// joinParts is how many parts a match of c's datasets stores: as many as
// the largest join their sizes allow (joinRows), and at least one.
func joinParts(c *collabRecord) int {
	return int(max(1, (joinRows(c)+joinPartSize-1)/joinPartSize))
}

// joinRows is the largest join c's datasets allow: the fewest rows of a
// member's list, which the members know. What depends on a join's size
// and can be seen, if only through time (its parts on disk, what the
// column cache charges for it and for columns in its order, and so which
// columns it keeps), goes by this and not by the overlap: the cache
// evicting a column when one more person matched would time whether one
// person is in the other list.
func joinRows(c *collabRecord) int64 {
	least := int64(math.MaxInt64)
	for _, m := range c.Members {
		least = min(least, c.Datasets[m].Rows)
	}
	return least
}

// joinRef names a match run's join in the audit log (by the room's
// commitment to it) and in the column cache.
func joinRef(collab string, run int64) string { return fmt.Sprintf("join/%s/%d", collab, run) }

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
	r       *Room
	parts   store.Parts
	buf     []byte
	n       int
	written int // parts
	h       hash.Hash
}

func (w *joinWriter) add(rows []uint32) error {
	w.buf = store.AppendRows(w.buf, rows...)
	w.n++
	if w.n == joinPartSize {
		return w.flush()
	}
	return nil
}

// finish stores the last part, and empty ones after it up to parts in
// all. Each part is a synced commit, which takes a millisecond or more:
// were their number the join's size, the time a match takes (and the
// times the room stamps on its release and its audit entry) would tell a
// member whether its list of one target and made-up people matched
// anyone. It is the largest join the lists' sizes allow instead.
func (w *joinWriter) finish(parts int) error {
	if w.n > 0 || w.written == 0 {
		if err := w.flush(); err != nil {
			return err
		}
	}
	for w.written < parts {
		if err := w.flush(); err != nil {
			return err
		}
	}
	return nil
}

// flush stores the part in w.buf, which may be empty.
func (w *joinWriter) flush() error {
	w.h.Write(w.buf)
	key := w.parts.Key(w.written)
	if err := w.r.db.Update(func(txn *badger.Txn) error { return store.PutSegment(txn, key, w.buf) }); err != nil {
		return err
	}
	// The join is not read again until the first query.
	w.r.wroteSegment(key, store.SegmentSeal+len(w.buf))
	w.written++
	w.buf, w.n = w.buf[:0], 0
	return nil
}

// writeDuplicates stores, for each member, the rows of its list that the
// match dropped as duplicates (little-endian uint32, ascending): a match
// rate's denominator counts the member's distinct identifiers, each at its
// first row.
func (r *Room) writeDuplicates(c *collabRecord, run int64, sets []matcher.SetStats) error {
	return r.db.Update(func(txn *badger.Txn) error {
		for i, m := range c.Members {
			b := store.AppendRows(make([]byte, 0, 4*len(sets[i].DuplicateRows)), sets[i].DuplicateRows...)
			if err := store.PutSegment(txn, store.Duplicates(c.ID, run, m), b); err != nil {
				return err
			}
		}
		return nil
	})
}

// duplicates returns the rows of member m's list that the latest match
// dropped as duplicates, ascending.
func (r *Room) duplicates(c *collabRecord, m string) ([]uint32, error) {
	var rows []uint32
	err := r.withSegment(store.Duplicates(c.ID, c.Match.Run, m), func(b []byte) (err error) {
		rows, err = store.DecodeRows(b)
		return err
	})
	return rows, err
}

// readJoin calls fn with every match's rows (one per member), part by part.
func (r *Room) readJoin(c *collabRecord, fn func(rows []uint32)) error {
	join := store.Join(c.ID, c.Match.Run)
	for p := range c.Match.Parts {
		err := r.withSegment(join.Key(p), func(b []byte) error { return store.EachMatch(b, len(c.Members), fn) })
		if err != nil {
			return err
		}
	}
	return nil
}

// MatchStats are the exact figures of a collaboration's latest match run.
// The room's API never releases them (members see noisy rates); they are
// for the operator's own process, such as the demo checking its overlap.
type MatchStats struct {
	Run      int64
	Matched  int64
	Rows     map[string]int64 // rows matched, by member
	Distinct map[string]int64 // distinct identifiers, by member
}

// MatchStats returns the exact figures of collab's latest match run.
func (r *Room) MatchStats(collab string) (*MatchStats, error) {
	c, err := r.collab(collab)
	if err != nil {
		return nil, err
	}
	if c.Match == nil {
		return nil, conflict("no match has run yet")
	}
	m := c.Match
	return &MatchStats{Run: m.Run, Matched: m.Matched, Rows: m.Rows, Distinct: m.Distinct}, nil
}
