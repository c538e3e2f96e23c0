package cleanroom

import (
	"bytes"
	"cmp"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
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
// key (a partner's client derives a key for each collaboration of each room:
// crypto.PartnerKey.CollaborationKey), so there is nothing to compare it
// with, and a first match costs the room no group operations. Each distinct element is offered once (the
// room keeps which rows repeat it), so how often the owner's list repeats
// someone stays in the room. What a member returns is checked before it is
// kept (relayanswer.go, relayprobe.go).

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
	if ds == nil || ds.ready(c) || r.retired(c) || ds.RelayRefused != "" {
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
	err = r.commit(ctx, who, act{action: actionDatasetRelay, collab: c}, d, refs, "", func(tx *store.Tx) error {
		return updateCollab(tx, collab, func(c *collabRecord) error {
			// Revoked or expired while the set was offered: its data is
			// being deleted (retire.go), and the task must not outlive it.
			if err := dataAllowed(c, r.now()); err != nil {
				return err
			}
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
	if err != nil {
		// No record names the task: its parts go.
		r.forget(ctx, "unoffered-task/"+t.ID, store.TaskData(t.ID)...)
	}
	return err
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
			// One that expired while the room opened is refused, and its
			// data goes with the sweep that follows: not damage.
			if c, cerr := r.collab(p[0]); cerr == nil && r.retired(c) {
				continue
			}
			return err
		}
	}
	return nil
}
