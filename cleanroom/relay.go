package cleanroom

import (
	"bytes"
	"cmp"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/matcher"
	"github.com/opencleanroom/cleanroom/policy"
)

// The blinded relay. A member's set arrives carrying its own key (layer 1:
// k_a·P). The room shuffles it and offers it to the next member, which
// returns k_b·k_a·P in the same order; the room maps the answers back to rows
// (it kept the permutation) and offers the result to the next, until the set
// carries every member's key. Only then is it matched. The shuffle hides
// the owner's row order from the members that re-encrypt.
//
// A member that re-encrypts two sets under the same keys could compare them
// element by element: the owner's successive lists under its one key (who
// it kept and who it dropped), or, with three members or more, two members'
// sets that reach the same third member carrying the same two keys (their
// exact overlap, and, with a second account of its own, the other list's
// people). So the room masks a set it offers with a scalar of its own,
// fresh for the task (m·K·P), and takes it off what the member returns
// (k·m·K·P becomes k·K·P) before anything else reads it. One kind of offer
// goes unmasked: a member's first dataset in the collaboration, offered with
// its owner's key alone, is the only set any member is ever shown under that
// key, so there is nothing to compare it with, and a first match costs the
// room no group operations.

// taskPartSize is how many elements one relay part holds (2 MiB).
const taskPartSize = 65536

// taskRecord asks Member to re-encrypt Owner's set, which carries Layer keys.
type taskRecord struct {
	ID     string       `json:"id"`
	Owner  string       `json:"owner"`
	Member string       `json:"member"`
	Upload string       `json:"upload"`
	Layer  int          `json:"layer"`
	Rows   int64        `json:"rows"` // elements, canaries included
	Parts  int          `json:"parts"`
	Done   map[int]bool `json:"done"`
	// Mask is the room's scalar on the offered elements (32 bytes), nil
	// for an unmasked offer. It never leaves the room.
	Mask []byte `json:"mask,omitempty"`
	// DataRows is the set's rows before its Canaries canaries (rows
	// DataRows on); ProbeCount is how many probes follow them
	// (relayprobe.go), grown from ProbeSeed, which never leaves the room
	// either.
	DataRows   int64  `json:"data_rows,omitempty"`
	Canaries   int    `json:"canaries,omitempty"`
	ProbeCount int    `json:"probe_count,omitempty"`
	ProbeSeed  []byte `json:"probe_seed,omitempty"`
}

func (t *taskRecord) view() api.Task {
	v := api.Task{ID: t.ID, Owner: t.Owner, Layer: t.Layer, Rows: t.Rows, Parts: t.Parts, Done: []int{}}
	for p := range t.Done {
		v.Done = append(v.Done, p)
	}
	slices.Sort(v.Done)
	return v
}

func (t *taskRecord) partLen(part int) int {
	if part == t.Parts-1 {
		return int(t.Rows - int64(part)*taskPartSize)
	}
	return taskPartSize
}

// nextMember is who re-encrypts owner's set when it carries layers keys:
// the other members in order.
func nextMember(c *collabRecord, owner string, layers int) string {
	var others []string
	for _, m := range c.Members {
		if m != owner {
			others = append(others, m)
		}
	}
	if layers-1 < len(others) {
		return others[layers-1]
	}
	return ""
}

// offer writes owner's set, shuffled, as a relay task for the next member
// and returns the task; it becomes visible when the caller commits it into
// the collaboration.
func (r *Room) offer(ctx context.Context, c *collabRecord, owner string, ds *datasetRecord) (*taskRecord, error) {
	member := nextMember(c, owner, ds.Layers)
	if member == "" {
		return nil, nil
	}
	var all []matcher.Pair
	lr := r.newLayerReader(ds, true)
	for {
		all = slices.Grow(all, taskPartSize)
		n, err := lr.Read(all[len(all):cap(all)])
		all = all[:len(all)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	var seed [32]byte
	if _, err := io.ReadFull(crand.Reader, seed[:]); err != nil {
		return nil, err
	}
	// ChaCha8 seeded from crypto/rand: a CSPRNG, fast enough to shuffle
	// tens of millions of rows.
	rng := rand.New(rand.NewChaCha8(seed))
	var idb [12]byte
	crand.Read(idb[:])
	canary := make([]byte, len(ds.Canary)*api.TokenSize)
	for _, p := range all {
		if i := int64(p.Row) - ds.Rows; i >= 0 && i < int64(len(ds.Canary)) {
			copy(canary[i*api.TokenSize:], p.Token[:])
		}
	}
	all, repeats := distinctPairs(all)
	t := &taskRecord{ID: "task-" + hex.EncodeToString(idb[:]), Owner: owner, Member: member, Upload: ds.Upload,
		Layer: ds.Layers, Done: map[int]bool{}, DataRows: ds.Rows, Canaries: len(ds.Canary), ProbeCount: probeCount(int64(len(all)), len(ds.Canary))}
	if t.ProbeCount > 0 {
		t.ProbeSeed = make([]byte, 32)
		if _, err := io.ReadFull(crand.Reader, t.ProbeSeed); err != nil {
			return nil, err
		}
		probes, err := makeProbes(ctx, t.ProbeSeed, canary, t.ProbeCount)
		if err != nil {
			return nil, fmt.Errorf("cleanroom: the probes of relay task %s: %w", t.ID, err)
		}
		first := uint32(ds.Rows) + uint32(t.Canaries)
		for j := range t.ProbeCount {
			all = append(all, matcher.Pair{Row: first + uint32(j), Token: [api.TokenSize]byte(probes[j*api.TokenSize:])})
		}
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	t.Rows = int64(len(all))
	t.Parts = (len(all) + taskPartSize - 1) / taskPartSize
	var mask *crypto.BlindingKey
	if ds.Layers > 1 || !ds.First {
		var err error
		if mask, err = crypto.GenerateBlindingKey(crand.Reader); err != nil {
			return nil, err
		}
		t.Mask = mask.Bytes()
	}
	for p := range t.Parts {
		chunk := all[p*taskPartSize : min(len(all), (p+1)*taskPartSize)]
		payload := store.AppendTaskPart(make([]byte, 0, len(chunk)*store.PairSize), chunk)
		if mask != nil {
			elems := payload[:len(chunk)*api.TokenSize]
			if err := mask.ReencryptBytes(ctx, elems, elems); err != nil {
				return nil, fmt.Errorf("cleanroom: masking relay task %s: %w", t.ID, err)
			}
		}
		var more []byte // the other rows of the part's elements
		for _, pr := range chunk {
			for _, row := range repeats[pr.Row] {
				more = binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(more, pr.Row), row)
			}
		}
		if err := r.db.Update(func(txn *badger.Txn) error {
			if len(more) > 0 {
				if err := store.PutSegment(txn, store.TaskRepeats(t.ID).Key(p), more); err != nil {
					return err
				}
			}
			return store.PutSegment(txn, store.TaskParts(t.ID).Key(p), payload)
		}); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// distinctPairs keeps, of the pairs of a set about to be offered, one pair
// for each distinct element (its first row), and returns the other rows of
// each element that repeats, by that first row. A member re-encrypting the
// set sees each element once: how often the owner's list repeats an element
// stays in the room, and so does which elements are data (a repeated one
// could never be one of the room's probes, which are distinct).
func distinctPairs(all []matcher.Pair) ([]matcher.Pair, map[uint32][]uint32) {
	slices.SortFunc(all, func(a, b matcher.Pair) int {
		if c := bytes.Compare(a.Token[:], b.Token[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Row, b.Row)
	})
	repeats := map[uint32][]uint32{}
	out := all[:0]
	for i := 0; i < len(all); {
		j := i + 1
		for ; j < len(all) && all[j].Token == all[i].Token; j++ {
			repeats[all[i].Row] = append(repeats[all[i].Row], all[j].Row)
		}
		out = append(out, all[i])
		i = j
	}
	return out, repeats
}

// tasks lists the relay tasks waiting for the caller in a collaboration.
func (r *Room) tasks(ctx context.Context, who *actor, collab string) ([]api.Task, error) {
	c, _, err := r.readCollab(ctx, who, collab, policy.ActionCollaborationRead)
	if err != nil {
		return nil, err
	}
	out := []api.Task{}
	for _, t := range c.Tasks {
		if t.Member == who.partner() {
			out = append(out, t.view())
		}
	}
	slices.SortFunc(out, func(a, b api.Task) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// readTaskPart reads part of task t as stored.
func (r *Room) readTaskPart(t *taskRecord, part int) (store.TaskPart, error) {
	var b []byte
	err := r.db.View(func(txn *badger.Txn) (err error) {
		b, err = store.GetSegment(txn, store.TaskParts(t.ID).Key(part))
		return
	})
	if err != nil {
		return store.TaskPart{}, err
	}
	return store.DecodeTaskPart(b)
}

// task finds a task of the caller's.
func (r *Room) task(who *actor, c *collabRecord, id string, part int) (*taskRecord, error) {
	t := c.Tasks[id]
	if t == nil || t.Member != who.partner() {
		return nil, notFound("task")
	}
	if part < 0 || part >= t.Parts {
		return nil, badRequest("part numbers run from 0 to %d", t.Parts-1)
	}
	return t, nil
}

// taskPart returns the elements of one part of a relay task.
func (r *Room) taskPart(ctx context.Context, who *actor, collab, id string, part int) ([]byte, error) {
	c, err := r.collabFor(who, collab)
	if err != nil {
		return nil, err
	}
	a := act{action: policy.ActionDatasetReencrypt, collab: c}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	t, err := r.task(who, c, id, part)
	if err != nil {
		return nil, err
	}
	tp, err := r.readTaskPart(t, part)
	if err != nil {
		return nil, err
	}
	elems := tp.Elements
	// Both digests of a relay part are the room's keyed commitments, as
	// an upload part's are: another member that knew an element's plain
	// digest could test it against an element it made (a part of one
	// element, its re-encryption of a guess).
	sum := sha256.Sum256(elems)
	name := fmt.Sprintf("task/%s/%d", t.ID, part)
	refs := []audit.DataRef{{Name: name, Digest: r.dataDigest(name, hex.EncodeToString(sum[:])), Bytes: int64(len(elems)), Rows: int64(t.partLen(part))}}
	if err := r.commit(ctx, who, a, d, refs, "", nil); err != nil {
		return nil, err
	}
	return elems, nil
}

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
	return r.relayNext(ctx, collab, t.Owner)
}

// answerPart stores a member's answer to part of task t, once the task's
// probes pass with it, and marks the part done in the transaction of the
// request's audit entry; it reports whether that completed the task. An
// answer that fails the probes is stored nowhere, and closes the task:
// the set goes no further until its owner uploads it again, and the owner
// sees who failed (api.Dataset.RelayRefused). The parts of a task are
// answered one at a time, from the check to the commit, so that no answer
// lands once another has completed or closed the task.
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
	done := store.TaskData(t.ID)
	if t.Layer >= 2 {
		done = append(done, store.Layer(t.Upload, t.Layer).Span())
	}
	r.forget(ctx, "refused-task/"+t.ID, append(done, store.Layer(t.Upload, t.Layer+1).Span())...)
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

// relayNext offers owner's set to the next member if it needs another key
// and no task is open for it. The room does this itself, as principal
// "room", after a task completes and when it starts (so a crash between the
// two loses nothing).
func (r *Room) relayNext(ctx context.Context, collab, owner string) error {
	var c *collabRecord
	if err := r.db.View(func(txn *badger.Txn) (err error) { c, err = loadCollab(r.txn(txn), collab); return }); err != nil {
		return err
	}
	ds := c.Datasets[owner]
	if ds == nil || ds.ready(c) || c.Revoked || ds.RelayRefused != "" {
		return nil
	}
	for _, t := range c.Tasks {
		if t.Owner == owner {
			return nil
		}
	}
	t, err := r.offer(ctx, c, owner, ds)
	if err != nil || t == nil {
		return err
	}
	who := &actor{principalRecord: principalRecord{ID: "room", Role: policy.RoleOperator}, requestID: t.ID}
	d := policy.Decision{Allow: true, PolicyHash: r.policy.BundleHash()}
	refs := []audit.DataRef{{Name: "dataset/" + ds.Upload, Digest: ds.Digest, Rows: ds.Rows}}
	return r.commit(ctx, who, act{action: actionDatasetRelay, collab: c}, d, refs, "", func(tx *store.Tx) error {
		return updateCollab(tx, collab, func(c *collabRecord) error {
			now := c.Datasets[owner]
			if now == nil || now.Upload != ds.Upload || now.Layers != ds.Layers {
				return conflict("the set changed while it was being offered")
			}
			for _, open := range c.Tasks {
				if open.Owner == owner {
					return conflict("the set is already offered")
				}
			}
			if c.Tasks == nil {
				c.Tasks = map[string]*taskRecord{}
			}
			c.Tasks[t.ID] = t
			return nil
		})
	})
}

// resumeRelays offers every set that needs its next key and has no task:
// after a crash between a task's completion and the next offer.
func (r *Room) resumeRelays(ctx context.Context) error {
	var pending [][2]string
	err := r.db.View(func(txn *badger.Txn) error {
		return collabs.Scan(r.txn(txn), func(c *collabRecord) error {
			for m := range c.Datasets {
				pending = append(pending, [2]string{c.ID, m})
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, p := range pending {
		if err := r.relayNext(ctx, p[0], p[1]); err != nil {
			return err
		}
	}
	return nil
}
