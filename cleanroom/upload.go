package cleanroom

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/matcher"
	"github.com/opencleanroom/cleanroom/policy"
)

// uploadRecord is an upload in progress or committed. Its parts are
// segments under prefixSegment; none is part of a dataset until the commit
// makes the upload the member's dataset, in the transaction of its audit
// entry, so a crash mid-upload leaves nothing visible and the upload
// resumes with the parts not yet received.
type uploadRecord struct {
	ID          string           `json:"id"`
	Collab      string           `json:"collab"`
	Member      string           `json:"member"`
	Kind        string           `json:"kind"`
	Profile     string           `json:"profile"`
	Columns     []string         `json:"columns"`
	Rows        int64            `json:"rows"` // 0 until the commit if not declared at the start
	RowsPerPart int              `json:"rows_per_part"`
	Parts       int              `json:"parts"`
	Received    map[int]partInfo `json:"received"`
	Canary      [][]byte         `json:"canary"`
	Committed   bool             `json:"committed"`
	Started     time.Time        `json:"started"`
}

type partInfo struct {
	Rows   int    `json:"rows"`
	Digest string `json:"digest"`
	Bytes  int64  `json:"bytes"`
}

func (u *uploadRecord) partRows(part int) int {
	if u.Rows == 0 {
		return 0 // any count up to RowsPerPart, checked at the commit
	}
	if part == u.Parts-1 {
		return int(u.Rows - int64(part)*int64(u.RowsPerPart))
	}
	return u.RowsPerPart
}

func (u *uploadRecord) view() *api.Upload {
	v := &api.Upload{ID: u.ID, Collaboration: u.Collab, Member: u.Member, Rows: u.Rows, RowsPerPart: u.RowsPerPart,
		Parts: u.Parts, Committed: u.Committed, Columns: u.Columns, Received: []int{}}
	for p := range u.Received {
		v.Received = append(v.Received, p)
	}
	slices.Sort(v.Received)
	return v
}

func (r *Room) loadUpload(txn *badger.Txn, collab, id string) (*uploadRecord, error) {
	var u uploadRecord
	if err := r.get(txn, prefixUpload+id, &u); err != nil {
		if errors.Is(err, errNotFound) {
			return nil, notFound("upload")
		}
		return nil, err
	}
	if u.Collab != collab {
		return nil, notFound("upload")
	}
	return &u, nil
}

// startUpload opens an upload of the caller's list to collaboration id.
func (r *Room) startUpload(ctx context.Context, who *actor, id string, req api.StartUpload) (*api.Upload, error) {
	c, err := r.collabFor(who, id)
	if err != nil {
		return nil, err
	}
	a := act{action: "dataset.upload", collab: c, resource: uploadResource(req.Rows)}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if err := checkUpload(c, who.partner(), d.Constraints, req); err != nil {
		return nil, err
	}
	if c.Mode == api.ModeBlinded {
		for _, t := range req.Canary {
			if _, err := crypto.DecodeElement(t); err != nil {
				return nil, invalidData("a canary token is not a valid ristretto255 element")
			}
		}
	}
	var idb [12]byte
	rand.Read(idb[:])
	u := &uploadRecord{
		ID: "up-" + hex.EncodeToString(idb[:]), Collab: id, Member: who.partner(), Kind: req.Kind, Profile: req.Profile,
		Columns: req.Columns, Rows: req.Rows, RowsPerPart: req.RowsPerPart,
		Parts:    int((req.Rows + int64(req.RowsPerPart) - 1) / int64(req.RowsPerPart)),
		Received: map[int]partInfo{}, Canary: req.Canary, Started: r.now().UTC(),
	}
	err = r.commit(ctx, who, a, d, nil, "", func(tx *stateTx) error {
		c, err := r.loadCollab(tx.Txn, id)
		if err != nil {
			return err
		}
		if err := dataAllowed(c, r.now()); err != nil {
			return err
		}
		return tx.put(prefixUpload+u.ID, u)
	})
	if err != nil {
		return nil, err
	}
	return u.view(), nil
}

// uploadResource is what policy sees of an upload before its commit: its
// rows if they were declared at the start. Undeclared, the size rules are
// decided at the commit, where the rows are always known.
func uploadResource(rows int64) policy.Resource {
	if rows == 0 {
		return policy.Resource{}
	}
	return policy.Resource{Dataset: &policy.DatasetStats{Rows: rows}}
}

// maxListRows bounds a list so that every row and canary has a 32-bit
// index in the matcher.
func maxListRows(canaries int) int64 { return int64(^uint32(0)) - int64(canaries) }

func checkUpload(c *collabRecord, member string, k policy.Constraints, req api.StartUpload) error {
	if !c.allAccepted() {
		return conflict("every member must accept the collaboration before uploads")
	}
	if req.Kind != c.Kind || req.Profile != c.Profile {
		return badRequest("the collaboration matches kind %s under profile %s", c.Kind, c.Profile)
	}
	if req.Rows < 0 || req.RowsPerPart <= 0 || req.RowsPerPart > api.MaxRowsPerPart {
		return badRequest("rows must be positive (or 0 to declare them at the commit) and rows_per_part 1 to %d", api.MaxRowsPerPart)
	}
	if req.Rows > maxListRows(len(req.Canary)) {
		return badRequest("a list holds fewer than 2^32 rows")
	}
	if len(req.Columns) > api.MaxColumns {
		return badRequest("at most %d attribute columns", api.MaxColumns)
	}
	seen := map[string]bool{}
	for _, col := range req.Columns {
		if !crypto.ValidPartnerName(col) || seen[col] {
			return badRequest("column names are distinct, 1-63 of a-z 0-9 . _ -")
		}
		if k.NeverOutput(member, col) {
			return badRequest("the column %s names an identifier and may not be uploaded: identifiers travel only as the token", col)
		}
		seen[col] = true
	}
	want := len(api.CanaryIdentifiers(c.Kind))
	if len(req.Canary) != want {
		return badRequest("an upload carries the tokens of the collaboration's %d canary identifiers", want)
	}
	for _, t := range req.Canary {
		if len(t) != api.TokenSize {
			return invalidData("a canary token is not 32 bytes")
		}
	}
	return nil
}

// dataAllowed re-checks, in the transaction that applies an action, what
// may have changed since it was decided: a revocation or the expiry.
func dataAllowed(c *collabRecord, now time.Time) error {
	if c.Revoked {
		return problem(http.StatusForbidden, api.ProblemDenied, "a member revoked this collaboration: it no longer touches data")
	}
	if !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt) {
		return problem(http.StatusForbidden, api.ProblemDenied, "the collaboration has expired")
	}
	return nil
}

func invalidData(format string, a ...any) *api.Problem {
	return problem(http.StatusUnprocessableEntity, api.ProblemInvalidData, fmt.Sprintf(format, a...))
}

// upload returns an upload's progress, for a client resuming it.
func (r *Room) upload(ctx context.Context, who *actor, collab, id string) (*api.Upload, error) {
	c, u, err := r.ownUpload(who, collab, id)
	if err != nil {
		return nil, err
	}
	a := act{action: "collaboration.read", collab: c}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if err := r.commit(ctx, who, a, d, nil, "", nil); err != nil {
		return nil, err
	}
	return u.view(), nil
}

// ownUpload returns a collaboration and an upload of the caller's to it;
// another member's upload does not exist for the caller.
func (r *Room) ownUpload(who *actor, collab, id string) (*collabRecord, *uploadRecord, error) {
	c, err := r.collabFor(who, collab)
	if err != nil {
		return nil, nil, err
	}
	var u *uploadRecord
	if err := r.db.View(func(txn *badger.Txn) (err error) { u, err = r.loadUpload(txn, collab, id); return }); err != nil {
		return nil, nil, err
	}
	if u.Member != who.partner() {
		return nil, nil, notFound("upload")
	}
	return c, u, nil
}

// putPart stores part of an upload from body, validating every row: binary
// (api.PartContentType) or gzip NDJSON (api.UploadFormat). Sending a part
// again replaces it.
func (r *Room) putPart(ctx context.Context, who *actor, collab, id string, part int, contentType string, size int64, body io.Reader) (*api.PartReceipt, error) {
	c, u, err := r.ownUpload(who, collab, id)
	if err != nil {
		return nil, err
	}
	a := act{action: "dataset.upload", collab: c, resource: uploadResource(u.Rows)}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if u.Committed {
		return nil, conflict("the upload is committed")
	}
	parts := u.Parts
	if u.Rows == 0 {
		// Undeclared rows are bounded by the policy's list size already.
		limit := maxListRows(len(u.Canary))
		if m := d.Constraints.MaxListSize; m > 0 {
			limit = min(limit, m)
		}
		parts = int((limit + int64(u.RowsPerPart) - 1) / int64(u.RowsPerPart))
	}
	if part < 0 || part >= parts {
		return nil, badRequest("part numbers run from 0 to %d", parts-1)
	}
	want := u.partRows(part)
	blinded := c.Mode == api.ModeBlinded
	var sealed []byte
	var rows int
	var digest string
	if contentType == api.PartContentType {
		buf, _ := r.partBufs.Get().(*[]byte)
		if buf == nil {
			buf = new([]byte)
		}
		defer r.partBufs.Put(buf) // once the part is stored, or refused
		sealed, rows, digest, err = readBinaryPart(*buf, body, size, len(u.Columns), u.RowsPerPart, blinded)
		*buf = sealed
	} else {
		var seg []byte
		seg, rows, digest, err = encodePart(body, len(u.Columns), u.RowsPerPart, blinded)
		sealed = sealSegment(seg)
	}
	if err != nil {
		return nil, err
	}
	if want > 0 && rows != want || rows == 0 {
		return nil, invalidData("part %d has %d rows, want %d", part, rows, max(want, 1))
	}
	release, err := r.disk.reserve(int64(len(sealed)))
	if err != nil {
		return nil, err
	}
	defer release()
	key := partKey(prefixSegment+id, part)
	info := partInfo{Rows: rows, Digest: digest, Bytes: int64(len(sealed) - sealSize)}
	// The part is named by the room's commitment to its digest, and by its
	// rows, not its bytes: a part of one row is a token a member can make
	// and a few values whose lengths its size would tell.
	partRef := fmt.Sprintf("upload/%s/%d", id, part)
	refs := []audit.DataRef{{Name: partRef, Digest: r.dataDigest(partRef, digest), Rows: int64(rows)}}
	err = r.commit(ctx, who, a, d, refs, "", func(tx *stateTx) error {
		c, err := r.loadCollab(tx.Txn, collab)
		if err != nil {
			return err
		}
		if err := dataAllowed(c, r.now()); err != nil {
			return err
		}
		u, err := r.loadUpload(tx.Txn, collab, id)
		if err != nil {
			return err
		}
		if u.Committed {
			return conflict("the upload is committed")
		}
		u.Received[part] = info
		// The rows, their record and the audit entry in one transaction:
		// one sync to disk a part, and no stored part without its entry.
		if err := tx.Set([]byte(key), sealed); err != nil {
			return err
		}
		return tx.put(prefixUpload+id, u)
	})
	if err != nil {
		return nil, err
	}
	r.metrics.rowsReceived.Add(float64(rows))
	return &api.PartReceipt{Part: part, Rows: rows, Digest: digest}, nil
}

// encodePart decodes a part and encodes it as a segment:
//
//	uvarint rows, uvarint columns, rows × 32-byte tokens,
//	then every row's values, each as uvarint length and bytes.
//
// In blinded mode every token must be a valid ristretto255 element.
func encodePart(body io.Reader, columns, maxRows int, blinded bool) ([]byte, int, string, error) {
	var tokens, attrs []byte
	n, digest, err := api.ReadPart(body, api.PartLimits{Columns: columns, MaxRows: maxRows}, func(rw *api.Row) error {
		tokens = append(tokens, rw.Token[:]...)
		for _, v := range rw.Attrs {
			attrs = binary.AppendUvarint(attrs, uint64(len(v)))
			attrs = append(attrs, v...)
		}
		return nil
	})
	if err != nil {
		var p *api.Problem
		if errors.As(err, &p) {
			return nil, 0, "", p
		}
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, 0, "", problem(http.StatusRequestEntityTooLarge, api.ProblemTooLarge, "the part is larger than the room accepts")
		}
		if errors.Is(err, api.ErrInvalidPart) {
			return nil, 0, "", invalidData("%v", err)
		}
		return nil, 0, "", err
	}
	if blinded {
		// Eight at a time, once the part is read: the element's index is its row.
		if err := crypto.CheckElements(tokens); err != nil {
			return nil, 0, "", invalidData("a token of the part is not a valid ristretto255 element (%v)", err)
		}
	}
	seg := binary.AppendUvarint(nil, uint64(n))
	seg = binary.AppendUvarint(seg, uint64(columns))
	seg = append(seg, tokens...)
	return append(seg, attrs...), n, digest, nil
}

// readBinaryPart reads a binary part (api.Part) into buf's space and
// returns it sealed as the segment it already is: read once into place after
// room for the seal, and its digest.
func readBinaryPart(buf []byte, body io.Reader, size int64, columns, maxRows int, blinded bool) ([]byte, int, string, error) {
	buf = slices.Grow(buf[:0], sealSize+int(min(max(size, 0), api.MaxPartBytes))+1)[:sealSize]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 64<<10)
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			var mb *http.MaxBytesError
			if errors.As(err, &mb) || len(buf) > sealSize+api.MaxPartBytes {
				return nil, 0, "", problem(http.StatusRequestEntityTooLarge, api.ProblemTooLarge, "the part is larger than the room accepts")
			}
			return nil, 0, "", err
		}
	}
	p, err := api.ParsePart(buf[sealSize:], api.PartLimits{Columns: columns, MaxRows: maxRows})
	if err != nil {
		return nil, 0, "", invalidData("%v", err)
	}
	if blinded {
		if err := crypto.CheckElements(p.Tokens); err != nil {
			return nil, 0, "", invalidData("a token of the part is not a valid ristretto255 element (%v)", err)
		}
	}
	sum := sha256.Sum256(buf[sealSize:])
	return sealInPlace(buf), p.Rows, hex.EncodeToString(sum[:]), nil
}

// segment is a decoded upload part.
type segment struct {
	rows, columns int
	tokens        []byte
	attrs         []byte
}

func decodeSegment(b []byte) (segment, error) {
	rows, n := binary.Uvarint(b)
	if n <= 0 {
		return segment{}, ErrCorruptSegment
	}
	b = b[n:]
	cols, n := binary.Uvarint(b)
	if n <= 0 || rows > uint64(len(b))/api.TokenSize {
		return segment{}, ErrCorruptSegment
	}
	b = b[n:]
	t := int(rows) * api.TokenSize
	return segment{rows: int(rows), columns: int(cols), tokens: b[:t], attrs: b[t:]}, nil
}

// declare settles the upload's rows at its commit: the rows declared at the
// start, or those declared now, which every part received must agree with
// (all but the last full).
func (u *uploadRecord) declare(rows int64) error {
	if u.Rows != 0 {
		if rows != 0 && rows != u.Rows {
			return conflict("the upload declared %d rows at its start, not %d", u.Rows, rows)
		}
		return nil
	}
	if rows <= 0 || rows > maxListRows(len(u.Canary)) {
		return badRequest("the commit declares the upload's rows (1 to 2^32 - 1), since its start did not")
	}
	u.Rows = rows
	u.Parts = int((rows + int64(u.RowsPerPart) - 1) / int64(u.RowsPerPart))
	for p, info := range u.Received {
		if p >= u.Parts || info.Rows != u.partRows(p) {
			return conflict("part %d has %d rows, which does not fit %d rows in parts of %d", p, info.Rows, rows, u.RowsPerPart)
		}
	}
	return nil
}

// eachValue calls fn with every row's values, in order, each with its
// column and in a buffer fn must not keep.
func (s segment) eachValue(fn func(col int, v []byte)) error {
	b := s.attrs
	for range s.rows {
		for col := range s.columns {
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return ErrCorruptSegment
			}
			fn(col, b[n:n+int(l)])
			b = b[n+int(l):]
		}
	}
	return nil
}

// commitUpload makes a completely received upload the member's dataset in
// the collaboration, replacing its previous one, if the digest the client
// computed agrees with the room's.
func (r *Room) commitUpload(ctx context.Context, who *actor, collab, id string, req api.CommitUpload) (*api.Dataset, error) {
	c, u, err := r.ownUpload(who, collab, id)
	if err != nil {
		return nil, err
	}
	if err := u.declare(req.Rows); err != nil {
		return nil, err
	}
	// The rows are decided before anything is sized by them: the policy's
	// list sizes bound the parts. Its decision on the whole dataset (with
	// the difference from the previous one) follows once the parts are in.
	if _, err := r.authorize(ctx, who, act{action: "dataset.upload", collab: c, resource: uploadResource(u.Rows)}); err != nil {
		return nil, err
	}
	// Every stored part is numbered below u.Parts (putPart and declare
	// refuse others), so all are present when as many are stored, and the
	// digests are allocated only then: as many as the parts stored.
	if missing := u.Parts - len(u.Received); missing > 0 {
		return nil, conflict("parts not received yet: %d of %d (resume the upload)", missing, u.Parts)
	}
	digests := make([]string, u.Parts)
	for p, info := range u.Received {
		if p < 0 || p >= u.Parts {
			return nil, fmt.Errorf("cleanroom: upload %s holds part %d of %d", id, p, u.Parts)
		}
		digests[p] = info.Digest
	}
	digest := api.DatasetDigest(digests)
	if req.Digest != digest {
		return nil, conflict("the dataset digest differs from the one the room computed: a part was altered or mixed up; upload again")
	}
	stats := &policy.DatasetStats{Rows: u.Rows}
	if !u.Committed {
		prev := c.Datasets[u.Member]
		if prev != nil && prev.Upload == id {
			prev = nil
		}
		if stats.Distinct, stats.DifferenceFromPrevious, err = r.compareUpload(ctx, prev, u); err != nil {
			return nil, err
		}
	}
	usage, err := r.readBudget(collab)
	if err != nil {
		return nil, err
	}
	a := act{action: "dataset.upload", collab: c, resource: policy.Resource{Dataset: stats}, usage: usage.usage(who.partner())}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if u.Committed {
		return c.Datasets[u.Member].view(c), nil
	}
	ds := &datasetRecord{
		Upload: id, Rows: u.Rows, Columns: u.Columns, Digest: digest, Kind: u.Kind, Profile: u.Profile,
		RowsPerPart: u.RowsPerPart, Parts: u.Parts, Layers: 1, Canary: u.Canary, Uploaded: r.now().UTC(),
	}
	// In blinded mode the set goes on to the next member for re-encryption:
	// the shuffled task is written before the commit, and becomes visible
	// with it.
	var task *taskRecord
	if c.Mode == api.ModeBlinded && len(c.Members) > 1 {
		if task, err = r.offer(c, u.Member, ds); err != nil {
			return nil, err
		}
	}
	refs := []audit.DataRef{{Name: "dataset/" + id, Digest: digest, Rows: u.Rows}}
	var replaced []string // the previous upload and its open tasks
	err = r.commit(ctx, who, a, d, refs, "", func(tx *stateTx) error {
		replaced = replaced[:0]
		if err := updateCollab(tx, collab, func(c *collabRecord) error {
			if err := dataAllowed(c, r.now()); err != nil {
				return err
			}
			for tid, t := range c.Tasks {
				if t.Owner == u.Member {
					delete(c.Tasks, tid)
					replaced = append(replaced, taskPrefixes(tid)...)
				}
			}
			if prev := c.Datasets[u.Member]; prev != nil && prev.Upload != id {
				replaced = append(replaced, uploadPrefixes(prev.Upload)...)
			}
			if task != nil {
				if c.Tasks == nil {
					c.Tasks = map[string]*taskRecord{}
				}
				c.Tasks[task.ID] = task
			}
			c.Datasets[u.Member] = ds
			return nil
		}); err != nil {
			return err
		}
		u.Committed = true
		if err := tx.put(prefixUpload+id, u); err != nil {
			return err
		}
		_, err := r.debit(tx, collab, c.budgetShares(), d.Constraints, charge{upload: u.Member, member: u.Member})
		return err
	})
	var ld ledgerDenial
	if errors.As(err, &ld) {
		return nil, r.refuseCharge(ctx, who, a, d, ld)
	}
	if err != nil {
		return nil, err
	}
	if len(replaced) > 0 {
		r.forget(ctx, "replaced-dataset/"+u.Member, replaced...)
	}
	return ds.view(c), nil
}

// compareUpload counts the distinct identifiers of a member's new upload
// and, if it replaces a previous dataset, the size of the symmetric
// difference between the two, counted on their first layers (the member's
// own tokens, which the same member makes the same way each time). Both
// describe only the member's own lists, which it knows: policy refuses a
// list of too few distinct people, and a new list that differs from the
// previous one by a handful of identifiers.
func (r *Room) compareUpload(ctx context.Context, prev *datasetRecord, u *uploadRecord) (distinct, difference int64, err error) {
	next := &datasetRecord{Upload: u.ID, Rows: u.Rows, RowsPerPart: u.RowsPerPart, Parts: u.Parts, Layers: 1}
	// A set intersected with itself matches each distinct token once.
	other := next
	if prev != nil {
		old := *prev
		old.Layers = 1
		other = &old
	}
	r.matchMu.Lock()
	defer r.matchMu.Unlock()
	res, err := matcher.Intersect(ctx, []matcher.Reader{r.newLayerReader(other, false), r.newLayerReader(next, false)},
		matcher.Options{CardinalityOnly: true, MemoryBudget: r.cfg.MatchMemory, TempDir: r.cfg.TempDir}, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("cleanroom: counting the upload's identifiers: %w", err)
	}
	distinct = res.Sets[1].Rows - res.Sets[1].Duplicates
	if prev == nil {
		return distinct, 0, nil
	}
	a := res.Sets[0].Rows - res.Sets[0].Duplicates
	return distinct, a + distinct - 2*res.Matches, nil
}
