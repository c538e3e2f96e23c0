package cleanroom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// maxMembers bounds a collaboration: every blinded set is re-encrypted by
// every other member, so the relay costs grow with the square.
const maxMembers = 8

// collabRecord is a collaboration as the room stores it.
type collabRecord struct {
	ID        string          `json:"id"`
	Mode      string          `json:"mode"`
	Profile   string          `json:"profile"`
	Kind      string          `json:"kind"`
	Members   []string        `json:"members"`
	CreatedBy string          `json:"created_by"`
	Accepted  map[string]bool `json:"accepted"`
	Settings  policy.Settings `json:"settings"`
	Revoked   bool            `json:"revoked,omitempty"`
	RevokedBy string          `json:"revoked_by,omitempty"`
	Created   time.Time       `json:"created"`
	// CreatedEntry is the index of the audit entry that created it: the
	// log's entries of its id before that one are none of its members'
	// concern (auditscope.go).
	CreatedEntry int64     `json:"created_entry,omitempty"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	// DataDeleted is when the room deleted the collaboration's data, once
	// it was retired (retire.go).
	DataDeleted time.Time                 `json:"data_deleted,omitzero"`
	Datasets    map[string]*datasetRecord `json:"datasets"`
	Tasks       map[string]*taskRecord    `json:"tasks,omitempty"`
	// RetiredTasks are the relay tasks open when its data was deleted,
	// whose data a later round of the deletion looks for (retire.go).
	RetiredTasks []string     `json:"retired_tasks,omitempty"`
	Match        *matchRecord `json:"match,omitempty"`
	Runs         int64        `json:"runs"`
	// Policy is the collaboration's own module: active and proposed.
	Policy policy.Proposals `json:"policy"`
}

func (c *collabRecord) isMember(p string) bool { return slices.Contains(c.Members, p) }

func (c *collabRecord) allAccepted() bool {
	for _, m := range c.Members {
		if !c.Accepted[m] {
			return false
		}
	}
	return true
}

// policyView is what a decision needs of c.
func (c *collabRecord) policyView() *policy.Collaboration {
	ds := make(map[string]policy.DatasetState, len(c.Datasets))
	for m, d := range c.Datasets {
		matched := c.Match != nil && c.Match.Uploads[m] == d.Upload
		ds[m] = policy.DatasetState{Uploaded: true, Matched: matched}
	}
	return &policy.Collaboration{
		ID: c.ID, Members: c.Members, Settings: c.Settings, Datasets: ds,
		Revoked: c.Revoked, ExpiresAt: c.ExpiresAt, PolicyHash: c.Policy.Active,
	}
}

func loadCollab(t store.Txn, id string) (*collabRecord, error) {
	c, err := collabs.Get(t, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("collaboration")
	}
	return c, err
}

// collab reads a collaboration, a copy of the caller's own.
func (r *Room) collab(id string) (*collabRecord, error) {
	var c *collabRecord
	err := r.db.View(func(txn *badger.Txn) (err error) {
		c, err = loadCollab(r.txn(txn), id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// sharedCollab reads a collaboration through the room's cache: the record
// is shared with other requests and must not be modified.
func (r *Room) sharedCollab(id string) (*collabRecord, error) {
	var c *collabRecord
	err := r.db.View(func(txn *badger.Txn) (err error) {
		c, err = collabs.GetShared(r.txn(txn), r.records.collabs, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("collaboration")
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// updateCollab re-reads collaboration id inside txn (on the audit log's
// single writer, so no other change interleaves), lets change modify it, and
// writes it back. change re-checks whatever the action depended on that may
// have changed since it was decided.
func updateCollab(tx *store.Tx, id string, change func(c *collabRecord) error) error {
	c, err := collabs.Get(tx.Txn, id)
	if err != nil {
		return err
	}
	if err := change(c); err != nil {
		return err
	}
	return collabs.Put(tx, id, c)
}

// createCollaboration creates a collaboration; its creator accepts it.
func (r *Room) createCollaboration(ctx context.Context, who *actor, req api.CreateCollaboration) (*api.Collaboration, error) {
	// A refused attempt on an id is that collaboration's to show (to its
	// members' auditors, once it exists: auditscope.go).
	who.named = req.ID
	c, err := r.newCollab(who, req)
	if err != nil {
		return nil, err
	}
	a := act{action: policy.ActionCollaborationCreate, collab: c}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	spec, _ := json.Marshal(req)
	sum := sha256.Sum256(spec)
	refs := []audit.DataRef{{Name: "collaboration/" + c.ID, Digest: hex.EncodeToString(sum[:]), Bytes: int64(len(spec))}}
	err = r.commit(ctx, who, a, d, refs, "", func(tx *store.Tx) error {
		switch exists, err := collabs.Exists(tx.Txn, c.ID); {
		case err != nil:
			return err
		case exists:
			return conflict("a collaboration with this id exists")
		}
		for _, m := range c.Members {
			if p, err := principals.Get(tx.Txn, m); err != nil || p.Role != policy.RolePartner {
				return badRequest("every member must be a registered partner")
			}
		}
		c.CreatedEntry = tx.Index
		return collabs.Put(tx, c.ID, c)
	})
	if err != nil {
		return nil, err
	}
	r.expiries.schedule(r, c)
	return r.view(c, d.Constraints)
}

func (r *Room) newCollab(who *actor, req api.CreateCollaboration) (*collabRecord, error) {
	if len(req.Members) > maxMembers {
		return nil, badRequest("a collaboration has at most %d members", maxMembers)
	}
	if !crypto.ValidPartnerName(req.ID) {
		return nil, badRequest("a collaboration id is 1-63 of a-z 0-9 . _ -")
	}
	if req.Mode == "" {
		req.Mode = api.ModeBlinded
	}
	if req.Mode != api.ModeHashed && req.Mode != api.ModeBlinded {
		return nil, badRequest("mode must be hashed or blinded")
	}
	if req.Profile == "" {
		req.Profile = crypto.ProfilePAIRv1
	}
	if _, err := crypto.LookupProfile(req.Profile, crypto.ProfileOptions{}); err != nil {
		return nil, badRequest("unknown normalization profile (known: %v)", crypto.Profiles())
	}
	if _, err := crypto.ParseKind(req.Kind); err != nil {
		return nil, badRequest("kind must be email, phone, maid or custom")
	}
	members := slices.Clone(req.Members)
	slices.Sort(members)
	if len(slices.Compact(members)) != len(req.Members) {
		return nil, badRequest("members must be distinct, at most %d", maxMembers)
	}
	if !slices.Contains(members, who.partner()) {
		return nil, badRequest("the creator must be a member")
	}
	settings, err := policy.DecodeSettings(req.Settings)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	if err := settings.Check(r.defaults(), members); err != nil {
		return nil, badRequest("%v", err)
	}
	c := &collabRecord{
		ID: req.ID, Mode: req.Mode, Profile: req.Profile, Kind: req.Kind, Members: members,
		CreatedBy: who.partner(), Accepted: map[string]bool{who.partner(): true}, Settings: settings,
		Created: r.now().UTC(), Datasets: map[string]*datasetRecord{},
	}
	if h := settings.ExpiresInHours; h > 0 {
		c.ExpiresAt = c.Created.Add(time.Duration(h) * time.Hour)
	}
	return c, nil
}

// defaults are the room's policy defaults, which settings may only tighten.
func (r *Room) defaults() policy.Constraints {
	if r.cfg.Defaults != nil {
		return *r.cfg.Defaults
	}
	return policy.DefaultConstraints()
}

// readCollab decides and records a read of collaboration id. The record
// it returns is shared with other requests (Room.records): callers read it
// and never modify it.
func (r *Room) readCollab(ctx context.Context, who *actor, id string, action policy.Action) (*collabRecord, policy.Decision, error) {
	c, err := r.sharedCollabFor(who, id)
	if err != nil {
		return nil, policy.Decision{}, err
	}
	a := act{action: action, collab: c}
	d, err := r.authorize(ctx, who, a)
	if err == nil {
		err = r.commit(ctx, who, a, d, nil, "", nil)
	}
	return c, d, err
}

// view renders c for its members, with their public keys and the
// constraints k in force.
func (r *Room) view(c *collabRecord, k policy.Constraints) (*api.Collaboration, error) {
	settings, err := c.Settings.Canonical()
	if err != nil {
		return nil, err
	}
	// c may be shared (readCollab): the view holds copies of what it could
	// change.
	v := &api.Collaboration{
		ID: c.ID, Mode: c.Mode, Profile: c.Profile, Kind: c.Kind, Members: slices.Clone(c.Members),
		CreatedBy: c.CreatedBy, Accepted: maps.Clone(c.Accepted), Revoked: c.Revoked, RevokedBy: c.RevokedBy,
		Settings: settings, NoiseOff: c.Settings.NoiseOff, Datasets: map[string]*api.Dataset{}, Keys: map[string]any{},
		PendingReencryption: map[string]int{},
	}
	v.SettingsDigest = api.TermsDigest(v)
	v.Constraints = &api.Constraints{
		MinGroupSize: k.MinGroupSize, EpsilonPerQuery: k.EpsilonPerQuery, EpsilonMinPerQuery: k.EpsilonMinPerQuery,
		EpsilonBudget: k.EpsilonBudget, EpsilonMatch: k.EpsilonMatch, DeltaPerQuery: k.DeltaPerQuery, DeltaBudget: k.DeltaBudget,
		MinListSize: k.MinListSize, MaxListSize: k.MaxListSize, MinUploadDifference: k.MinUploadDifference,
		MaxQueriesPerDay: k.MaxQueriesPerDay, MaxMatchesPerDay: k.MaxMatchesPerDay, MaxUploadsPerDay: k.MaxUploadsPerDay,
		AllowedDimensions: k.AllowedDimensions, AllowedMetrics: k.AllowedMetrics, NeverOutputColumns: k.NeverOutputColumns,
	}
	if !c.ExpiresAt.IsZero() {
		t := c.ExpiresAt
		v.ExpiresAt = &t
	}
	if !c.DataDeleted.IsZero() {
		t := c.DataDeleted
		v.DataDeletedAt = &t
	}
	for m, d := range c.Datasets {
		v.Datasets[m] = d.view(c)
	}
	for _, t := range c.Tasks {
		v.PendingReencryption[t.Member]++
	}
	for _, m := range c.Members {
		p, err := r.principal(m)
		if err != nil {
			return nil, err
		}
		v.Keys[m] = slices.Clone(p.Keys)
	}
	if c.Match != nil {
		mr := c.Match.release()
		v.Match = &mr
	}
	v.Policy = &api.PolicyState{Active: c.Policy.Active, Pending: map[string][]string{}}
	for h, p := range c.Policy.Pending {
		v.Policy.Pending[h] = p.Approvals
	}
	return v, nil
}

// termsDigest is the digest of c's terms, as its members see them.
func (c *collabRecord) termsDigest() (string, error) {
	settings, err := c.Settings.Canonical()
	if err != nil {
		return "", err
	}
	return api.TermsDigest(&api.Collaboration{ID: c.ID, Mode: c.Mode, Profile: c.Profile, Kind: c.Kind,
		Members: c.Members, Settings: settings}), nil
}

// accept records a member's agreement to the collaboration's terms, which
// it names by their digest: a member never agrees to terms it was not shown.
func (r *Room) accept(ctx context.Context, who *actor, id, digest string) error {
	return r.changeCollab(ctx, who, id, policy.ActionCollaborationAccept, func(c *collabRecord) error {
		if c.Revoked {
			return conflict("the collaboration was revoked: there is nothing to accept")
		}
		want, err := c.termsDigest()
		if err != nil {
			return err
		}
		if digest != want {
			return conflict("the settings digest is not this collaboration's: review its settings (cleanroom status) and accept the digest shown there")
		}
		c.Accepted[who.partner()] = true
		return nil
	})
}

// revoke is a member's kill switch: from then on the collaboration touches
// no data, and every query is refused. Its data is deleted before revoke
// returns (retire.go).
func (r *Room) revoke(ctx context.Context, who *actor, id string) error {
	err := r.changeCollab(ctx, who, id, policy.ActionCollaborationRevoke, func(c *collabRecord) error {
		if c.Revoked {
			return conflict("the collaboration is already revoked (by %s)", c.RevokedBy)
		}
		c.Revoked, c.RevokedBy = true, who.partner()
		return nil
	})
	if err == nil {
		r.retireRevoked(ctx, id)
	}
	return err
}

func (r *Room) changeCollab(ctx context.Context, who *actor, id string, action policy.Action, change func(*collabRecord) error) error {
	c, err := r.collabFor(who, id)
	if err != nil {
		return err
	}
	a := act{action: action, collab: c}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return err
	}
	return r.commit(ctx, who, a, d, nil, "", func(tx *store.Tx) error {
		return updateCollab(tx, id, change)
	})
}

// maxSealed bounds a sealed secret: HPKE's enc (32) and a 32-byte secret
// with its tag are far below it.
const maxSealed = 256

// deliverSecret stores the collaboration secret sealed by the caller to
// member to. The room cannot open it.
func (r *Room) deliverSecret(ctx context.Context, who *actor, id, to string, sealed []byte) error {
	c, err := r.collabFor(who, id)
	if err != nil {
		return err
	}
	a := act{action: policy.ActionSecretDeliver, collab: c}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return err
	}
	if !c.isMember(to) || to == who.partner() {
		return badRequest("a secret is delivered to another member of the collaboration")
	}
	if len(sealed) == 0 || len(sealed) > maxSealed {
		return badRequest("a sealed secret is 1 to %d bytes", maxSealed)
	}
	s := api.SealedSecret{From: who.partner(), To: to, Sealed: sealed}
	sum := sha256.Sum256(sealed)
	at := store.In{Collab: id, ID: to}
	refs := []audit.DataRef{{Name: secrets.Key(at), Digest: hex.EncodeToString(sum[:]), Bytes: int64(len(sealed))}}
	return r.commit(ctx, who, a, d, refs, "", func(tx *store.Tx) error {
		return secrets.Put(tx, at, &s)
	})
}

// secret returns the sealed collaboration secret delivered to the caller.
func (r *Room) secret(ctx context.Context, who *actor, id string) (*api.SealedSecret, error) {
	c, err := r.collabFor(who, id)
	if err != nil {
		return nil, err
	}
	a := act{action: policy.ActionCollaborationRead, collab: c}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if who.Role != policy.RolePartner {
		return nil, problem(http.StatusForbidden, api.ProblemDenied, "only a partner itself receives the collaboration secret")
	}
	at := store.In{Collab: id, ID: who.partner()}
	var s *api.SealedSecret
	err = r.db.View(func(txn *badger.Txn) (err error) { s, err = secrets.Get(r.txn(txn), at); return })
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("a secret for you in this collaboration")
	}
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(s.Sealed)
	refs := []audit.DataRef{{Name: secrets.Key(at), Digest: hex.EncodeToString(sum[:]), Bytes: int64(len(s.Sealed))}}
	if err := r.commit(ctx, who, a, d, refs, "", nil); err != nil {
		return nil, err
	}
	return s, nil
}
