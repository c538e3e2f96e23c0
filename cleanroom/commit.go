package cleanroom

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/matcher"
	"github.com/opencleanroom/cleanroom/policy"
)

// Committing an upload: its rows settled, every part present and agreeing
// with the client's digest, the list's distinct identifiers and its
// difference from the member's previous list counted, policy's size rules
// decided, then the upload made the member's dataset (and, in blinded mode,
// offered to the next member) in the transaction of its audit entry.

// declare settles the upload's rows at its commit: the rows declared at the
// start, or those declared now, which every part received must agree with
// (all but the last full).
func (u *uploadRecord) declare(rows int64, got map[int]partInfo) error {
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
	for p, info := range got {
		if p >= u.Parts || info.Rows != u.partRows(p) {
			return conflict("part %d has %d rows, which does not fit %d rows in parts of %d", p, info.Rows, rows, u.RowsPerPart)
		}
	}
	return nil
}

// commitUpload makes a completely received upload the member's dataset in
// the collaboration, replacing its previous one, if the digest the client
// computed agrees with the room's.
func (r *Room) commitUpload(ctx context.Context, who *actor, collab, id string, req api.CommitUpload) (*api.Dataset, error) {
	// As in match: the gate for members only, the state read through it.
	if _, _, err := r.ownUpload(who, collab, id); err != nil {
		return nil, err
	}
	unlock, err := r.lockForCommit(ctx, collab, who.partner())
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, u, err := r.ownUpload(who, collab, id)
	if err != nil {
		return nil, err
	}
	// The record and the receipts in one snapshot: the record says which
	// part was stored last (PartsChanged), which the commit's entry checks.
	var got map[int]partInfo
	err = r.db.View(func(txn *badger.Txn) (err error) {
		if u, err = loadUpload(r.txn(txn), collab, id); err != nil {
			return err
		}
		got, err = received(r.txn(txn), u)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := u.declare(req.Rows, got); err != nil {
		return nil, err
	}
	// The rows are decided before anything is sized by them: the policy's
	// list sizes bound the parts. Its decision on the whole dataset (with
	// the difference from the previous one) follows once the parts are in.
	if _, err := r.authorize(ctx, who, act{action: policy.ActionDatasetUpload, collab: c, resource: uploadResource(u.Rows)}); err != nil {
		return nil, err
	}
	digest, err := u.datasetDigest(req.Digest, got)
	if err != nil {
		return nil, err
	}
	stats, err := r.uploadStats(ctx, c, u)
	if err != nil {
		return nil, err
	}
	usage, err := r.readBudget(collab)
	if err != nil {
		return nil, err
	}
	a := act{action: policy.ActionDatasetUpload, collab: c, resource: policy.Resource{Dataset: stats}, usage: usage.usage(who.partner())}
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
		First: c.Datasets[u.Member] == nil,
	}
	if err := r.installDataset(ctx, who, a, d, u, ds); err != nil {
		return nil, err
	}
	return ds.view(c), nil
}

// datasetDigest returns the digest of the upload's parts, if every part is
// in and it is the digest the client computed.
func (u *uploadRecord) datasetDigest(want string, got map[int]partInfo) (string, error) {
	// Every stored part is numbered below u.Parts (putPart and declare
	// refuse others), so all are present when as many are stored, and the
	// digests are allocated only then: as many as the parts stored.
	if missing := u.Parts - len(got); missing > 0 {
		return "", conflict("parts not received yet: %d of %d (resume the upload)", missing, u.Parts)
	}
	digests := make([]string, u.Parts)
	for p, info := range got {
		if p < 0 || p >= u.Parts {
			return "", fmt.Errorf("cleanroom: upload %s holds part %d of %d", u.ID, p, u.Parts)
		}
		digests[p] = info.Digest
	}
	digest := api.DatasetDigest(digests)
	if want != digest {
		return "", &api.Problem{Type: api.ProblemDigestMismatch, Status: http.StatusConflict,
			Title: "the dataset digest differs from the one the room computed: a part was altered or mixed up; upload again"}
	}
	return digest, nil
}

// uploadStats describes an upload for the policy's decision on it: its
// rows and, until it is committed, its distinct identifiers and difference
// from the member's current dataset.
func (r *Room) uploadStats(ctx context.Context, c *collabRecord, u *uploadRecord) (*policy.DatasetStats, error) {
	stats := &policy.DatasetStats{Rows: u.Rows}
	if u.Committed {
		return stats, nil
	}
	prev := c.Datasets[u.Member]
	if prev != nil && prev.Upload == u.ID {
		prev = nil
	}
	var err error
	stats.Distinct, stats.DifferenceFromPrevious, err = r.compareUpload(ctx, prev, u)
	return stats, err
}

// installDataset makes ds, of upload u, the member's dataset in the
// transaction of the commit's audit entry, and deletes what it replaced: the
// previous upload and its open relay tasks. In blinded mode the set goes on
// to the next member for re-encryption: the shuffled task is written
// before the commit, becomes visible with it, and goes if it fails.
func (r *Room) installDataset(ctx context.Context, who *actor, a act, d policy.Decision, u *uploadRecord, ds *datasetRecord) error {
	c := a.collab
	var task *taskRecord
	if c.Mode == api.ModeBlinded && len(c.Members) > 1 {
		var err error
		if task, err = r.offer(ctx, c, u.Member, ds); err != nil {
			return err
		}
	}
	refs := []audit.DataRef{{Name: "dataset/" + u.ID, Digest: ds.Digest, Rows: u.Rows}}
	var replaced []store.Span
	err := r.commit(ctx, who, a, d, refs, "", func(tx *store.Tx) error {
		replaced = replaced[:0]
		if err := updateCollab(tx, c.ID, func(c *collabRecord) error {
			if err := dataAllowed(c, r.now()); err != nil {
				return err
			}
			if ds.First && c.Datasets[u.Member] != nil {
				// Offered unmasked as the member's first: another commit
				// came first.
				return conflict("another dataset of the member was committed meanwhile; commit the upload again")
			}
			replaced = append(replaced, c.replaceDataset(u.Member, ds, task)...)
			return nil
		}); err != nil {
			return err
		}
		// The parts were read, and their digests checked, as they were
		// when the commit took the member's gate; a part sent again takes
		// no gate, so one may have been replaced since. Committing u then
		// would record the parts it read while the keys name others. Each
		// part stored rewrites the record's PartsChanged: comparing it,
		// rather than reading every receipt again, keeps the commit of an
		// upload of many parts short on the audit log's one writer.
		cur, err := loadUpload(tx.Txn, u.Collab, u.ID)
		if err != nil {
			return err
		}
		if cur.Committed || cur.PartsChanged != u.PartsChanged {
			return conflict("a part of the upload was sent again while it was committed; commit it again")
		}
		u.Committed = true
		if err := uploads.Put(tx, u.ID, u); err != nil {
			return err
		}
		_, err = r.debit(tx, c.ID, c.budgetShares(), d.Constraints, charge{upload: u.Member, member: u.Member})
		return err
	})
	if err != nil && task != nil {
		r.forget(ctx, "unoffered-task/"+task.ID, store.TaskData(task.ID)...)
	}
	var ld ledgerDenial
	if errors.As(err, &ld) {
		return r.refuseCharge(ctx, who, a, d, ld)
	}
	if err != nil {
		return err
	}
	if len(replaced) > 0 {
		r.forget(ctx, "replaced-dataset/"+u.Member, replaced...)
		r.dropExports(c.ID)
	}
	return nil
}

// replaceDataset makes ds member's dataset, with task (if any) its open
// relay task, and returns the data of what it replaced.
func (c *collabRecord) replaceDataset(member string, ds *datasetRecord, task *taskRecord) []store.Span {
	var replaced []store.Span
	for tid, t := range c.Tasks {
		if t.Owner == member {
			delete(c.Tasks, tid)
			replaced = append(replaced, store.TaskData(tid)...)
		}
	}
	if prev := c.Datasets[member]; prev != nil && prev.Upload != ds.Upload {
		replaced = append(replaced, store.UploadData(prev.Upload)...)
	}
	if task != nil {
		if c.Tasks == nil {
			c.Tasks = map[string]*taskRecord{}
		}
		c.Tasks[task.ID] = task
	}
	c.Datasets[member] = ds
	return replaced
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
	memory, release, err := r.matchMemory(ctx, compareShare)
	if err != nil {
		return 0, 0, err
	}
	defer release()
	opts := matcher.Options{CardinalityOnly: true, MemoryBudget: memory, TempDir: r.cfg.TempDir}
	if prev == nil {
		// A first list is only counted: its set is read once.
		set, err := matcher.Distinct(ctx, r.newLayerReader(next, false), opts)
		if err != nil {
			return 0, 0, fmt.Errorf("cleanroom: counting the upload's identifiers: %w", err)
		}
		return set.Rows - set.Duplicates, 0, nil
	}
	old := *prev
	old.Layers = 1
	res, err := matcher.Intersect(ctx, []matcher.Reader{r.newLayerReader(&old, false), r.newLayerReader(next, false)}, opts, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("cleanroom: counting the upload's identifiers: %w", err)
	}
	distinct = res.Sets[1].Rows - res.Sets[1].Duplicates
	a := res.Sets[0].Rows - res.Sets[0].Duplicates
	return distinct, a + distinct - 2*res.Matches, nil
}
