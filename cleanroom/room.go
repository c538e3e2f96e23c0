package cleanroom

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/semaphore"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// Config configures a Room. Dir is required; the rest have defaults.
type Config struct {
	Dir    DataDir
	Logger *slog.Logger
	Now    func() time.Time
	Rand   io.Reader
	// MatchMemory bounds the memory the room's matchers take together
	// before they spill to disk (default 1 GiB): a match takes three
	// quarters of it, an upload's commit a quarter to count its list.
	// TempDir holds the spill files (default: the data directory).
	MatchMemory int64
	TempDir     string
	// PolicyTimeout bounds one policy decision (package policy's default
	// when zero); past it the action is not taken, and the answer is 503.
	PolicyTimeout time.Duration
	// ModelSample is the number of matched people a lookalike model
	// trains on, on average, when there are more (model.DefaultSample
	// when zero; negative: all of them). Each person is drawn on its own
	// (model.Sample), so the model's guarantee and charge are unchanged;
	// training's time and memory follow the sample, not the lists.
	ModelSample int
	// ColumnMemory bounds the decoded columns, joins and projections the
	// room keeps between queries (default 1 GiB). A query holds what it
	// reads beyond that until it ends; below what the queries read
	// together, they decode their columns again.
	ColumnMemory int64
	// CheckpointEvery and CheckpointInterval are the audit log's (package
	// audit's defaults when zero).
	CheckpointEvery    int64
	CheckpointInterval time.Duration
	// Defaults are the room's policy defaults (policy.DefaultConstraints()
	// when nil); collaborations can only tighten them.
	Defaults *policy.Constraints
	// Registry receives the room's metrics (a new one when nil).
	Registry *prometheus.Registry
	// AuthFailures throttles failed authentications and sets how often
	// they are recorded, aggregated (see AuthLimits for the defaults).
	AuthFailures AuthLimits
	// Disk sets the free-space watermarks of the data directory's disk
	// (diskspace.go).
	Disk DiskLimits
	// Engine chooses where queries are computed (engine.go): in the
	// room's process, the default, or in a Beam job.
	Engine EngineConfig

	// checkCaches makes every read of a cached record check that no reader
	// modified it (recordCaches); the tests set it.
	checkCaches bool
}

// Room is a running clean room. It is safe for concurrent use.
type Room struct {
	cfg     Config
	id      *identity
	db      *badger.DB
	audit   *audit.Log
	policy  *policy.Engine
	log     *slog.Logger
	now     func() time.Time
	rand    io.Reader
	metrics *metrics
	guard   *authGuard // failed authentications, by source
	// inflight holds the requests being served (*inflight), so that a
	// shutdown can answer those still running at its end.
	inflight sync.Map
	disk     *diskWatch

	// stateKey seals the room's state records (sealer) and keys its
	// commitments to data (dataDigest).
	stateKey []byte
	sealer   *store.Sealer

	keys sync.Map // principal id → *tokenKey, parsed once for its record's keys
	// issuers holds the ids of the registered principals (id → struct{}),
	// so that a token's issuer is looked up in memory (verifyToken).
	issuers sync.Map
	records recordCaches
	cache   columnCache
	// partBufs holds buffers of binary upload parts, *[]byte, for reuse
	// once a part is stored: parts are megabytes each, and fresh ones cost
	// page faults on every request.
	partBufs sync.Pool
	// resident releases the pages of segments read and written (store.Resident).
	resident *store.Resident
	// files holds the upload parts, a file each (store.Files).
	files *store.Files
	// statusViews holds each collaboration's status answer (statusview.go).
	statusViews statusViews

	stopHousekeeping context.CancelFunc
	housekept        sync.WaitGroup
	// engineJobs holds the members with a query on the Beam engine, by
	// collaboration and member (engineSlot).
	engineJobs sync.Map
	// gates and matchMem decide what runs beside a match (gate.go).
	gates    gates
	matchMem *semaphore.Weighted

	// jtiClaims holds the jtis of requests in flight (auth.go), by key.
	jtiClaims sync.Map
	// expiries holds each live collaboration's expiry timer (retire.go).
	expiries expiryTimers
	// retiring holds a *sync.Mutex by collaboration: the deletions of its
	// data once retired run one at a time (retire.go).
	retiring sync.Map
	// activating holds a *sync.Mutex by collaboration: its activations run
	// one at a time (activation.go).
	activating sync.Map

	// jtiFault, when set (by tests only), fails the replay cache's
	// transaction with its error, as a storage failure would.
	jtiFault atomic.Pointer[error]
	// auditFault, when set (by tests only), is reported as the audit log's
	// stop (auditStopped), as a commit of unknown outcome would stop it.
	auditFault atomic.Pointer[error]
	// beforeDelete, when set (by tests only), runs in each round of
	// deleteData between the read of the keys and their deletion.
	beforeDelete atomic.Pointer[func(name string)]
	// beforeRecord, when set (by tests only), runs between a match run's
	// join and its record.
	beforeRecord atomic.Pointer[func()]
}

// auditStopped reports why the room's audit log stopped taking appends
// (audit.ErrStopped), or nil while it takes them.
func (r *Room) auditStopped() error {
	if err := r.auditFault.Load(); err != nil {
		return *err
	}
	return r.audit.Err()
}

// Init creates a room in cfg.Dir, which must not hold one: its identity,
// checkpoint key and operator key, and registers the operator. It returns
// the operator's key (also written to Dir.OperatorKeyFile()).
func Init(ctx context.Context, cfg Config) (*crypto.PartnerKey, error) {
	op, err := writeIdentity(cfg.Dir, cfg.Rand)
	if err != nil {
		return nil, err
	}
	r, err := Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	keys, err := json.Marshal(op.Public())
	if err != nil {
		return nil, err
	}
	who := &actor{principalRecord: principalRecord{ID: "room", Role: policy.RoleOperator}, requestID: "init"}
	rec := principalRecord{ID: OperatorID, Role: policy.RoleOperator, Keys: keys, Added: r.now().UTC()}
	_, err = r.audit.AppendTxAt(ctx, r.entry(who, actionRoomInit, "", policy.Decision{Allow: true, PolicyHash: r.policy.BundleHash()}, nil, ""),
		func(txn *badger.Txn, index int64, leaf tlog.Hash) error {
			return principals.Put(r.stateTx(txn, index, leaf), OperatorID, &rec)
		})
	if err != nil {
		return nil, err
	}
	return op, nil
}

// Open opens the room in cfg.Dir.
func Open(ctx context.Context, cfg Config) (*Room, error) {
	id, err := readIdentity(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	stateKey, err := stateKeyFrom(id.key.Seed())
	if err != nil {
		return nil, err
	}
	db, err := openDatabase(cfg.Dir.Database(), false)
	if err != nil {
		return nil, err
	}
	log, err := audit.New(ctx, db, audit.Options{
		Origin: id.info.Origin, Key: id.key, Logger: cfg.Logger, Anchor: cfg.Dir.AnchorFile(),
		CheckpointEvery: cfg.CheckpointEvery, CheckpointInterval: cfg.CheckpointInterval,
	})
	if err != nil {
		db.Close()
		if errors.Is(err, audit.ErrCorrupt) || errors.Is(err, audit.ErrRolledBack) {
			return nil, fmt.Errorf("%w: the audit log: %w; run cleanroom doctor", ErrDamaged, err)
		}
		return nil, fmt.Errorf("cleanroom: opening audit log: %w", err)
	}
	eng, err := policy.New(ctx, policy.Options{Defaults: cfg.Defaults, Now: cfg.Now, Logger: cfg.Logger, Timeout: cfg.PolicyTimeout})
	if err != nil {
		log.Close()
		db.Close()
		return nil, err
	}
	r := &Room{cfg: cfg, id: id, db: db, audit: log, policy: eng, log: cfg.Logger, now: cfg.Now, rand: cfg.Rand,
		guard: newAuthGuard(cfg.AuthFailures, cfg.Now), stateKey: stateKey, sealer: store.NewSealer(stateKey), disk: newDiskWatch(string(cfg.Dir), cfg.Disk),
		matchMem: semaphore.NewWeighted(4), records: newRecordCaches(cfg.checkCaches), cache: columnCache{budget: cfg.ColumnMemory},
		resident: store.NewResident(store.ReleaseEvery, store.SettleAt), files: store.NewFiles(cfg.Dir.Segments(), db)}
	if problems, err := r.checkState(); err != nil || len(problems) > 0 {
		log.Close()
		db.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: checking it: %v; run cleanroom doctor", ErrDamaged, err)
		}
		return nil, stateMismatch(problems)
	}
	r.metrics = newMetrics(cfg.Registry, r)
	for _, resume := range []func(context.Context) error{r.sweepSegmentFiles, r.loadIssuers, r.loadPolicies, r.indexUploads, r.sweepRetired, r.sweepOrphans, r.resumeRelays, r.sweepAbandoned} {
		if err := resume(ctx); err != nil {
			r.Close()
			return nil, err
		}
	}
	hctx, stop := context.WithCancel(context.Background())
	r.stopHousekeeping = stop
	if err := r.scheduleExpiries(hctx); err != nil {
		stop()
		r.Close()
		return nil, err
	}
	r.housekept.Add(2)
	go func() { defer r.housekept.Done(); r.housekeeping(hctx, time.Hour) }()
	go func() { defer r.housekept.Done(); r.recordAuthFailures(hctx, cfg.AuthFailures.Interval) }()
	return r, nil
}

// withDefaults fills in what cfg leaves out.
func (cfg Config) withDefaults() Config {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.MatchMemory <= 0 {
		cfg.MatchMemory = 1 << 30
	}
	if cfg.ColumnMemory <= 0 {
		cfg.ColumnMemory = defaultColumnMemory
	}
	if cfg.TempDir == "" {
		cfg.TempDir = string(cfg.Dir)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	cfg.AuthFailures = cfg.AuthFailures.withDefaults()
	return cfg
}

// Close stops the housekeeping, records the failed authentications not
// yet recorded, signs a final checkpoint and closes the audit log and the
// database.
func (r *Room) Close() error {
	var err error
	if r.stopHousekeeping != nil {
		r.stopExpiries()
		r.stopHousekeeping()
		r.housekept.Wait()
		err = r.flushAuthFailures(context.Background())
	}
	if aerr := r.audit.Close(); err == nil {
		err = aerr
	}
	if derr := r.db.Close(); err == nil {
		err = derr
	}
	return err
}

// Info is the room's public identity.
func (r *Room) Info() api.RoomInfo {
	vk, _ := audit.VerifierKey(r.id.info.Origin, r.id.key.Public().(ed25519.PublicKey))
	return api.RoomInfo{ID: r.id.info.ID, AuditOrigin: r.id.info.Origin, VerifierKey: vk}
}

// proveInfo is Info with its proof for challenge: the room's signature,
// with the key its verifier key names, of its id and the challenge.
func (r *Room) proveInfo(challenge []byte) api.RoomInfo {
	info := r.Info()
	info.Proof = base64.StdEncoding.EncodeToString(ed25519.Sign(r.id.key, api.RoomProofMessage(info.ID, challenge)))
	return info
}

// principalRecord is a registered principal.
type principalRecord struct {
	ID      string          `json:"id"`
	Role    string          `json:"role"`
	Partner string          `json:"partner,omitempty"`
	Keys    json.RawMessage `json:"keys"`
	Added   time.Time       `json:"added"`
}

// partner is the member a principal acts for.
func (p *principalRecord) partner() string {
	if p.Partner != "" {
		return p.Partner
	}
	return p.ID
}

// actor is an authenticated principal making one request.
type actor struct {
	principalRecord
	requestID string
	// recorded is set once an entry for the request is on its way to the
	// audit log (see entry): then the HTTP wrapper records no refusal of
	// its own for an error the request returns.
	recorded atomic.Bool
	// jti is the request's claim on its token's jti, recorded with its
	// first entry (appendEntry); nil for the room's own actions.
	jti *jtiClaim
	// named is the collaboration a request names in its body rather than
	// its path (a creation's id): a refusal the wrapper records is that
	// collaboration's (recordRefusal).
	named string
}

// act is an action about to be decided.
type act struct {
	action   policy.Action
	collab   *collabRecord // nil for room actions
	resource policy.Resource
	usage    policy.Usage
	// spent is what an allowed action records for budget reconciliation:
	// the privacy budget it debits, in micro-epsilon, and its spec's keyed
	// digest (Room.specDigest). commit writes both into its entry.
	spent entryCharge
}

// entryCharge is an action's debit as its audit entry records it.
type entryCharge struct {
	epsilonMicro int64
	specDigest   string
}

func (r *Room) decide(ctx context.Context, who *actor, a act) policy.Decision {
	in := policy.Input{
		Principal: policy.Principal{ID: who.ID, Role: who.Role, Partner: who.partner()},
		Action:    a.action,
		Resource:  a.resource,
		Usage:     a.usage,
	}
	if a.collab != nil {
		in.Collaboration = a.collab.policyView()
	}
	d := r.policy.Decide(ctx, in)
	r.metrics.decisions.WithLabelValues(string(a.action), allowLabel(d.Allow)).Inc()
	return d
}

func allowLabel(ok bool) string {
	if ok {
		return "allow"
	}
	return "deny"
}

// authorize decides a; a denial is recorded in the audit log and returned
// as a problem. The caller records an allowed action with commit before it
// takes effect.
func (r *Room) authorize(ctx context.Context, who *actor, a act) (policy.Decision, error) {
	d := r.decide(ctx, who, a)
	if d.Allow {
		return d, nil
	}
	if _, err := r.appendEntry(ctx, who, r.entry(who, a.action, a.collabID(), a.collab.loggedDecision(d), nil, ""), nil); err != nil {
		return d, r.auditFailed(err)
	}
	if d.Undecided {
		// Not a denial of the action: the room could not decide it now.
		return d, &api.Problem{Type: api.ProblemUnavailable, Title: "the room could not decide this action in time, so it was not taken; try again",
			Status: http.StatusServiceUnavailable, Reasons: d.Reasons}
	}
	return d, denied(d.Reasons...)
}

func (a act) collabID() string {
	if a.collab == nil {
		return ""
	}
	return a.collab.ID
}

// applyError carries an error of a commit's apply function through the
// audit log, so that it is told apart from the log's own failure.
type applyError struct{ err error }

func (e applyError) Error() string { return e.err.Error() }

// commit records an allowed action and, in the same transaction, applies
// its state change (apply may be nil). If the audit append fails, nothing
// is applied and the request fails: an action that cannot be audited is not
// taken. If apply fails, neither the change nor the entry is written, and
// the request is not marked recorded: the wrapper records the refusal.
func (r *Room) commit(ctx context.Context, who *actor, a act, d policy.Decision, refs []audit.DataRef, result string, apply func(tx *store.Tx) error) error {
	before := who.recorded.Load()
	e := r.entry(who, a.action, a.collabID(), a.collab.loggedDecision(d), refs, result)
	e.EpsilonMicro, e.SpecDigest = a.spent.epsilonMicro, a.spent.specDigest
	var fn audit.TxFunc
	if apply != nil {
		fn = func(txn *badger.Txn, index int64, leaf tlog.Hash) error {
			if err := apply(r.stateTx(txn, index, leaf)); err != nil {
				return applyError{err}
			}
			return nil
		}
	}
	_, err := r.appendEntry(ctx, who, e, fn)
	var ae applyError
	if errors.As(err, &ae) {
		who.recorded.Store(before)
		return ae.err
	}
	if err != nil {
		return r.auditFailed(err)
	}
	return nil
}

func (r *Room) auditFailed(err error) error {
	r.log.Error("audit append failed; refusing the action", "err", err)
	r.metrics.auditFailures.Inc()
	return &api.Problem{Type: api.ProblemUnavailable, Title: "the audit log cannot record this action, so it was not taken", Status: http.StatusServiceUnavailable}
}

// entry makes the audit entry of an action of who's and marks the request
// as recorded. Every caller appends it, and if the append fails, fails the
// request with the log's own error (auditFailed), which no second entry
// could record either; commit clears the mark when its apply refuses.
func (r *Room) entry(who *actor, action policy.Action, collab string, d policy.Decision, refs []audit.DataRef, result string) audit.Entry {
	who.recorded.Store(true)
	return audit.Entry{
		Time: r.now().UTC(), Principal: who.ID, Role: who.Role, Action: string(action), Collaboration: collab,
		Decision:  audit.Decision{Allow: d.Allow, PolicyHash: d.PolicyHash, Reasons: d.Reasons},
		Data:      refs,
		RequestID: who.requestID, ResultDigest: result,
	}
}

// problem is shorthand for a client-facing error.
func problem(status int, typ, title string) *api.Problem {
	return &api.Problem{Type: typ, Title: title, Status: status}
}

func badRequest(format string, a ...any) *api.Problem {
	return problem(http.StatusBadRequest, api.ProblemBadRequest, fmt.Sprintf(format, a...))
}

func notFound(what string) *api.Problem {
	return problem(http.StatusNotFound, api.ProblemNotFound, what+" not found")
}

func conflict(format string, a ...any) *api.Problem {
	return problem(http.StatusConflict, api.ProblemConflict, fmt.Sprintf(format, a...))
}
