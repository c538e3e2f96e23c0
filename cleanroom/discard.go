package cleanroom

import (
	"context"

	"github.com/opencleanroom/cleanroom/policy"
)

// discardUpload deletes an upload of the caller's that is not committed:
// its parts, its record and its place in the collaboration's index, as the
// week's sweep of abandoned uploads would, recorded as the member's action
// (policy.ActionDatasetDiscard) in the collaboration's part of the log.
// A committed upload is the member's dataset in the collaboration: a newer
// upload replaces it, and a revocation or the expiry deletes it.
//
// It runs under the member's commit lock, so a commit of the same upload
// either went first (and the upload is refused as committed) or reads the
// record after it is gone. A part still in flight either commits before the
// deletion's batch and is found by the next round, or its transaction,
// which read the record, conflicts with the batch: the audit log stages it
// again, and it finds the record gone and is refused.
func (r *Room) discardUpload(ctx context.Context, who *actor, collab, id string) error {
	if _, _, err := r.ownUpload(who, collab, id); err != nil {
		return err
	}
	unlock, err := r.lockForCommit(ctx, collab, who.partner())
	if err != nil {
		return err
	}
	defer unlock()
	c, u, err := r.ownUpload(who, collab, id)
	if err != nil {
		return err
	}
	a := act{action: policy.ActionDatasetDiscard, collab: c}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return err
	}
	if u.Committed {
		return conflict("the upload is committed: it is your list in this collaboration until a newer upload replaces it, or the collaboration is revoked or expires")
	}
	name, spans := "discarded-upload/"+id, openUploadSpans(collab, id)
	del, err := r.listDeletion(name, c, spans...)
	if err != nil {
		return err
	}
	if err := r.recordDeletionAs(ctx, who, a, d, del, nil); err != nil {
		return err
	}
	if err := r.applyDeletion(del); err != nil {
		return err
	}
	// What a part in flight wrote meanwhile, recorded as the room's.
	if err := r.deleteSpans(context.WithoutCancel(ctx), name, c, spans...); err != nil {
		r.log.Warn("deleting unreachable data failed; it stays on disk", "what", name, "err", err)
	}
	return nil
}
