package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

//go:embed rego/*.rego
var bundleFS embed.FS

// decisionQuery is the rule the room asks for; constraintsQuery gives the
// constraints alone, which depend only on the collaboration.
const (
	decisionQuery    = "data.cleanroom.decision"
	constraintsQuery = "data.cleanroom.constraints"
)

// Decision is the policy's verdict.
type Decision struct {
	Allow       bool
	Reasons     []string // one sentence per denial; never a data value
	Constraints Constraints
	// PolicyHash is the SHA-256 (hex) of the collaboration's active module,
	// or of the default bundle when it has none: what the audit entry records.
	PolicyHash string
	// BundleHash is the SHA-256 (hex) of the default bundle in this build.
	BundleHash string
	// Undecided: the policy reached no decision in time (Options.Timeout,
	// or the caller's context ended). The action is refused like any
	// denial, but the refusal says nothing about the action: the same
	// request may be allowed once the room is less loaded.
	Undecided bool
}

// Options configure an Engine.
type Options struct {
	// Defaults are the room's constraints; zero means DefaultConstraints().
	// Collaborations can only tighten them.
	Defaults *Constraints
	// Timeout bounds one evaluation (default 5 s); past it the action is
	// refused, as Undecided. A decision takes about 0.15 ms of CPU, but its wall time
	// includes waiting for a core: with a load average of 30 on 2 cores,
	// a burst of requests waits past 1 s. The bound is there to stop a
	// pathological policy (which every member must have approved), not
	// to shed load.
	Timeout time.Duration
	Now     func() time.Time
	Logger  *slog.Logger
}

// Engine evaluates decisions with OPA, in process. It is safe for
// concurrent use. It prepares the decision query once per distinct policy
// (the default bundle, plus each active collaboration module) and reuses it
// until that policy changes.
type Engine struct {
	opts       Options
	defaults   map[string]any
	activation map[string]any // DefaultActivation, as data.room.activation
	caps       *ast.Capabilities
	bundle     map[string]*ast.Module
	bundleHash string
	log        *slog.Logger

	mu       sync.RWMutex
	prepared map[string]prepared // by policy hash
	active   map[string]string   // collaboration id -> policy hash
	// cache holds the default bundle's constraints for each collaboration
	// state seen (by a digest of its members and settings); see Decide.
	cache map[string]cachedCollab
	// decisions remembers the decisions of pure policies (decisioncache.go);
	// noDecisionCache turns it off, for tests that compare.
	decisions       *decisionCache
	noDecisionCache bool
}

type prepared struct {
	decision, constraints rego.PreparedEvalQuery
	// pure: the policy's decisions depend on its input alone
	// (decisioncache.go).
	pure bool
}

// cachedCollab is a collaboration state already converted for OPA.
type cachedCollab struct {
	settings, constraints ast.Value
}

// maxCache bounds the constraints cache; it is cleared when full (a room
// has far fewer live collaboration states than this).
const maxCache = 4096

// New compiles the embedded default bundle and prepares its query.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := DefaultConstraints()
	if opts.Defaults != nil {
		d = *opts.Defaults
	}
	if err := d.checkCounts(""); err != nil {
		return nil, fmt.Errorf("policy: the room's defaults: %w", err)
	}
	e := &Engine{
		opts:     opts,
		caps:     restrictedCapabilities(),
		bundle:   map[string]*ast.Module{},
		log:      opts.Logger,
		prepared: map[string]prepared{},
		active:   map[string]string{},
		cache:    map[string]cachedCollab{},

		decisions: newDecisionCache(),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if err := toJSONMap(d, &e.defaults); err != nil {
		return nil, err
	}
	if err := toJSONMap(DefaultActivation(), &e.activation); err != nil {
		return nil, err
	}
	h := sha256.New()
	err := fs.WalkDir(bundleFS, "rego", func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || strings.HasSuffix(path, "_test.rego") {
			return err
		}
		src, err := bundleFS.ReadFile(path)
		if err != nil {
			return err
		}
		m, err := ast.ParseModuleWithOpts(path, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return fmt.Errorf("policy: default bundle: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(src))
		h.Write(src)
		e.bundle[path] = m
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.bundleHash = hex.EncodeToString(h.Sum(nil))
	pq, err := e.prepare(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("policy: default bundle: %w", err)
	}
	e.prepared[e.bundleHash] = pq
	return e, nil
}

// BundleHash returns the SHA-256 of the default bundle.
func (e *Engine) BundleHash() string { return e.bundleHash }

// compile compiles the default bundle with an optional collaboration module
// under the restricted capabilities, in strict mode.
func (e *Engine) compile(m *ast.Module) (*ast.Compiler, error) {
	mods := make(map[string]*ast.Module, len(e.bundle)+1)
	for k, v := range e.bundle {
		mods[k] = v
	}
	if m != nil {
		mods[collabModuleFile] = m
	}
	c := ast.NewCompiler().WithCapabilities(e.caps).WithStrict(true)
	c.Compile(mods)
	if c.Failed() {
		return nil, newCompileError(c.Errors)
	}
	return c, nil
}

func (e *Engine) prepare(ctx context.Context, m *ast.Module) (prepared, error) {
	c, err := e.compile(m)
	if err != nil {
		return prepared{}, err
	}
	// The room's defaults are data, not input: converted to OPA's values
	// once here rather than on every decision.
	store := inmem.NewFromObjectWithOpts(map[string]any{"room": map[string]any{"defaults": e.defaults, "activation": e.activation}},
		inmem.OptReturnASTValuesOnRead(true))
	p := prepared{pure: pureRules(c)}
	for _, q := range []struct {
		query string
		out   *rego.PreparedEvalQuery
	}{{decisionQuery, &p.decision}, {constraintsQuery, &p.constraints}} {
		*q.out, err = rego.New(
			rego.Query(q.query),
			rego.Compiler(c),
			rego.Store(store),
			rego.Capabilities(e.caps),
			rego.StrictBuiltinErrors(true),
		).PrepareForEval(ctx)
		if err != nil {
			return prepared{}, err
		}
	}
	return p, nil
}

// SetCollaborationPolicy makes m the active module of collaboration id (nil
// removes it). A module already prepared, by its hash, is reused.
func (e *Engine) SetCollaborationPolicy(ctx context.Context, id string, m *Module) error {
	if m == nil {
		e.mu.Lock()
		delete(e.active, id)
		e.mu.Unlock()
		e.decisions.reset()
		return nil
	}
	e.mu.RLock()
	_, ok := e.prepared[m.Hash]
	e.mu.RUnlock()
	if !ok {
		pq, err := e.prepare(ctx, m.parsed)
		if err != nil {
			return err
		}
		e.mu.Lock()
		e.prepared[m.Hash] = pq
		e.mu.Unlock()
	}
	e.mu.Lock()
	e.active[id] = m.Hash
	e.mu.Unlock()
	// Keys name the policy by its hash, so no decision of another policy
	// could be found; forgetting them all on a change keeps that true
	// without having to argue it.
	e.decisions.reset()
	return nil
}

// Decide evaluates the policy for in. It never fails open: an input it
// cannot encode, an evaluation error or a timeout is a denial with a reason.
//
// Under the default bundle, a collaboration's constraints depend only on its
// members and settings (and the room's defaults), so they are computed once
// per collaboration state and passed in; each decision then evaluates only
// the denial rules. A collaboration module may make its constraints depend
// on anything, so with one active they are computed on every decision.
//
// A decision of a pure policy is remembered, and the same input under the
// same policy within the same second is answered with it without
// evaluating again (decisioncache.go); every decision, remembered or not,
// is returned for the caller to record.
func (e *Engine) Decide(ctx context.Context, in Input) Decision {
	hash := e.bundleHash
	// Revoking is every member's kill switch: the default bundle alone
	// decides it, so no module the members approved can take it away.
	if in.Collaboration != nil && in.Action != ActionCollaborationRevoke {
		e.mu.RLock()
		if h, ok := e.active[in.Collaboration.ID]; ok {
			hash = h
		}
		e.mu.RUnlock()
	}
	deny := func(reason string) Decision {
		return Decision{Reasons: []string{reason}, PolicyHash: hash, BundleHash: e.bundleHash}
	}
	e.mu.RLock()
	pq, ok := e.prepared[hash]
	e.mu.RUnlock()
	if !ok {
		return deny("the collaboration's policy is not loaded; the action is refused")
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	fail := func(what string, err error) Decision {
		if ctx.Err() != nil {
			d := deny("the policy took too long to decide; the action is refused")
			d.Undecided = true
			return d
		}
		// OPA's message may quote input; it goes to the operator's log,
		// not to the caller or the audit log.
		e.log.Error("policy "+what, "action", in.Action, "err", err)
		return deny("the policy could not be evaluated; the action is refused")
	}
	now := e.opts.Now() // read once: the key and the input hold the same second
	var cc cachedCollab
	var state string
	if in.Collaboration != nil {
		var err error
		if cc, state, err = e.collabState(ctx, in.Collaboration, hash, pq); err != nil {
			return fail("input", err)
		}
	}
	cacheable := pq.pure && !e.noDecisionCache
	var key []byte
	if cacheable {
		var err error
		if key, err = e.key(in, hash, now, state); err != nil {
			return fail("input", err)
		}
		if d, ok := e.decisions.get(key); ok {
			return d
		}
	}
	value, err := e.inputValue(in, now, cc)
	if err != nil {
		return fail("input", err)
	}
	rs, err := pq.decision.Eval(ctx, rego.EvalParsedInput(value))
	if err != nil {
		return fail("evaluation", err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return deny("the policy made no decision; the action is refused")
	}
	d, err := decodeDecision(rs[0].Expressions[0].Value)
	if err != nil {
		e.log.Error("policy decision", "action", in.Action, "err", err)
		return deny("the policy's decision is malformed; the action is refused")
	}
	if !d.Allow && len(d.Reasons) == 0 {
		d.Reasons = []string{"the policy denied the action without a reason"}
	}
	d.PolicyHash, d.BundleHash = hash, e.bundleHash
	if cacheable {
		e.decisions.put(key, d)
	}
	return d
}

// inputValue builds the Rego input document directly as OPA values (a JSON
// round trip per decision cost more than the evaluation of most rules), at
// now, with the collaboration's settings and constraints cached (by
// collabState).
func (e *Engine) inputValue(in Input, now time.Time, cached cachedCollab) (ast.Value, error) {
	if in.Principal.Partner == "" && in.Principal.Role == RolePartner {
		in.Principal.Partner = in.Principal.ID // a partner acts for itself
	}
	obj := ast.NewObject(
		ast.Item(ast.InternedTerm("principal"), ast.NewTerm(ast.NewObject(
			ast.Item(ast.InternedTerm("id"), ast.StringTerm(in.Principal.ID)),
			ast.Item(ast.InternedTerm("role"), ast.StringTerm(in.Principal.Role)),
			ast.Item(ast.InternedTerm("partner"), ast.StringTerm(in.Principal.Partner)),
		))),
		ast.Item(ast.InternedTerm("action"), ast.StringTerm(string(in.Action))),
		ast.Item(ast.InternedTerm("now_unix"), ast.InternedTerm(int(now.Unix()))),
		ast.Item(ast.InternedTerm("usage"), ast.NewTerm(ast.NewObject(
			ast.Item(ast.InternedTerm("epsilon_spent"), ast.FloatNumberTerm(in.Usage.EpsilonSpent)),
			ast.Item(ast.InternedTerm("delta_spent"), ast.FloatNumberTerm(in.Usage.DeltaSpent)),
			ast.Item(ast.InternedTerm("queries_today"), ast.InternedTerm(in.Usage.QueriesToday)),
			ast.Item(ast.InternedTerm("matches_today"), ast.InternedTerm(in.Usage.MatchesToday)),
			ast.Item(ast.InternedTerm("uploads_today"), ast.InternedTerm(in.Usage.UploadsToday)),
			ast.Item(ast.InternedTerm("activations_today"), ast.InternedTerm(in.Usage.ActivationsToday)),
			ast.Item(ast.InternedTerm("activations"), ast.InternedTerm(in.Usage.Activations)),
		))),
	)
	if r, err := resourceValue(in.Resource); err != nil {
		return nil, err
	} else if r != nil {
		obj.Insert(ast.InternedTerm("resource"), ast.NewTerm(r))
	}
	if in.Collaboration == nil {
		return obj, nil
	}
	c := in.Collaboration
	datasets := ast.NewObject()
	for m, st := range c.Datasets {
		datasets.Insert(ast.StringTerm(m), ast.NewTerm(ast.NewObject(
			ast.Item(ast.InternedTerm("uploaded"), ast.InternedTerm(st.Uploaded)),
			ast.Item(ast.InternedTerm("matched"), ast.InternedTerm(st.Matched)),
		)))
	}
	co := ast.NewObject(
		ast.Item(ast.InternedTerm("id"), ast.StringTerm(c.ID)),
		ast.Item(ast.InternedTerm("members"), stringsTerm(c.Members)),
		ast.Item(ast.InternedTerm("settings"), ast.NewTerm(cached.settings)),
		ast.Item(ast.InternedTerm("datasets"), ast.NewTerm(datasets)),
		ast.Item(ast.InternedTerm("revoked"), ast.InternedTerm(c.Revoked)),
	)
	if !c.ExpiresAt.IsZero() {
		co.Insert(ast.InternedTerm("expires_unix"), ast.IntNumberTerm(int(c.ExpiresAt.Unix())))
	}
	obj.Insert(ast.InternedTerm("collaboration"), ast.NewTerm(co))
	if cached.constraints != nil {
		obj.Insert(ast.InternedTerm("constraints"), ast.NewTerm(cached.constraints))
	}
	return obj, nil
}

// collabState returns the collaboration's settings as an OPA value and,
// under the default bundle, its constraints, from the cache or computed now,
// with the digest of the state they are a function of (its key).
func (e *Engine) collabState(ctx context.Context, c *Collaboration, hash string, pq prepared) (cachedCollab, string, error) {
	b, err := json.Marshal(struct {
		M []string
		S Settings
	}{c.Members, c.Settings})
	if err != nil {
		return cachedCollab{}, "", err
	}
	sum := sha256.Sum256(b)
	key := hash + string(sum[:])
	e.mu.RLock()
	cc, ok := e.cache[key]
	e.mu.RUnlock()
	if ok {
		return cc, key, nil
	}
	var settings map[string]any
	if err := toJSONMap(c.Settings, &settings); err != nil {
		return cachedCollab{}, "", err
	}
	if cc.settings, err = ast.InterfaceToValue(settings); err != nil {
		return cachedCollab{}, "", err
	}
	if hash != e.bundleHash {
		return cc, key, nil // a module's constraints are computed per decision
	}
	in := ast.NewObject(ast.Item(ast.InternedTerm("collaboration"), ast.NewTerm(ast.NewObject(
		ast.Item(ast.InternedTerm("members"), stringsTerm(c.Members)),
		ast.Item(ast.InternedTerm("settings"), ast.NewTerm(cc.settings)),
	))))
	rs, err := pq.constraints.Eval(ctx, rego.EvalParsedInput(in))
	if err != nil {
		return cachedCollab{}, "", err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return cachedCollab{}, "", errors.New("no constraints")
	}
	if cc.constraints, err = ast.InterfaceToValue(rs[0].Expressions[0].Value); err != nil {
		return cachedCollab{}, "", err
	}
	e.mu.Lock()
	if len(e.cache) >= maxCache {
		clear(e.cache)
	}
	e.cache[key] = cc
	e.mu.Unlock()
	return cc, key, nil
}

func resourceValue(r Resource) (ast.Value, error) {
	switch {
	case r.Query != nil:
		q := r.Query
		return ast.NewObject(ast.Item(ast.InternedTerm("query"), ast.NewTerm(ast.NewObject(
			ast.Item(ast.InternedTerm("metrics"), stringsTerm(q.Metrics)),
			ast.Item(ast.InternedTerm("group_by"), stringsTerm(q.GroupBy)),
			ast.Item(ast.InternedTerm("columns"), stringsTerm(q.Columns)),
			ast.Item(ast.InternedTerm("filter_columns"), stringsTerm(q.FilterColumns)),
			ast.Item(ast.InternedTerm("splits"), stringsTerm(q.Splits)),
			ast.Item(ast.InternedTerm("dimensions"), stringsTerm(q.Dimensions)),
			ast.Item(ast.InternedTerm("epsilon"), ast.FloatNumberTerm(q.Epsilon)),
			ast.Item(ast.InternedTerm("selects_partitions"), ast.InternedTerm(q.SelectsPartitions)),
		)))), nil
	case r.Model != nil:
		m := r.Model
		return ast.NewObject(ast.Item(ast.InternedTerm("model"), ast.NewTerm(ast.NewObject(
			ast.Item(ast.InternedTerm("label"), ast.StringTerm(m.Label)),
			ast.Item(ast.InternedTerm("features"), stringsTerm(m.Features)),
			ast.Item(ast.InternedTerm("dimensions"), stringsTerm(m.Dimensions)),
			ast.Item(ast.InternedTerm("epsilon"), ast.FloatNumberTerm(m.Epsilon)),
		)))), nil
	case r.Activation != nil:
		a := r.Activation
		return ast.NewObject(ast.Item(ast.InternedTerm("activation"), ast.NewTerm(ast.NewObject(
			ast.Item(ast.InternedTerm("filter_columns"), stringsTerm(a.FilterColumns)),
			ast.Item(ast.InternedTerm("dimensions"), stringsTerm(a.Dimensions)),
		)))), nil
	case r.Dataset != nil:
		d := r.Dataset
		return ast.NewObject(ast.Item(ast.InternedTerm("dataset"), ast.NewTerm(ast.NewObject(
			ast.Item(ast.InternedTerm("rows"), ast.IntNumberTerm(int(d.Rows))),
			ast.Item(ast.InternedTerm("distinct"), ast.IntNumberTerm(int(d.Distinct))),
			ast.Item(ast.InternedTerm("difference_from_previous"), ast.IntNumberTerm(int(d.DifferenceFromPrevious))),
		)))), nil
	}
	return nil, nil
}

func stringsTerm(ss []string) *ast.Term {
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(terms...)
}

func toJSONMap(v any, out *map[string]any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(out)
}

// decodeDecision reads the decision object the Rego returns.
func decodeDecision(v any) (Decision, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Decision{}, errors.New("decision is not an object")
	}
	var d Decision
	if d.Allow, ok = m["allow"].(bool); !ok {
		return Decision{}, errors.New("allow is not a boolean")
	}
	var err error
	if d.Reasons, err = stringList(m["reasons"]); err != nil {
		return Decision{}, fmt.Errorf("reasons: %w", err)
	}
	sort.Strings(d.Reasons)
	c, ok := m["constraints"].(map[string]any)
	if !ok {
		return Decision{}, errors.New("constraints is not an object")
	}
	num := func(k string) (float64, error) {
		n, ok := c[k].(json.Number)
		if !ok {
			return 0, fmt.Errorf("constraint %s is not a number", k)
		}
		f, err := n.Float64()
		if err != nil {
			return 0, fmt.Errorf("constraint %s: %w", k, err)
		}
		return f, nil
	}
	for k, dst := range map[string]*float64{
		"epsilon_per_query": &d.Constraints.EpsilonPerQuery, "epsilon_min_per_query": &d.Constraints.EpsilonMinPerQuery,
		"epsilon_budget": &d.Constraints.EpsilonBudget, "epsilon_match": &d.Constraints.EpsilonMatch,
		"delta_per_query": &d.Constraints.DeltaPerQuery, "delta_budget": &d.Constraints.DeltaBudget,
	} {
		if *dst, err = num(k); err != nil {
			return Decision{}, err
		}
	}
	// Counts are read as the integers the policy wrote, never through a
	// float64, whose conversion back to an integer is undefined out of
	// range (2^63 became -2^63 on amd64: a k that switched guards off).
	count := func(k string) (int64, error) {
		n, ok := c[k].(json.Number)
		if !ok {
			return 0, fmt.Errorf("constraint %s is not a number", k)
		}
		i, err := n.Int64()
		if err != nil || i < 0 || i > MaxCount {
			return 0, fmt.Errorf("constraint %s is not a whole number from 0 to %d", k, int64(MaxCount))
		}
		return i, nil
	}
	for k, dst := range map[string]*int64{
		"min_list_size": &d.Constraints.MinListSize, "max_list_size": &d.Constraints.MaxListSize,
		"min_upload_difference": &d.Constraints.MinUploadDifference,
	} {
		if *dst, err = count(k); err != nil {
			return Decision{}, err
		}
	}
	for k, dst := range map[string]*int{
		"min_group_size": &d.Constraints.MinGroupSize, "max_queries_per_day": &d.Constraints.MaxQueriesPerDay,
		"max_matches_per_day": &d.Constraints.MaxMatchesPerDay, "max_uploads_per_day": &d.Constraints.MaxUploadsPerDay,
	} {
		i, err := count(k)
		if err != nil {
			return Decision{}, err
		}
		*dst = int(i)
	}
	for k, dst := range map[string]*[]string{"allowed_dimensions": &d.Constraints.AllowedDimensions,
		"allowed_metrics": &d.Constraints.AllowedMetrics, "never_output_columns": &d.Constraints.NeverOutputColumns} {
		if *dst, err = stringList(c[k]); err != nil {
			return Decision{}, fmt.Errorf("constraint %s: %w", k, err)
		}
	}
	return d, nil
}

func stringList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok && v != nil {
		return nil, errors.New("not a list")
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, errors.New("not a list of strings")
		}
		out = append(out, s)
	}
	return out, nil
}

// restrictedCapabilities are this OPA's built-ins minus those that reach
// outside the evaluation (network, runtime, environment) or make decisions
// irreproducible (clocks, randomness): a policy is a pure function of its
// input. Removing them from the capabilities, rather than marking them
// unsafe, also closes the "with" keyword's way around an unsafe list.
func restrictedCapabilities() *ast.Capabilities {
	banned := map[string]bool{
		"http.send": true, "net.lookup_ip_addr": true, "opa.runtime": true,
		"time.now_ns": true, "rand.intn": true, "uuid.rfc4122": true,
		"trace": true, "print": true, "internal.print": true,
	}
	caps := ast.CapabilitiesForThisVersion()
	kept := caps.Builtins[:0]
	for _, b := range caps.Builtins {
		if !banned[b.Name] {
			kept = append(kept, b)
		}
	}
	caps.Builtins = kept
	caps.AllowNet = []string{} // empty: no host at all
	return caps
}
