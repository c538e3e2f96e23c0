package cleanroom

// The answering side of the blinded relay: a member's re-encryption of a
// part of a task, checked against the room's probes, stored as the next
// layer of the set, and the task completed or closed.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// putTaskPart stores a member's re-encryption of one part of a task. When
// the last part arrives the set carries one key more, and the room offers it
// to the next member or, with every key, marks it ready to match.
func (r *Room) putTaskPart(ctx context.Context, who *actor, collab, id string, part int, body io.Reader) error {
	c, err := r.collabFor(who, collab)
	if err != nil {
		return err
	}
	a := act{action: policy.ActionDatasetReencrypt, collab: c}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return err
	}
	t, err := r.task(who, c, id, part)
	if err != nil {
		return err
	}
	n := t.partLen(part)
	got := make([]byte, n*api.TokenSize+1)
	k, err := io.ReadFull(body, got)
	if k != n*api.TokenSize || err != io.ErrUnexpectedEOF {
		return invalidData("part %d must be exactly %d elements of 32 bytes", part, n)
	}
	got = got[:k]
	if err := crypto.CheckElements(got); err != nil {
		return invalidData("part %d holds an invalid ristretto255 element (%v)", part, err)
	}
	sum := sha256.Sum256(got)
	name := fmt.Sprintf("task/%s/%d/result", t.ID, part)
	refs := []audit.DataRef{{Name: name, Digest: r.dataDigest(name, hex.EncodeToString(sum[:])), Bytes: int64(len(got)), Rows: int64(n)}}
	completed, err := r.answerPart(ctx, who, a, d, c, t, part, got, refs)
	if err != nil {
		return err
	}
	r.metrics.elementsReencrypted.Add(float64(n))
	if !completed {
		return nil
	}
	done := store.TaskData(t.ID)
	if t.Layer >= 2 {
		done = append(done, store.Layer(t.Upload, t.Layer).Span())
	}
	r.forget(ctx, "completed-task/"+t.ID, done...)
	// The next offer is the room's, not the request's: a member that hangs
	// up once its answer is stored does not leave the set unoffered until
	// the room opens again.
	return r.relayNext(context.WithoutCancel(ctx), collab, t.Owner)
}

// answerPart stores a member's answer to part of task t and marks the part
// done in the transaction of the request's audit entry; it reports whether
// that completed the task. The answer that would complete the task is
// checked first, with every part's, against the task's probes: if they
// fail it is stored nowhere, what the other parts stored goes, and the task
// closes: the set goes no further until its owner uploads it again, and
// the owner sees who failed (api.Dataset.RelayRefused). The parts of a task
// are answered one at a time, from the check to the commit, so that no
// answer lands once another has completed or closed the task.
func (r *Room) answerPart(ctx context.Context, who *actor, a act, d policy.Decision, c *collabRecord, t *taskRecord, part int, got []byte, refs []audit.DataRef) (completed bool, err error) {
	release, err := r.gates.acquire(ctx, "task/"+t.ID, gateWidth)
	if err != nil {
		return false, err
	}
	defer release()
	if err := r.db.View(func(txn *badger.Txn) (err error) { c, err = loadCollab(r.txn(txn), c.ID); return }); err != nil {
		return false, err
	}
	if c.Tasks[t.ID] == nil {
		return false, conflict("the task is no longer open (it was completed, closed, or its set replaced)")
	}
	layer, canary, err := r.readAnswer(ctx, c.Datasets[t.Owner], t, part, got)
	if err != nil {
		return false, err
	}
	open := c.Tasks[t.ID]
	if len(open.Done) == t.Parts-1 && !open.Done[part] {
		// The answer that completes the task: every probe is checked now,
		// once, against every part's answers.
		if err := r.checkProbes(ctx, t, part, canary); errors.Is(err, errProbeMismatch) {
			return false, r.closeRefusedTask(ctx, who, a, d, c, t, refs)
		} else if err != nil {
			return false, err
		}
	}
	if err := r.storeAnswer(t, part, layer, canary); err != nil {
		return false, err
	}
	err = r.commit(ctx, who, a, d, refs, "", func(tx *store.Tx) error {
		return updateCollab(tx, c.ID, func(c *collabRecord) (err error) {
			completed, err = r.partDone(tx, c, t.ID, part)
			return err
		})
	})
	return completed, err
}

// closeRefusedTask closes task t, whose answer failed the room's probes,
// records who failed on the set it was re-encrypting, and answers the
// member with the refusal. Closing, rather than letting the member answer
// again, keeps the refusal from telling it, try by try, where the probes
// are.
func (r *Room) closeRefusedTask(ctx context.Context, who *actor, a act, d policy.Decision, c *collabRecord, t *taskRecord, refs []audit.DataRef) error {
	err := r.commit(ctx, who, a, d, refs, "", func(tx *store.Tx) error {
		return updateCollab(tx, c.ID, func(c *collabRecord) error {
			if c.Tasks[t.ID] == nil {
				return conflict("the task is no longer open (it was completed, closed, or its set replaced)")
			}
			delete(c.Tasks, t.ID)
			if ds := c.Datasets[t.Owner]; ds != nil && ds.Upload == t.Upload {
				ds.RelayRefused = t.Member
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	// The task's data and the layer it was building go; the set keeps the
	// layer it has, which its dataset still names.
	r.forget(ctx, "refused-task/"+t.ID, append(store.TaskData(t.ID), store.Layer(t.Upload, t.Layer+1).Span())...)
	r.log.Warn("a relay answer failed the room's probes; the task is closed", "collab", c.ID, "task", t.ID, "member", t.Member, "owner", t.Owner)
	return invalidData("the re-encryption does not apply one key to every element it was sent, so the room closed the task; %s must upload its list again to have it relayed", t.Owner)
}

// readAnswer reads the elements a member returned for part of task t, the
// task's mask taken off, as that part of the set's next layer, each at the
// row the task kept for it, and as the answers to the canaries and probes
// among them (numbered by canary, then by probe). elems is overwritten.
func (r *Room) readAnswer(ctx context.Context, ds *datasetRecord, t *taskRecord, part int, elems []byte) (layer, canary []byte, err error) {
	src, err := r.readTaskPart(t, part)
	if err != nil {
		return nil, nil, err
	}
	n := len(elems) / api.TokenSize
	if src.Len() != n {
		return nil, nil, fmt.Errorf("cleanroom: relay task %s part %d holds %d elements, not %d", t.ID, part, src.Len(), n)
	}
	if t.Mask != nil {
		mask, err := crypto.NewBlindingKey(t.Mask)
		if err != nil {
			return nil, nil, fmt.Errorf("cleanroom: relay task %s: its mask: %w", t.ID, err)
		}
		if err := mask.DecryptBytes(ctx, elems, elems); err != nil {
			return nil, nil, fmt.Errorf("cleanroom: unmasking relay task %s part %d: %w", t.ID, part, err)
		}
	}
	// Rows from base on are the canaries' and then, from probes on, the
	// probes' (which stay out of the layer); a task offered before tasks
	// counted their canaries has no probes.
	base, probes := int64(-1), int64(math.MaxInt64)
	if t.Canaries > 0 {
		base, probes = t.DataRows, t.DataRows+int64(t.Canaries)
	} else if ds != nil {
		base = ds.Rows
	}
	repeats, err := r.readRepeats(t, part)
	if err != nil {
		return nil, nil, err
	}
	layer = make([]byte, 0, n*store.PairSize)
	keep := func(e []byte, row uint32) {
		if int64(row) < probes {
			layer = store.AppendPair(layer, e, row)
		}
		if base >= 0 && int64(row) >= base {
			canary = store.AppendPair(canary, e, row-uint32(base))
		}
	}
	for i := range n {
		e, row := elems[i*api.TokenSize:(i+1)*api.TokenSize], src.Row(i)
		keep(e, row)
		for _, other := range repeats[row] {
			keep(e, other)
		}
	}
	return layer, canary, nil
}

// readRepeats returns the other rows of the elements part of task t
// offers once (store.TaskRepeats), by the row offered.
func (r *Room) readRepeats(t *taskRecord, part int) (map[uint32][]uint32, error) {
	repeats := map[uint32][]uint32{}
	err := r.db.View(func(txn *badger.Txn) error {
		return store.ReadSegment(txn, store.TaskRepeats(t.ID).Key(part), func(b []byte) error {
			if len(b)%8 != 0 {
				return store.ErrCorruptSegment
			}
			for ; len(b) > 0; b = b[8:] {
				row := binary.LittleEndian.Uint32(b)
				repeats[row] = append(repeats[row], binary.LittleEndian.Uint32(b[4:]))
			}
			return nil
		})
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return repeats, nil // no element of the part repeats
	}
	return repeats, err
}

// storeAnswer stores part of a set's next layer and the answers to the
// canaries and probes in it. Nothing reads either until the task
// completes.
func (r *Room) storeAnswer(t *taskRecord, part int, layer, canary []byte) error {
	release, err := r.disk.reserve(int64(len(layer) + len(canary)))
	if err != nil {
		return err
	}
	defer release()
	return r.db.Update(func(txn *badger.Txn) error {
		if err := store.PutSegment(txn, store.Layer(t.Upload, t.Layer+1).Key(part), layer); err != nil {
			return err
		}
		return store.PutSegment(txn, store.TaskCanaries(t.ID).Key(part), canary)
	})
}

// partDone marks part of task id done in c and, once every part is, makes
// the layer it built the set's current one and closes the task.
func (r *Room) partDone(tx *store.Tx, c *collabRecord, id string, part int) (completed bool, err error) {
	if err := dataAllowed(c, r.now()); err != nil {
		return false, err
	}
	t := c.Tasks[id]
	if t == nil {
		return false, conflict("the task is no longer open (the set was replaced)")
	}
	t.Done[part] = true
	if len(t.Done) < t.Parts {
		return false, nil
	}
	ds := c.Datasets[t.Owner]
	if ds == nil || ds.Upload != t.Upload {
		return false, conflict("the set was replaced")
	}
	can, err := gatherCanary(tx.Txn.Txn, t, len(ds.Canary))
	if err != nil {
		return false, err
	}
	ds.Canary = can
	ds.Layers = t.Layer + 1
	ds.LayerParts = t.Parts
	delete(c.Tasks, id)
	return true, nil
}

// gatherCanary collects the canary elements a task's parts returned, in
// the order of the collaboration's canary identifiers.
func gatherCanary(txn *badger.Txn, t *taskRecord, n int) ([][]byte, error) {
	out := make([][]byte, n)
	for p := range t.Parts {
		err := store.ReadSegment(txn, store.TaskCanaries(t.ID).Key(p), func(b []byte) error {
			return store.EachPair(b, func(elem []byte, i uint32) {
				if int(i) < n {
					out[i] = slices.Clone(elem)
				}
			})
		})
		if err != nil {
			return nil, err
		}
	}
	for _, e := range out {
		if e == nil {
			return nil, fmt.Errorf("cleanroom: relay task %s lost a canary", t.ID)
		}
	}
	return out, nil
}
