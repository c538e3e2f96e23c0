package cleanroom

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// A collaboration is retired once a member revokes it or it expires:
// neither can be undone (a revocation is final, and the expiry is part of
// the terms every member accepted), and the policy and every transaction
// that touches data refuse it from then on (dataAllowed). So its data goes:
// every member's uploads, committed or not (found by store.UploadsOf), with
// their layers, its open relay tasks, its join tables and its activated
// audiences, and the columns and joins decoded from them in memory; the
// records of its uploads never committed go with the sweep of abandoned
// uploads. The collaboration's records stay (its terms, members, budget
// ledger, activation counts and the sizes of its datasets and match), as
// does the log.
//
// A request allowed before the revocation may still write once the
// deletion has read the keys (a relay answer's layer, a match's join, a
// column decoded into memory): the transaction that would record it
// refuses it, and what it wrote goes with the next sweep, which finds the
// collaboration retired again.
//
// The deletion is recorded once, in the collaboration's part of the log
// (its members' auditors see it), in the transaction that marks the
// record (DataDeleted): one entry whatever data there was, so the log's
// size does not tell whether a member had started an upload or an
// activation left fingerprints. A revocation retires its collaboration in
// the request that revoked it; an expired one, and one whose retirement a
// stop interrupted, at the room's next opening or hourly housekeeping.

// retire deletes the data of collaboration id if it is retired, recording
// the deletion the first time.
func (r *Room) retire(ctx context.Context, id string) error {
	// One retirement of a collaboration at a time; others' run beside it,
	// so that one's deletion does not show in another's revocation time.
	lock, _ := r.retiring.LoadOrStore(id, new(sync.Mutex))
	lock.(*sync.Mutex).Lock()
	defer lock.(*sync.Mutex).Unlock()
	c, err := r.collab(id)
	if err != nil {
		return err
	}
	if !r.retired(c) {
		return nil
	}
	spans, ups, err := r.collabData(c)
	if err != nil {
		return err
	}
	name := "retired-collaboration/" + id
	if c.DataDeleted.IsZero() {
		mark := func(tx *store.Tx) error {
			return updateCollab(tx, id, func(cur *collabRecord) error {
				if !cur.DataDeleted.IsZero() {
					return errAlreadyRetired
				}
				// To the second: a finer time would tell how long the keys
				// took to find.
				cur.DataDeleted = r.now().UTC().Truncate(time.Second)
				// Their parts go with the rest; none will be answered.
				cur.Tasks = nil
				return nil
			})
		}
		if _, err := r.deleteRound(ctx, name, c, mark, spans...); err != nil && !errors.Is(err, errAlreadyRetired) {
			return err
		}
	}
	// Keys a writer added after the marked round read them (a match's join
	// being written when the revocation came, which its record then
	// refuses), or that a stop kept from being deleted.
	if err := r.deleteSpans(ctx, name, c, spans...); err != nil {
		return err
	}
	// Cached under the uploads' columns (col/upload/…) or a join of the
	// collaboration (join/id/run, and the joined/… and proj/… made from it).
	r.cache.removeIf(func(key string) bool {
		if strings.Contains(key, "join/"+id+"/") {
			return true
		}
		for _, u := range ups {
			if strings.HasPrefix(key, "col/"+u+"/") {
				return true
			}
		}
		return false
	})
	r.dropExports(id)
	return nil
}

// errAlreadyRetired is the marked round's apply finding another retirement
// recorded first.
var errAlreadyRetired = errors.New("cleanroom: the collaboration's data was deleted already")

// retired reports whether c may never touch data again: revoked, or
// expired.
func (r *Room) retired(c *collabRecord) bool {
	return c.Revoked || !c.ExpiresAt.IsZero() && !r.now().Before(c.ExpiresAt)
}

// collabData returns the spans of c's data, and the ids of its uploads.
func (r *Room) collabData(c *collabRecord) ([]store.Span, []string, error) {
	// Its uploads by its own index, not by reading every upload of the
	// room: the time a revocation takes would tell how many there are.
	var ups []string
	err := r.db.View(func(txn *badger.Txn) (err error) {
		ups, err = store.UploadsOf(txn, c.ID)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cleanroom: listing the uploads of %s: %w", c.ID, err)
	}
	for _, ds := range c.Datasets {
		if !slices.Contains(ups, ds.Upload) {
			ups = append(ups, ds.Upload)
		}
	}
	var spans []store.Span
	for _, u := range ups {
		spans = append(spans, store.UploadData(u)...)
	}
	for id := range c.Tasks {
		spans = append(spans, store.TaskData(id)...)
	}
	spans = append(spans, store.Joins(c.ID), store.Audiences(c.ID))
	return spans, ups, nil
}

// sweepRetired retires every collaboration revoked or expired whose data
// is not yet deleted, or whose deletion a stop interrupted.
func (r *Room) sweepRetired(ctx context.Context) error {
	var ids []string
	err := r.db.View(func(txn *badger.Txn) error {
		return collabs.Scan(r.txn(txn), func(c *collabRecord) error {
			if r.retired(c) {
				ids = append(ids, c.ID)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.retire(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("collaboration %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// retiredMeanwhile returns, for a member's request on a collaboration that
// failed because its data went while the request read it (the collaboration
// was revoked, or expired, after the request was allowed), the refusal the
// request would have met had it come a moment later, instead of err. Any
// other failure, and one the request already answers with a problem,
// stays.
func (r *Room) retiredMeanwhile(req *http.Request, who *actor, err error) error {
	var p *api.Problem
	id := req.PathValue("id")
	if errors.As(err, &p) || who == nil || id == "" || !strings.HasPrefix(req.URL.Path, "/v1/collaborations/") {
		return err
	}
	c, cerr := r.collab(id)
	if cerr != nil || !c.isMember(who.partner()) {
		return err
	}
	if derr := dataAllowed(c, r.now()); derr != nil {
		return derr
	}
	return err
}

// retireRevoked retires collaboration id after its revocation committed.
// A failure costs disk space until the next sweep, not the revocation: it
// is logged.
func (r *Room) retireRevoked(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := r.retire(ctx, id); err != nil {
		r.log.Warn("deleting a revoked collaboration's data failed; the next sweep tries again", "collaboration", id, "err", err)
	}
}
