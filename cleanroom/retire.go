package cleanroom

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
// every member's uploads, committed or not (found by store.UploadsOf, so
// that a revocation's time does not follow other collaborations' uploads),
// with their layers, the records of those never committed, its open relay
// tasks, its join tables and its activated audiences, and the columns and
// joins decoded from them in memory. The collaboration's records stay (its
// terms, members, budget ledger, activation counts and the sizes of its
// datasets and match), as does the log.
//
// The deletion is recorded once, in the collaboration's part of the log
// (its members' auditors see it), in the transaction that marks the record
// (DataDeleted): one entry whatever data there was, so the log's size does
// not tell whether a member had started an upload or an activation left
// fingerprints. A revocation retires its collaboration in the request that
// revoked it; an expiry, on a timer of its own (expiryTimers); one whose
// retirement a stop or a failure interrupted, the room's next opening or
// hourly housekeeping (sweepRetired).
//
// A request allowed before the revocation may still write once the
// deletion has read the keys (a relay answer's layer or canaries, a match's
// join, a column decoded into memory): the transaction that would record
// it refuses it, and what it wrote goes with the next sweep, in a further
// recorded round.

// retire deletes the data of collaboration id if it is retired, recording
// the deletion the first time.
func (r *Room) retire(ctx context.Context, id string) error {
	for range 3 {
		rt, err := r.prepareRetirement(id, true)
		if err != nil || rt == nil {
			return err
		}
		err = r.recordRetirement(ctx, rt)
		if errors.Is(err, errUploadCommitted) {
			rt.unlock()
			continue // read again, with the upload committed
		}
		if err == nil {
			err = r.finishRetirement(ctx, rt)
		}
		rt.unlock()
		return err
	}
	return errUploadCommitted
}

// expiryTimers retire each collaboration when it expires, on a timer of its
// own: a sweep that retired every collaboration expired in the hour would
// record them one after another, and the time between two members' entries
// would tell how many others expired meanwhile. The hourly sweep finishes
// what a timer could not (the room was stopped, or the deletion failed).
type expiryTimers struct {
	mu     sync.Mutex
	ctx    context.Context // the housekeeping's: ends when the room closes
	timers map[string]*time.Timer
	closed bool
}

// scheduleExpiries starts the timers of the room's live collaborations
// that expire, under ctx.
func (r *Room) scheduleExpiries(ctx context.Context) error {
	r.expiries.mu.Lock()
	r.expiries.ctx = ctx
	r.expiries.mu.Unlock()
	return r.db.View(func(txn *badger.Txn) error {
		return collabs.Scan(r.txn(txn), func(c *collabRecord) error {
			r.expiries.schedule(r, c)
			return nil
		})
	})
}

// schedule starts c's timer, if it expires and is live.
func (e *expiryTimers) schedule(r *Room, c *collabRecord) {
	if c.ExpiresAt.IsZero() || r.retired(c) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.ctx == nil || e.timers[c.ID] != nil {
		return
	}
	if e.timers == nil {
		e.timers = map[string]*time.Timer{}
	}
	ctx, id := e.ctx, c.ID
	r.housekept.Add(1)
	e.timers[id] = time.AfterFunc(c.ExpiresAt.Sub(r.now()), func() {
		defer r.housekept.Done()
		e.mu.Lock()
		delete(e.timers, id)
		e.mu.Unlock()
		if err := r.retire(ctx, id); err != nil && ctx.Err() == nil {
			r.log.Warn("deleting an expired collaboration's data failed; the next sweep tries again", "collaboration", id, "err", err)
		}
	})
}

// stopExpiries stops the timers that have not fired.
func (r *Room) stopExpiries() {
	e := &r.expiries
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for id, t := range e.timers {
		if t.Stop() {
			r.housekept.Done()
		}
		delete(e.timers, id)
	}
}

// A retirement is one collaboration's, under its lock (Room.retiring).
type retirement struct {
	c      *collabRecord
	spans  []store.Span // its data
	open   []string     // its uploads never committed, whose records go too
	ups    []string
	del    *deletion // the keys the marked entry records; nil if recorded already
	unlock func()
}

// prepareRetirement takes collaboration id's retirement lock and reads
// what its retirement deletes; nil (and no lock held) if it is not
// retired.
//
// Without wait, a retirement already under way (a revocation's, a timer's)
// is left to finish it: nil, at once.
func (r *Room) prepareRetirement(id string, wait bool) (*retirement, error) {
	// One retirement of a collaboration at a time; others' run beside it,
	// so that one's deletion does not show in another's revocation time.
	lock, _ := r.retiring.LoadOrStore(id, new(sync.Mutex))
	mu := lock.(*sync.Mutex)
	if !wait {
		if !mu.TryLock() {
			return nil, nil
		}
	} else {
		mu.Lock()
	}
	rt, err := r.readRetirement(id)
	if err != nil || rt == nil {
		mu.Unlock()
		return nil, err
	}
	rt.unlock = mu.Unlock
	return rt, nil
}

func (r *Room) readRetirement(id string) (*retirement, error) {
	c, err := r.collab(id)
	if err != nil || !r.retired(c) {
		return nil, err
	}
	spans, ups, err := r.collabData(c)
	if err != nil {
		return nil, err
	}
	rt := &retirement{c: c, ups: ups, open: r.openUploads(c, ups)}
	// The records of its open uploads go too: the only records that do,
	// since nothing can commit them now.
	rt.spans = spans
	for _, u := range rt.open {
		rt.spans = append(rt.spans, uploads.Span(u)...)
		rt.spans = append(rt.spans, store.CollabUploadSpan(id, u))
	}
	if c.DataDeleted.IsZero() {
		if rt.del, err = r.listDeletion(retiredName(id), c, rt.spans...); err != nil {
			return nil, err
		}
	}
	return rt, nil
}

func retiredName(id string) string { return "retired-collaboration/" + id }

// recordRetirement records rt's deletion, once for its collaboration, in
// the transaction that marks the record.
func (r *Room) recordRetirement(ctx context.Context, rt *retirement) error {
	if rt.del == nil {
		return nil
	}
	id := rt.c.ID
	err := r.recordDeletion(ctx, rt.del, func(tx *store.Tx) error {
		// An upload read as open and committed since (at an expiry, which
		// no write orders against a commit) keeps its record: read again.
		for _, u := range rt.open {
			if cur, err := loadUpload(tx.Txn, id, u); err == nil && cur.Committed {
				return errUploadCommitted
			}
		}
		return updateCollab(tx, id, func(cur *collabRecord) error {
			if !cur.DataDeleted.IsZero() {
				return errAlreadyRetired
			}
			cur.DataDeleted = r.now().UTC()
			// Their parts go with the rest, and none will be answered; the
			// ids stay, so that a later round finds what an answer in
			// flight wrote for them.
			for t := range cur.Tasks {
				cur.RetiredTasks = append(cur.RetiredTasks, t)
			}
			slices.Sort(cur.RetiredTasks)
			cur.Tasks = nil
			return nil
		})
	})
	if errors.Is(err, errAlreadyRetired) {
		rt.del = nil
		return nil
	}
	return err
}

// finishRetirement deletes what rt's entry recorded, then what was written
// after its keys were read (an answer or a join in flight when the
// collaboration was retired, refused by the transaction that would have
// recorded it) or what a stop kept from being deleted, in further recorded
// rounds; then the columns decoded from its data and its exports.
func (r *Room) finishRetirement(ctx context.Context, rt *retirement) error {
	id := rt.c.ID
	if rt.del != nil {
		if err := r.applyDeletion(rt.del); err != nil {
			return err
		}
	}
	if err := r.deleteSpans(ctx, retiredName(id), rt.c, rt.spans...); err != nil {
		return err
	}
	// Cached under the uploads' columns (col/upload/…) or a join of the
	// collaboration (join/id/run, and the joined/… and proj/… made from it).
	r.cache.removeIf(func(key string) bool {
		if strings.Contains(key, "join/"+id+"/") {
			return true
		}
		for _, u := range rt.ups {
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

// errUploadCommitted is the marked round's apply finding an upload it read
// as open committed since.
var errUploadCommitted = errors.New("cleanroom: an upload of the collaboration was committed while its retirement was read")

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
	for _, id := range c.RetiredTasks {
		spans = append(spans, store.TaskData(id)...)
	}
	spans = append(spans, store.Joins(c.ID), store.Audiences(c.ID))
	return spans, ups, nil
}

// openUploads returns those of ups that were never committed. One whose
// record cannot be read is left to the week's sweep of abandoned uploads.
func (r *Room) openUploads(c *collabRecord, ups []string) []string {
	var open []string
	r.db.View(func(txn *badger.Txn) error {
		for _, id := range ups {
			if u, err := loadUpload(r.txn(txn), c.ID, id); err == nil && !u.Committed {
				open = append(open, id)
			}
		}
		return nil
	})
	return open
}

// indexUploads writes the index key (store.CollabUpload) of every upload
// whose record has none: those of a room from before the index, which a
// retirement would not find otherwise. It runs once: startUpload writes
// the key of every upload since.
func (r *Room) indexUploads(context.Context) error {
	var missing [][]byte
	done := false
	err := r.db.View(func(txn *badger.Txn) error {
		switch _, err := txn.Get(store.UploadsIndexed()); {
		case err == nil:
			done = true
			return nil
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		return uploads.Scan(r.txn(txn), func(u *uploadRecord) error {
			key := store.CollabUpload(u.Collab, u.ID)
			if _, err := txn.Get(key); errors.Is(err, badger.ErrKeyNotFound) {
				missing = append(missing, key)
			} else if err != nil {
				return err
			}
			return nil
		})
	})
	if err != nil || done {
		return err
	}
	wb := r.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range append(missing, store.UploadsIndexed()) {
		if err := wb.Set(k, nil); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// sweepRetired retires every collaboration revoked or expired whose data
// is not yet deleted, or whose deletion a stop interrupted. It reads what
// each deletes, then records them all, then deletes: the time between two
// collaborations' entries is not the time the deletion of a third took.
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
	var rts []*retirement
	defer func() {
		for _, rt := range rts {
			if rt != nil {
				rt.unlock()
			}
		}
	}()
	for _, id := range ids {
		// A retirement under way (a revocation's, a timer's) is left to
		// finish; each lock taken here goes as soon as its own deletion is
		// done.
		rt, err := r.prepareRetirement(id, false)
		if err != nil {
			errs = append(errs, fmt.Errorf("collaboration %s: %w", id, err))
		} else if rt != nil {
			rts = append(rts, rt)
		}
	}
	for i, rt := range rts {
		if err := r.recordRetirement(ctx, rt); err != nil {
			errs = append(errs, fmt.Errorf("collaboration %s: %w", rt.c.ID, err))
			rt.unlock()
			rts[i] = nil
		}
	}
	for i, rt := range rts {
		if rt == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := r.finishRetirement(ctx, rt); err != nil {
			errs = append(errs, fmt.Errorf("collaboration %s: %w", rt.c.ID, err))
		}
		rt.unlock()
		rts[i] = nil
	}
	return errors.Join(errs...)
}

// retiredMeanwhile returns, for a member's request on a collaboration that
// failed because its data went while the request read it (the collaboration
// was revoked, or expired, after the request was allowed), the refusal the
// request would have met had it come a moment later, instead of err. Any
// other failure stays: damage, a deadline, a problem the request answered.
func (r *Room) retiredMeanwhile(req *http.Request, who *actor, err error) error {
	id := req.PathValue("id")
	if !dataGone(err) || who == nil || id == "" || !strings.HasPrefix(req.URL.Path, "/v1/collaborations/") {
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

// dataGone reports whether err is a read of a segment that is no longer
// there: its key deleted, or its file. Damaged records, deadlines and
// cancellations are not.
func dataGone(err error) bool {
	var p *api.Problem
	if errors.As(err, &p) || errors.Is(err, ErrCorruptState) {
		return false
	}
	return errors.Is(err, store.ErrSegmentGone) || errors.Is(err, badger.ErrKeyNotFound) || errors.Is(err, fs.ErrNotExist)
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
