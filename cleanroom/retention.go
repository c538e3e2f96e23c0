package cleanroom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/policy"
)

// Retention. The room deletes data as soon as nothing can read it again:
//
//   - a member's upload, with its layers and relay tasks, when a newer
//     upload of the same member replaces it;
//   - a relay task's parts, and the layer it was made from (but the upload
//     itself), when the task completes;
//   - a collaboration's older join tables, when a newer match commits;
//   - an upload never committed, a week after it started, or when its
//     member discards it (DELETE on the upload; the client does so when it
//     starts over);
//   - all of a collaboration's data (every member's uploads with their
//     layers, its relay tasks, join tables and activated audiences), once
//     a member revokes it or it expires: no action may touch it again.
//
// A deletion that a stop interrupted is finished later: an upload's
// record is deleted after its data, so the sweep of abandoned uploads finds
// it again; the same sweep finds the data left of a replaced upload; the
// retirement of a collaboration resumes when the room opens; and the room,
// opening, deletes the parts, relay tasks, layers and joins that nothing
// names or reads (sweepOrphans).
//
// Every deletion is recorded in the audit log by the room (action
// "data.delete") with a digest of exactly the keys deleted, before they
// are; if the entry cannot be written, nothing is deleted.
const abandonedAfter = 7 * 24 * time.Hour

// deleteData deletes every key of the spans, recording it as name, and
// then the segment files they name (store.Files): a file whose key is
// deleted while the room stops on the way is removed when it opens again.
//
// The keys are read in one transaction and deleted in a batch after the
// audit entry, so a key written in between (a part of an upload being
// swept, which read the upload's record before the batch deleted it) is
// not among them: another round deletes it, recorded again. A write that
// would commit after the batch read the record before it: Badger refuses
// it as a conflict, and the audit log stages it again, on the record gone. A part sent again in between names a new file
// when its key goes: the request that wrote it removes it (settleFiles).
// The rounds stop once the spans are empty, or with an error once each of
// maxDeleteRounds found keys to delete.
func (r *Room) deleteData(ctx context.Context, name string, spans ...store.Span) error {
	return r.deleteSpans(ctx, name, nil, spans...)
}

// deleteSpans is deleteData, its entries recorded in collab's part of the
// log when collab is not nil.
func (r *Room) deleteSpans(ctx context.Context, name string, collab *collabRecord, spans ...store.Span) error {
	for range maxDeleteRounds {
		n, err := r.deleteRound(ctx, name, collab, nil, spans...)
		if err != nil || n == 0 {
			return err
		}
	}
	return fmt.Errorf("cleanroom: deleting %s: keys written meanwhile in each of %d rounds", name, maxDeleteRounds)
}

// maxDeleteRounds bounds deleteData: a round finds what the one before it
// raced with, so a third round that still finds keys means writers that
// nothing stops.
const maxDeleteRounds = 3

// deleteRound is one round of deleteData: it deletes the keys the spans
// hold now and returns how many there were. With apply, the round is
// recorded even when it finds no keys, and apply runs in its entry's
// transaction.
func (r *Room) deleteRound(ctx context.Context, name string, collab *collabRecord, apply func(*store.Tx) error, spans ...store.Span) (int, error) {
	del, err := r.listDeletion(name, collab, spans...)
	if err != nil || len(del.keys) == 0 && apply == nil {
		return 0, err
	}
	if err := r.recordDeletion(ctx, del, apply); err != nil {
		return 0, err
	}
	return len(del.keys), r.applyDeletion(del)
}

// A deletion is the keys of a round of deleteData, and the files they name.
type deletion struct {
	name   string
	collab *collabRecord // nil for the room's part of the log
	keys   [][]byte
	files  [][]byte
}

// listDeletion reads the keys the spans hold now.
func (r *Room) listDeletion(name string, collab *collabRecord, spans ...store.Span) (*deletion, error) {
	del := &deletion{name: name, collab: collab}
	err := r.db.View(func(txn *badger.Txn) (err error) {
		if del.keys, err = store.Keys(txn, spans...); err != nil {
			return err
		}
		del.files, err = r.files.Named(txn, del.keys)
		return err
	})
	return del, err
}

// recordDeletion records del in the audit log as the room's, with apply
// (if not nil) in the entry's transaction.
func (r *Room) recordDeletion(ctx context.Context, del *deletion, apply func(*store.Tx) error) error {
	who := &actor{principalRecord: principalRecord{ID: "room", Role: policy.RoleOperator}, requestID: "retention"}
	d := policy.Decision{Allow: true, PolicyHash: r.policy.BundleHash()}
	return r.recordDeletionAs(ctx, who, act{action: actionDataDelete, collab: del.collab}, d, del, apply)
}

// recordDeletionAs records del as action a of who's, which d allowed.
func (r *Room) recordDeletionAs(ctx context.Context, who *actor, a act, d policy.Decision, del *deletion, apply func(*store.Tx) error) error {
	if hook := r.beforeDelete.Load(); hook != nil {
		(*hook)(del.name)
	}
	h := sha256.New()
	for _, k := range del.keys {
		h.Write(k)
		h.Write([]byte{'\n'})
	}
	// The keys deleted are named by the room's commitment to them, without
	// their number: how many parts of a join go says how large it was.
	refs := []audit.DataRef{{Name: del.name, Digest: r.dataDigest(del.name, hex.EncodeToString(h.Sum(nil)))}}
	return r.commit(ctx, who, a, d, refs, "", apply)
}

// applyDeletion deletes del's keys, then their files.
func (r *Room) applyDeletion(del *deletion) error {
	if err := store.DeleteKeys(r.db, del.keys); err != nil {
		return err
	}
	if err := r.files.Remove(del.files...); err != nil {
		r.log.Warn("removing deleted segments' files failed; they go when the room opens again", "what", del.name, "err", err)
	}
	return nil
}

// sweepSegmentFiles makes the directory of segment files and removes
// those no key names (store.Files.Sweep): parts whose commit failed or was
// refused, or whose keys were deleted, when the room stopped before it
// removed them.
func (r *Room) sweepSegmentFiles(context.Context) error {
	if err := r.files.MakeDir(); err != nil {
		return err
	}
	n, err := r.files.Sweep()
	if n > 0 {
		r.log.Info("removed segment files no key names", "files", n)
	}
	return err
}

// forget deletes data after the action that made it unreachable
// committed. A failure costs disk space, not correctness: it is logged.
func (r *Room) forget(ctx context.Context, name string, spans ...store.Span) {
	if err := r.deleteData(context.WithoutCancel(ctx), name, spans...); err != nil {
		r.log.Warn("deleting unreachable data failed; it stays on disk", "what", name, "err", err)
	}
}

// forgetLeft deletes data that a stop left behind, as forget does, but
// stops with ctx: the room closing does not wait for it, and the next
// opening or sweep finds the rest.
func (r *Room) forgetLeft(ctx context.Context, name string, spans ...store.Span) {
	if err := r.deleteData(ctx, name, spans...); err != nil && ctx.Err() == nil {
		r.log.Warn("deleting data left behind failed; it stays on disk", "what", name, "err", err)
	}
}

// sweepAbandoned deletes the uploads never committed a week after they
// started (abandonedAfter). Each is read again under its member's commit
// lock, which a commit holds while it reads the upload and commits it: an
// upload committed since the scan found it is kept.
//
// It also deletes what is left of uploads a newer one replaced
// (replacedLeft).
func (r *Room) sweepAbandoned(ctx context.Context) error {
	var old, replaced []*uploadRecord
	cutoff := r.now().Add(-abandonedAfter)
	err := r.db.View(func(txn *badger.Txn) error {
		var committed []*uploadRecord
		err := uploads.Scan(r.txn(txn), func(u *uploadRecord) error {
			switch {
			case u.Committed:
				committed = append(committed, u)
			case u.Started.Before(cutoff):
				old = append(old, u)
			}
			return nil
		})
		if err != nil {
			return err
		}
		replaced, err = r.replacedLeft(txn, committed)
		return err
	})
	if err != nil {
		return err
	}
	// One upload that cannot be swept now does not keep the others.
	var errs []error
	for _, u := range replaced {
		r.forgetLeft(ctx, "replaced-dataset/"+u.Member, store.UploadData(u.ID)...)
	}
	for _, u := range old {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.sweepUpload(ctx, u.Collab, u.Member, u.ID, cutoff); err != nil {
			errs = append(errs, fmt.Errorf("upload %s: %w", u.ID, err))
		}
	}
	return errors.Join(errs...)
}

// sweepUpload deletes upload id of member in collab if, under the member's
// commit lock, it is still stored, not committed, and started before
// cutoff.
func (r *Room) sweepUpload(ctx context.Context, collab, member, id string, cutoff time.Time) error {
	unlock, err := r.lockForCommit(ctx, collab, member)
	if err != nil {
		return err
	}
	defer unlock()
	var u *uploadRecord
	err = r.db.View(func(txn *badger.Txn) (err error) {
		u, err = uploads.Get(r.txn(txn), id)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	case u.Committed || !u.Started.Before(cutoff):
		return nil
	}
	return r.deleteData(ctx, "abandoned-upload/"+id, openUploadSpans(collab, id)...)
}

// replacedLeft returns those of the committed uploads that are no longer
// their member's dataset and still have data: the commit that replaced
// one deletes its data once committed (installDataset), and a room that
// stopped in between left it. A retired collaboration's are its
// retirement's to delete.
func (r *Room) replacedLeft(txn *badger.Txn, committed []*uploadRecord) ([]*uploadRecord, error) {
	var left []*uploadRecord
	collabsRead := map[string]*collabRecord{}
	for _, u := range committed {
		c, ok := collabsRead[u.Collab]
		if !ok {
			c, _ = loadCollab(r.txn(txn), u.Collab) // one that cannot be read is kept
			collabsRead[u.Collab] = c
		}
		if c == nil || r.retired(c) {
			continue
		}
		if ds := c.Datasets[u.Member]; ds != nil && ds.Upload == u.ID {
			continue
		}
		keys, err := store.Keys(txn, store.UploadData(u.ID)...)
		if err != nil {
			return nil, err
		}
		if len(keys) > 0 {
			left = append(left, u)
		}
	}
	return left, nil
}

// openUploadSpans holds an upload never committed: its parts (and any
// layer), its record and its place in collab's index of uploads.
func openUploadSpans(collab, id string) []store.Span {
	spans := append(store.UploadData(id), uploads.Span(id)...)
	return append(spans, store.CollabUploadSpan(collab, id))
}

// housekeeping sweeps abandoned uploads and retired collaborations' data,
// and reclaims Badger's value log, every interval until ctx ends.
func (r *Room) housekeeping(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Retirements first: the time from the tick to their entries is
		// then not the time the scan of every upload took.
		if err := r.sweepRetired(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("deleting revoked or expired collaborations' data failed", "err", err)
		}
		if err := r.sweepAbandoned(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("sweeping abandoned uploads failed", "err", err)
		}
		for ctx.Err() == nil {
			if err := r.db.RunValueLogGC(0.5); err != nil {
				if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
					r.log.Warn("value log GC failed", "err", err)
				}
				break
			}
		}
	}
}
