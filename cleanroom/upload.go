package cleanroom

import (
	"bytes"
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
	"github.com/dgraph-io/badger/v4/y"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// uploadRecord is an upload in progress or committed. Its parts are
// segments (store.Segments); none is part of a dataset until the commit
// makes the upload the member's dataset, in the transaction of its audit
// entry, so a crash mid-upload leaves nothing visible and the upload
// resumes with the parts not yet received.
type uploadRecord struct {
	ID          string   `json:"id"`
	Collab      string   `json:"collab"`
	Member      string   `json:"member"`
	Kind        string   `json:"kind"`
	Profile     string   `json:"profile"`
	Columns     []string `json:"columns"`
	Rows        int64    `json:"rows"` // 0 until the commit if not declared at the start
	RowsPerPart int      `json:"rows_per_part"`
	Parts       int      `json:"parts"`
	// Received holds the receipts of parts stored by a room that kept them
	// in the upload's record; a part has a receipt of its own otherwise
	// (partReceipts). It is written, empty, for such a room to read.
	Received map[int]partInfo `json:"received"`
	// PartsChanged is the index of the audit entry that stored its latest
	// part (0 before the first).
	PartsChanged int64     `json:"parts_changed,omitempty"`
	Canary       [][]byte  `json:"canary"`
	Committed    bool      `json:"committed"`
	Started      time.Time `json:"started"`
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

func (u *uploadRecord) view(got map[int]partInfo) *api.Upload {
	v := &api.Upload{ID: u.ID, Collaboration: u.Collab, Member: u.Member, Rows: u.Rows, RowsPerPart: u.RowsPerPart,
		Parts: u.Parts, Committed: u.Committed, Columns: orEmpty(u.Columns), Received: []int{}}
	for p := range got {
		v.Received = append(v.Received, p)
	}
	slices.Sort(v.Received)
	return v
}

func loadUpload(t store.Txn, collab, id string) (*uploadRecord, error) {
	u, err := uploads.Get(t, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && u.Collab != collab {
		return nil, notFound("upload")
	}
	return u, err
}

// startUpload opens an upload of the caller's list to collaboration id.
func (r *Room) startUpload(ctx context.Context, who *actor, id string, req api.StartUpload) (*api.Upload, error) {
	c, err := r.collabFor(who, id)
	if err != nil {
		return nil, err
	}
	a := act{action: policy.ActionDatasetUpload, collab: c, resource: uploadResource(req.Rows)}
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
	err = r.commit(ctx, who, a, d, nil, "", func(tx *store.Tx) error {
		c, err := loadCollab(tx.Txn, id)
		if err != nil {
			return err
		}
		if err := dataAllowed(c, r.now()); err != nil {
			return err
		}
		if err := tx.Txn.Txn.Set(store.CollabUpload(id, u.ID), nil); err != nil {
			return err
		}
		return uploads.Put(tx, u.ID, u)
	})
	if err != nil {
		return nil, err
	}
	return u.view(nil), nil
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
	for i, t := range req.Canary {
		if len(t) != api.TokenSize {
			return invalidData("a canary token is not 32 bytes")
		}
		// The tokens of distinct identifiers: a repeated one is not what
		// the client computed, and would make a probe of the relay that
		// every comparison of canaries passes alike.
		if slices.ContainsFunc(req.Canary[:i], func(u []byte) bool { return bytes.Equal(u, t) }) {
			return invalidData("the canary tokens repeat one another: they are the tokens of distinct identifiers")
		}
		// Blinded canaries become probes of the relay: a point decoded
		// like every other element.
		if c.Mode == api.ModeBlinded && crypto.CheckElements(t) != nil {
			return invalidData("a canary token is not a valid ristretto255 element")
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
	a := act{action: policy.ActionCollaborationRead, collab: c}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if err := r.commit(ctx, who, a, d, nil, "", nil); err != nil {
		return nil, err
	}
	var got map[int]partInfo
	if err := r.db.View(func(txn *badger.Txn) (err error) { got, err = received(r.txn(txn), u); return }); err != nil {
		return nil, err
	}
	return u.view(got), nil
}

// ownUpload returns a collaboration and an upload of the caller's to it;
// another member's upload does not exist for the caller.
func (r *Room) ownUpload(who *actor, collab, id string) (*collabRecord, *uploadRecord, error) {
	c, err := r.collabFor(who, collab)
	if err != nil {
		return nil, nil, err
	}
	var u *uploadRecord
	if err := r.db.View(func(txn *badger.Txn) (err error) { u, err = loadUpload(r.txn(txn), collab, id); return }); err != nil {
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
	a := act{action: policy.ActionDatasetUpload, collab: c, resource: uploadResource(u.Rows)}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if u.Committed {
		return nil, conflict("the upload is committed")
	}
	if n := u.maxParts(d.Constraints); part < 0 || part >= n {
		return nil, badRequest("part numbers run from 0 to %d", n-1)
	}
	if contentType == api.PartContentType {
		buf, _ := r.partBufs.Get().(*[]byte)
		if buf == nil {
			buf = new([]byte)
		}
		defer r.partBufs.Put(buf) // once the part is stored, or refused
		sealed, rows, digest, err := readBinaryPart(*buf, body, size, len(u.Columns), u.RowsPerPart, c.Mode == api.ModeBlinded)
		*buf = sealed
		if err != nil {
			return nil, err
		}
		return r.storePart(ctx, who, a, d, u, part, sealed, rows, digest)
	}
	seg, rows, digest, err := encodePart(body, len(u.Columns), u.RowsPerPart, c.Mode == api.ModeBlinded)
	if err != nil {
		return nil, err
	}
	return r.storePart(ctx, who, a, d, u, part, store.SealSegment(seg), rows, digest)
}

// maxParts is how many parts the upload may have: as declared, or, for
// rows not declared, as many as the policy's largest list fills.
func (u *uploadRecord) maxParts(k policy.Constraints) int {
	if u.Rows != 0 {
		return u.Parts
	}
	limit := maxListRows(len(u.Canary))
	if m := k.MaxListSize; m > 0 {
		limit = min(limit, m)
	}
	return int((limit + int64(u.RowsPerPart) - 1) / int64(u.RowsPerPart))
}

// storePart stores a part read and checked, sealed, with the upload's
// record and the audit entry in one transaction: no stored part without
// its entry. The part's bytes go to a file of their own first
// (store.Files), written and synced by this request, on its own core,
// rather than by Badger's one writer for every request; the transaction
// stores the file's name. The same part sent again (same digest) is kept as
// stored, unless its stored copy fails its check: then the bytes sent
// again repair it. Other bytes for a part replace it.
func (r *Room) storePart(ctx context.Context, who *actor, a act, d policy.Decision, u *uploadRecord, part int, sealed []byte, rows int, digest string) (*api.PartReceipt, error) {
	if want := u.partRows(part); want > 0 && rows != want || rows == 0 {
		return nil, invalidData("part %d has %d rows, want %d", part, rows, max(want, 1))
	}
	key := store.Segments(u.ID).Key(part)
	var have partInfo
	var stored bool
	if err := r.db.View(func(txn *badger.Txn) (err error) { have, stored, err = receipt(r.txn(txn), u, part); return }); err != nil {
		return nil, err
	}
	stored = stored && have.Digest == digest
	damaged := false // stored, and its copy fails its check
	if stored {
		var err error
		if damaged, err = r.segmentDamaged(key); err != nil {
			return nil, err
		}
	}
	var ref []byte // the part's file, unless it is stored already
	if !stored || damaged {
		release, err := r.disk.reserve(int64(len(sealed)))
		if err != nil {
			return nil, err
		}
		ref, err = r.files.Write(sealed)
		release()
		if err != nil {
			return nil, err
		}
	}
	info := partInfo{Part: part, Rows: rows, Digest: digest, Bytes: int64(len(sealed) - store.SegmentSeal)}
	// The part is named by the room's commitment to its digest, and by its
	// rows, not its bytes: a part of one row is a token a member can make
	// and a few values whose lengths its size would tell.
	partRef := fmt.Sprintf("upload/%s/%d", u.ID, part)
	refs := []audit.DataRef{{Name: partRef, Digest: r.dataDigest(partRef, digest), Rows: int64(rows)}}
	// named: ref, once the transaction stores it; replaced: the file of the
	// part it replaces, if any. The function may run more than once.
	var named bool
	var replaced [][]byte
	err := r.commit(ctx, who, a, d, refs, "", func(tx *store.Tx) error {
		named, replaced = false, nil
		c, err := loadCollab(tx.Txn, u.Collab)
		if err != nil {
			return err
		}
		if err := dataAllowed(c, r.now()); err != nil {
			return err
		}
		u, err := loadUpload(tx.Txn, u.Collab, u.ID)
		if err != nil {
			return err
		}
		if u.Committed {
			return conflict("the upload is committed")
		}
		have, ok, err := receipt(tx.Txn, u, part)
		if err != nil {
			return err
		}
		if ok && have.Digest == digest && !damaged {
			return nil
		}
		if ref == nil {
			return conflict("part %d was replaced while it was sent again; send it again", part)
		}
		old, err := r.files.Named(tx.Txn.Txn, [][]byte{key})
		if err != nil {
			return err
		}
		if err := tx.Set(key, ref); err != nil {
			return err
		}
		// The part's receipt is a record of its own: the upload's record,
		// written again, names only the entry of its latest part, and does
		// not grow with its parts.
		if err := moveReceipts(tx, u, part); err != nil {
			return err
		}
		if err := partReceipts.Put(tx, store.PartOf{Upload: u.ID, Part: part}, &info); err != nil {
			return err
		}
		u.PartsChanged = tx.Index
		if err := uploads.Put(tx, u.ID, u); err != nil {
			return err
		}
		named, replaced = true, old
		return nil
	})
	if ref != nil && (!named || err != nil && r.audit.Err() == nil) {
		// Refused, or the part was stored already: no transaction that may
		// have committed names the file. Nor does one whose commit failed
		// while the log runs on: the log stops at any commit it cannot
		// vouch was not written, and then the file stays until the room
		// opens again.
		r.removeFiles(ref)
	}
	if err != nil {
		return nil, err
	}
	if named {
		r.settleFiles(ctx, u, key, ref, replaced)
	}
	r.metrics.rowsReceived.Add(float64(rows))
	return &api.PartReceipt{Part: part, Rows: rows, Digest: digest}, nil
}

// segmentDamaged reports whether the stored segment at key fails its check
// (its file altered, cut short or missing), as the room's integrity check
// would refuse it when it is read, or is gone since its receipt was read:
// either way the bytes sent again are written, and the part's transaction
// decides (an upload deleted meanwhile is not found; a part the upload
// still lists is stored again).
func (r *Room) segmentDamaged(key []byte) (bool, error) {
	err := r.withSegment(key, func([]byte) error { return nil })
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, badger.ErrKeyNotFound) || errors.Is(err, store.ErrSegmentGone):
		return true, nil
	case errors.Is(err, ErrCorruptSegment) || errors.Is(err, y.ErrChecksumMismatch):
		r.log.Warn("a stored part failed its integrity check; the same bytes sent again replace it", "key", string(key), "err", err)
		return true, nil
	default:
		return false, err
	}
}

// settleFiles removes, once a part's transaction has committed, the file of
// the part it replaced, if any, and its own file if the part's key no
// longer names it: the upload was deleted meanwhile (by a sweep that read
// the keys before this part replaced one, and deleted them after), or the
// part was sent again. A commit of the upload reads its parts, and a sweep
// deletes them, under the member's gate, which this takes too: the files
// go once no commit can be reading them, and the key is read before or
// after a sweep's deletion, never in between.
func (r *Room) settleFiles(ctx context.Context, u *uploadRecord, key, ref []byte, replaced [][]byte) {
	release, err := r.gates.acquire(context.WithoutCancel(ctx), "member/"+u.Collab+"/"+u.Member, 1)
	if err != nil {
		return
	}
	defer release()
	var named [][]byte
	if err := r.db.View(func(txn *badger.Txn) (err error) {
		named, err = r.files.Named(txn, [][]byte{key})
		return err
	}); err != nil {
		r.log.Warn("reading a part's key after its commit failed; its file stays until the room opens again", "err", err)
	} else if len(named) == 0 || !bytes.Equal(named[0], ref) {
		replaced = append(replaced, ref)
	}
	r.removeFiles(replaced...)
}

// removeFiles removes segment files no key names. A failure costs disk
// space until the room opens again (store.Files.Sweep): it is logged.
func (r *Room) removeFiles(files ...[]byte) {
	if err := r.files.Remove(files...); err != nil {
		r.log.Warn("removing unnamed segment files failed; they go when the room opens again", "err", err)
	}
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
	buf = slices.Grow(buf[:0], store.SegmentSeal+int(min(max(size, 0), api.MaxPartBytes))+1)[:store.SegmentSeal]
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
			if errors.As(err, &mb) || len(buf) > store.SegmentSeal+api.MaxPartBytes {
				return nil, 0, "", problem(http.StatusRequestEntityTooLarge, api.ProblemTooLarge, "the part is larger than the room accepts")
			}
			return nil, 0, "", err
		}
	}
	p, err := api.ParsePart(buf[store.SegmentSeal:], api.PartLimits{Columns: columns, MaxRows: maxRows})
	if err != nil {
		return nil, 0, "", invalidData("%v", err)
	}
	if blinded {
		if err := crypto.CheckElements(p.Tokens); err != nil {
			return nil, 0, "", invalidData("a token of the part is not a valid ristretto255 element (%v)", err)
		}
	}
	sum := sha256.Sum256(buf[store.SegmentSeal:])
	return store.SealInPlace(buf), p.Rows, hex.EncodeToString(sum[:]), nil
}
