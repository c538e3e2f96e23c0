package cleanroom

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/matcher"
	"github.com/opencleanroom/cleanroom/policy"
)

// Activation. A member that the settings' activation block names asks for
// the matched people in a segment (filters on allowed dimensions, as a
// query's) and receives the rows of its own list that hold them, so that
// it can reach those of its own customers in a joint campaign. The other
// members' data never leaves the room; the answer is exact, not
// differentially private, and outside the privacy budget: what it reveals
// (that those customers are also the other members', and fall in the
// segment) is what every member consented to by accepting the settings.
// It is refused unless every member accepted them, below the minimum
// audience, and when it differs from an audience the same member received
// before by fewer than k people; every activation is audited with its size
// and a keyed digest of its segment.

// audienceFingerprintLabel keys the fingerprints by which the room compares
// a member's audiences: the people's tokens in the member's fully encrypted
// (or hashed) set, which stay the same across the member's uploads, so an
// audience is compared with earlier ones even after a new upload.
const audienceFingerprintLabel = "cleanroom.dev/audience-fingerprint/v1"

// activationRecord is a collaboration's activations: today's and all-time
// counts by member, and each audience returned.
type activationRecord struct {
	Day       string           `json:"day"`
	Today     map[string]int   `json:"today,omitempty"`
	Total     map[string]int   `json:"total,omitempty"`
	Audiences []audienceRecord `json:"audiences,omitempty"`
}

type audienceRecord struct {
	ID      string    `json:"id"`
	Member  string    `json:"member"`
	Upload  string    `json:"upload"`
	Size    int       `json:"size"`
	Segment string    `json:"segment"` // keyed digest of the segment spec
	At      time.Time `json:"at"`
	// Refused: a guard refused it. Its key then holds zeros, as many as
	// the audience's fingerprints would take, and later activations read
	// and compare them as they do an answered audience's fingerprints,
	// without acting on the comparison: how much later work there is, and
	// how large the record grows, are the same whatever each outcome was.
	Refused bool `json:"refused"`
}

func (r *Room) activations(txn store.Txn, collab string) (activationRecord, error) {
	var rec activationRecord
	stored, err := activationRecords.Get(txn, collab)
	switch {
	case err == nil:
		rec = *stored
	case errors.Is(err, store.ErrNotFound):
		err = nil
	}
	if day := r.now().UTC().Format(time.DateOnly); rec.Day != day {
		rec.Day, rec.Today = day, nil
	}
	return rec, err
}

// Fixed reasons of the activation's own refusals. The guards decided on the
// audience (its size, its distance from earlier ones) give one reason: which
// guard refused would tell whether one person is in the other list (an
// audience one person short of the minimum, or one person away from an
// earlier one, is refused by one guard or the other depending on that
// person).
const (
	denyAudience    = "the audience is smaller than the collaboration's minimum audience, or differs from one you received before by fewer than the collaboration's minimum group size"
	denyActivations = "your limit of activations is reached"
	denyRaced       = "another activation of yours ran meanwhile; ask again"
)

// errRaced is the answer's transaction finding that another activation of
// the member's was recorded after the guards read the earlier audiences.
var errRaced = errors.New("cleanroom: another activation ran meanwhile")

// activate returns the caller's audience for a segment (an *api.Audience),
// encoded.
func (r *Room) activate(ctx context.Context, who *actor, collab string, spec api.SegmentSpec) (encodedJSON, error) {
	c, err := r.collabFor(who, collab)
	if err != nil {
		return nil, err
	}
	if spec.Version != api.SegmentVersion {
		return nil, badRequest("the segment spec must name version %s", api.SegmentVersion)
	}
	if len(spec.Filters) > maxFilters {
		return nil, badRequest("a segment has at most %d filters", maxFilters)
	}
	shape := &policy.ActivationShape{}
	for _, f := range spec.Filters {
		if len(f.Values) > policy.MaxDomainValues {
			return nil, badRequest("a filter lists at most %d values", policy.MaxDomainValues)
		}
		if err := checkColumnName(c, f.Column); err != nil {
			return nil, err
		}
		shape.FilterColumns = append(shape.FilterColumns, f.Column)
		if !slices.Contains(shape.Dimensions, f.Column) {
			shape.Dimensions = append(shape.Dimensions, f.Column)
		}
	}
	member := who.partner()
	// One activation of a member's in a collaboration at a time, from the
	// read of its activations to their record: the policy then decides on
	// the count every earlier activation left, so none reads the data past
	// the limit, where its refusal would come after work that depends on
	// the data (and take its time), nor is answered against earlier
	// audiences that another activation has meanwhile added to. The count
	// and the audiences compared are the member's own, so the lock is too:
	// a lock of the collaboration's would make another member's requests
	// wait for as long as this activation works, which is longer when it is
	// answered than when a guard refuses it, and so tell that member
	// whether one person of its own list is in this member's audience.
	lock, _ := r.activating.LoadOrStore(collab+"\x00"+member, new(sync.Mutex))
	lock.(*sync.Mutex).Lock()
	defer lock.(*sync.Mutex).Unlock()
	var before activationRecord
	err = r.db.View(func(txn *badger.Txn) (err error) { before, err = r.activations(r.txn(txn), collab); return })
	if err != nil {
		return nil, err
	}
	b, err := r.readBudget(collab)
	if err != nil {
		return nil, err
	}
	usage := b.usage(member)
	usage.ActivationsToday, usage.Activations = before.Today[member], before.Total[member]
	a := act{action: policy.ActionAudienceActivate, collab: c, resource: policy.Resource{Activation: shape}, usage: usage}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if err := dataAllowed(c, r.now()); err != nil {
		return nil, err
	}
	limits, ok := c.Settings.ActivationLimits()
	switch {
	case !ok:
		return nil, r.refuseCharge(ctx, who, a, d, ledgerDenial{"this collaboration's settings do not allow activation"})
	case !c.allAccepted():
		return nil, conflict("every member must accept the collaboration's settings before an activation")
	case c.Match == nil:
		return nil, conflict("no match has run yet")
	}
	ds := c.Datasets[member]
	if ds == nil || ds.Upload != c.Match.Uploads[member] {
		return nil, conflict("your dataset changed since the match; match again")
	}
	p, err := r.plan(c, api.QuerySpec{Filters: spec.Filters}, 1, 0, 0)
	if err != nil {
		return nil, err
	}
	rows, err := analytics.Audience(ctx, p.Table, p.Filters, slices.Index(c.Members, member))
	if err != nil {
		return nil, err
	}
	// Whether a guard refuses the audience depends on the data: on whether
	// one person of another member's list is in it, when the audience is
	// one person short of the minimum or one person away from an earlier
	// one. From here the room does the same work either way (the
	// fingerprints, every comparison, the answer's body and digest, and a
	// write of the fingerprints' size in the transaction of the audit
	// entry) and differs only in what it keeps and tells the caller: the
	// time and the resources an activation takes are shared with the other
	// members' requests, which would otherwise tell them whether it was
	// answered. Nor is the work abandoned with the request: a client that
	// closed its connection would learn, from an activation not counted,
	// where the guards stopped.
	ctx = context.WithoutCancel(ctx)
	refuse := int64(len(rows)) < limits.MinAudience
	fps, err := r.audienceFingerprints(ctx, ds, rows)
	if err != nil {
		return nil, err
	}
	k := d.Constraints.MinGroupSize
	for _, earlier := range before.Audiences {
		if earlier.Member != member {
			continue
		}
		var old []uint64
		if err := r.withSegment(store.Audience(collab, earlier.ID), func(b []byte) (err error) { old, err = store.DecodeFingerprints(b); return }); err != nil {
			return nil, err
		}
		if diff := symmetricDifference(fps, old); !earlier.Refused && diff > 0 && diff < k {
			refuse = true
		}
	}
	specBody, err := json.Marshal(&spec)
	if err != nil {
		return nil, err
	}
	segment, err := r.keyedDigest(c.ID, api.SegmentDigestLabel, specBody)
	if err != nil {
		return nil, err
	}
	var idb [12]byte
	if _, err := io.ReadFull(r.rand, idb[:]); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(idb[:])
	res := &api.Audience{Collaboration: c.ID, Member: member, Upload: ds.Upload, Rows: ds.Rows, Size: len(rows),
		Audience: rows, SegmentDigest: segment}
	body, err := api.ResultBody(res)
	if err != nil {
		return nil, err
	}
	digest, err := r.resultDigest(ctx, c.ID, body)
	if err != nil {
		return nil, err
	}
	// The response is encoded here, before the decision takes effect, for
	// a refusal too: its bytes, and the garbage they leave, then come
	// before the audit entry whatever the outcome, where encoding only an
	// answer, after its entry, let another member time the two apart. The
	// activations left are those the record will show; in the rare case it
	// shows others (a day that ended meanwhile) the answer is encoded again.
	res.ActivationsLeftToday = max(0, limits.MaxPerDay-(before.Today[member]+1))
	res.ActivationsLeft = max(0, limits.MaxTotal-(before.Total[member]+1))
	out, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	seg := store.AppendFingerprints(make([]byte, 0, 8*len(fps)), fps)
	sum := sha256.Sum256(seg)
	held := audienceRecord{ID: id, Member: member, Upload: ds.Upload, Size: len(rows), Segment: segment, At: r.now().UTC()}
	if refuse {
		held.Refused = true
		return nil, r.refuseCounted(ctx, who, a, d, member, limits, denyAudience, denied(denyAudience), &heldAudience{held, len(seg)})
	}
	// The fingerprints are stored in the transaction of the activation's
	// record, so that an activation the record refuses (the collaboration
	// revoked or expired meanwhile) leaves nothing to delete: a deletion
	// would be an entry of the log that an answer adds and a guard's
	// refusal does not, and the log's size is public.
	key := store.Audience(collab, id)
	refs := []audit.DataRef{{Name: string(key), Digest: r.dataDigest(string(key), hex.EncodeToString(sum[:])), Rows: int64(len(rows))}}
	a.spent.specDigest = segment
	var after activationRecord
	err = r.commit(ctx, who, a, d, refs, digest, func(tx *store.Tx) error {
		c, err := loadCollab(tx.Txn, collab)
		if err != nil {
			return err
		}
		if err := dataAllowed(c, r.now()); err != nil {
			return err
		}
		if after, err = r.activations(tx.Txn, collab); err != nil {
			return err
		}
		if after.Today[member] >= limits.MaxPerDay || after.Total[member] >= limits.MaxTotal {
			return ledgerDenial{denyActivations}
		}
		if audiencesOf(after.Audiences, member) != audiencesOf(before.Audiences, member) {
			return errRaced
		}
		after.count(member)
		after.Audiences = append(after.Audiences, held)
		if err := store.PutSegment(tx.Txn.Txn, key, seg); err != nil {
			return err
		}
		return activationRecords.Put(tx, collab, &after)
	})
	var ld ledgerDenial
	switch {
	case errors.As(err, &ld):
		return nil, r.refuseCharge(ctx, who, a, d, ld)
	case errors.Is(err, errRaced):
		// Only an audience the guards passed gets here, so this refusal
		// depends on the data too, and is counted like the guards' own.
		return nil, r.refuseCounted(ctx, who, a, d, member, limits, denyRaced, conflict("%s", denyRaced), nil)
	case err != nil:
		return nil, err
	}
	if today, total := max(0, limits.MaxPerDay-after.Today[member]), max(0, limits.MaxTotal-after.Total[member]); today != res.ActivationsLeftToday || total != res.ActivationsLeft {
		res.ActivationsLeftToday, res.ActivationsLeft = today, total
		if out, err = json.Marshal(res); err != nil {
			return nil, err
		}
	}
	return encodedJSON(append(out, '\n')), nil
}

// heldAudience is what a guard's refusal keeps of the audience it refused:
// its record, marked refused, and the size of its fingerprints, which the
// refusal writes as zeros under the audience's key.
type heldAudience struct {
	rec audienceRecord
	pad int
}

// refuseCounted refuses an activation whose refusal depends on the data,
// for a fixed reason. The refusal costs what an answer costs: one of the
// member's activations, counted in the transaction of its audit entry
// (otherwise refusals would be free probes, each telling, for a crafted
// segment, whether one person is in the other list), and, for a guard's
// refusal, held: a record of the audience, marked refused, and zeros under
// its key where an answer writes its fingerprints. Like an answer, it is
// refused if the collaboration was revoked or expired meanwhile; at the
// limit it is refused as every activation there is.
func (r *Room) refuseCounted(ctx context.Context, who *actor, a act, d policy.Decision, member string, limits policy.Activation, reason string, p *api.Problem, held *heldAudience) error {
	d.Allow, d.Reasons = false, []string{reason}
	collab := a.collabID()
	err := r.commit(ctx, who, a, d, nil, "", func(tx *store.Tx) error {
		c, err := loadCollab(tx.Txn, collab)
		if err != nil {
			return err
		}
		if err := dataAllowed(c, r.now()); err != nil {
			return err
		}
		rec, err := r.activations(tx.Txn, collab)
		if err != nil {
			return err
		}
		if rec.Today[member] >= limits.MaxPerDay || rec.Total[member] >= limits.MaxTotal {
			return ledgerDenial{denyActivations}
		}
		rec.count(member)
		if held != nil {
			rec.Audiences = append(rec.Audiences, held.rec)
			if err := store.PutSegment(tx.Txn.Txn, store.Audience(collab, held.rec.ID), make([]byte, held.pad)); err != nil {
				return err
			}
		}
		return activationRecords.Put(tx, collab, &rec)
	})
	var ld ledgerDenial
	if errors.As(err, &ld) {
		return r.refuseCharge(ctx, who, a, d, ld)
	}
	if err != nil {
		return err
	}
	return p
}

// count counts one activation of member's, answered or refused by a guard.
func (rec *activationRecord) count(member string) {
	if rec.Today == nil {
		rec.Today = map[string]int{}
	}
	if rec.Total == nil {
		rec.Total = map[string]int{}
	}
	rec.Today[member]++
	rec.Total[member]++
}

func audiencesOf(as []audienceRecord, member string) int {
	n := 0
	for _, a := range as {
		if a.Member == member {
			n++
		}
	}
	return n
}

// audienceFingerprints returns, sorted, a keyed 64-bit fingerprint of each
// person of an audience: of the token its row has in the member's set (the
// final layer in blinded mode), which a new upload of the same person
// keeps.
func (r *Room) audienceFingerprints(ctx context.Context, ds *datasetRecord, rows []uint32) ([]uint64, error) {
	want := make([]uint64, (ds.Rows+63)/64) // a bit a row: 12.5 MB at 100M rows
	for _, row := range rows {
		want[row/64] |= 1 << (row % 64)
	}
	m := hmac.New(sha256.New, r.stateKey)
	m.Write([]byte(audienceFingerprintLabel))
	key := m.Sum(nil)
	out := make([]uint64, 0, len(rows))
	lr := r.newLayerReader(ds, false)
	buf := make([]matcher.Pair, 4096)
	h := hmac.New(sha256.New, key)
	var sum []byte
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := lr.Read(buf)
		for i := range buf[:n] {
			// By index: a copy of the pair, sliced for Write, would be
			// allocated for every pair of the dataset.
			pr := &buf[i]
			if int64(pr.Row) < ds.Rows && want[pr.Row/64]&(1<<(pr.Row%64)) != 0 {
				h.Reset()
				h.Write(pr.Token[:])
				sum = h.Sum(sum[:0])
				out = append(out, binary.BigEndian.Uint64(sum))
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cleanroom: reading a dataset for an audience: %w", err)
		}
	}
	slices.Sort(out)
	return out, nil
}

// symmetricDifference counts the people in exactly one of two sorted sets
// of fingerprints. It takes len(a)+len(b) steps, each taking the smaller
// head, with the same instructions whatever the values (no branch on
// them): an activation compares its audience with every earlier one of
// the member's, answered (fingerprints) or refused (zeros), and a merge
// that branched on the values ran ten times as long against an answered
// audience of another segment as against a refused one
// (BenchmarkSymmetricDifference), time that the other members' requests
// share.
func symmetricDifference(a, b []uint64) int {
	if len(a) == 0 || len(b) == 0 {
		return len(a) + len(b)
	}
	i, j, common := 0, 0, uint64(0)
	for range len(a) + len(b) {
		x, y := a[min(i, len(a)-1)], b[min(j, len(b)-1)]
		aDone := uint64(len(a)-1-i) >> 63 // 1 once a is used up
		bDone := uint64(len(b)-1-j) >> 63
		_, yLess := bits.Sub64(y, x, 0) // 1 if y < x
		_, xLess := bits.Sub64(x, y, 0)
		takeA := (1 - aDone) & (bDone | (1 - yLess))
		common += takeA & (1 - bDone) & (1 - yLess) & (1 - xLess)
		i += int(takeA)
		j += int(1 - takeA)
	}
	return len(a) + len(b) - 2*int(common)
}
