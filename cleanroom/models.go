package cleanroom

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/model"
	"github.com/opencleanroom/cleanroom/policy"
)

// Lookalike models. A member asks the room to train a model that predicts
// a label (any member's column, or a predicate on it) from features of its
// own list, and applies it to its own list on its own machine (package
// cleanroom/model, docs/PRIVACY.md). Training is a release like a query:
// decided by the policy (model.train), charged to the ledger in the
// transaction of its audit entry (its epsilon, one query of the day), its
// spec digested under the collaboration's digest key.

// modelShape checks a model spec's form, fills in its defaults, and says
// what the policy needs to know of it. member is the caller's: the
// features must be its columns, since it applies the model to its list.
func modelShape(c *collabRecord, member string, spec *api.ModelSpec) (*policy.ModelShape, error) {
	if spec.Version != api.ModelSpecVersion {
		return nil, badRequest("the model spec must name version %s", api.ModelSpecVersion)
	}
	if len(spec.Features) == 0 || len(spec.Features) > model.MaxFeatures {
		return nil, badRequest("a model has 1 to %d features", model.MaxFeatures)
	}
	if math.IsNaN(spec.Epsilon) || math.IsInf(spec.Epsilon, 0) || spec.Epsilon < 0 {
		return nil, badRequest("epsilon must be a finite, non-negative number")
	}
	if spec.Epsilon == 0 {
		spec.Epsilon = api.DefaultModelEpsilon
	}
	if spec.Trees == 0 {
		spec.Trees = model.DefaultTrees
	}
	if spec.Depth == 0 {
		spec.Depth = model.DefaultDepth(len(spec.Features))
	}
	if spec.Holdout == nil {
		h := model.DefaultHoldout
		spec.Holdout = &h
	}
	switch {
	case spec.Trees < 1 || spec.Trees > model.MaxTrees:
		return nil, badRequest("a model has 1 to %d trees", model.MaxTrees)
	case spec.Depth < 1 || spec.Depth > model.MaxDepth:
		return nil, badRequest("a model's trees have a depth of 1 to %d", model.MaxDepth)
	case !(*spec.Holdout >= 0 && *spec.Holdout <= 0.5):
		return nil, badRequest("holdout is a share from 0 to 0.5")
	}
	l := spec.Label
	if err := checkColumnName(c, l.Column); err != nil {
		return nil, err
	}
	switch l.Op {
	case "", "eq", "ne", "in", "lt", "le", "gt", "ge":
	default:
		return nil, badRequest("a label is a column, or a column compared with eq, ne, in, lt, le, gt or ge")
	}
	if len(l.Values) > policy.MaxDomainValues {
		return nil, badRequest("a label lists at most %d values", policy.MaxDomainValues)
	}
	for i, f := range spec.Features {
		if err := checkColumnName(c, f); err != nil {
			return nil, err
		}
		if owner, _, _ := strings.Cut(f, "."); owner != member {
			return nil, badRequest("a model's features are columns of your own list (%s.column), to which you apply it", member)
		}
		if slices.Contains(spec.Features[:i], f) {
			return nil, badRequest("a model names each feature once")
		}
	}
	dims := spec.Features
	if !slices.Contains(dims, l.Column) {
		dims = append(slices.Clip(dims), l.Column)
	}
	return &policy.ModelShape{Label: l.Column, Features: spec.Features, Dimensions: dims, Epsilon: spec.Epsilon}, nil
}

// trainModel trains a model on the latest match's people and charges it.
func (r *Room) trainModel(ctx context.Context, who *actor, collab string, spec api.ModelSpec) (*api.ModelResult, error) {
	c, err := r.collabFor(who, collab)
	if err != nil {
		return nil, err
	}
	// The spec is digested as the member sent it, so that the member can
	// check the log's digest against its own file.
	asked, err := json.Marshal(&spec)
	if err != nil {
		return nil, err
	}
	shape, err := modelShape(c, who.partner(), &spec)
	if err != nil {
		return nil, err
	}
	usage, err := r.readBudget(collab)
	if err != nil {
		return nil, err
	}
	a := act{action: policy.ActionModelTrain, collab: c, resource: policy.Resource{Model: shape}, usage: usage.usage(who.partner())}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if err := dataAllowed(c, r.now()); err != nil {
		return nil, err
	}
	if c.Match == nil {
		return nil, conflict("no match has run yet")
	}
	var sampleSeed [32]byte
	if _, err := io.ReadFull(r.rand, sampleSeed[:]); err != nil {
		return nil, fmt.Errorf("cleanroom: drawing a model's sample: %w", err)
	}
	features, data, err := r.modelData(ctx, c, who.partner(), &spec, sampleSeed)
	if err != nil {
		return nil, err
	}
	// What the model spends is what it is charged, to the unit: the
	// trees' share and the accuracy's add up to it.
	ch := charge{query: true, member: who.partner(), epsilon: epsilonUnits(spec.Epsilon)}
	eps := float64(ch.epsilon) / unitsPerEpsilon
	cfg := model.Config{Trees: spec.Trees, Depth: spec.Depth, Holdout: *spec.Holdout, Epsilon: eps,
		MinLeaf: d.Constraints.MinGroupSize, Noise: analytics.Laplace{}}
	if cfg.Holdout > 0 {
		cfg.AccuracyEpsilon = eps * model.DefaultAccuracyShare
		cfg.Epsilon = eps - cfg.AccuracyEpsilon
	}
	if c.Settings.NoiseOff {
		ch.epsilon, cfg.Noise = 0, analytics.Exact{}
	}
	if _, err := io.ReadFull(r.rand, cfg.Seed[:]); err != nil {
		return nil, fmt.Errorf("cleanroom: drawing a model's seed: %w", err)
	}
	m, err := model.Train(ctx, features, data, cfg)
	if err != nil {
		return nil, err
	}
	m.Collaboration, m.Member = c.ID, who.partner()
	m.Label = model.Label{Column: spec.Label.Column, Op: spec.Label.Op, Value: spec.Label.Value, Values: spec.Label.Values}
	if c.Settings.NoiseOff {
		m.Noise, m.Epsilon, m.TreeEpsilon, m.AccuracyEpsilon = false, 0, 0, 0
		eps = 0
	}
	file, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	res := &api.ModelResult{Model: file, Epsilon: eps, Noise: !c.Settings.NoiseOff}
	body, err := api.ResultBody(res)
	if err != nil {
		return nil, err
	}
	digest, err := r.resultDigest(ctx, c.ID, body)
	if err != nil {
		return nil, err
	}
	if a.spent.specDigest, err = r.keyedDigest(c.ID, api.ModelSpecDigestLabel, asked); err != nil {
		return nil, err
	}
	a.spent.epsilonMicro = ch.epsilon
	if res.Budget, err = r.chargeOnJoin(ctx, who, a, d, c, digest, ch); err != nil {
		return nil, err
	}
	return res, nil
}

// keyedDigest is the digest of body under label and the collaboration's
// digest key (api.KeyedDigest), as specDigest is for a query spec.
func (r *Room) keyedDigest(collab, label string, body []byte) (string, error) {
	key, err := r.digestKey(collab)
	if err != nil {
		return "", err
	}
	return api.KeyedDigest(key, label, body), nil
}

// modelData resolves a model spec against the collaboration: each feature
// with its declared domain or bounds, the training sample's values of it
// (as model.Feature.Value reads the member's file), and their labels.
// One plan reads them all, so that each dataset's columns are decoded in
// one pass and stay in hand however few of them the column cache keeps.
//
// The sample (model.Sample, seeded by seed) draws each matched person on
// its own, at the rate that gives about Config.ModelSample people of the
// match's noisy overlap: the rate is post-processing of a figure released
// and charged with the match, never of the exact overlap, so one person
// more or less changes the sample by that person alone.
func (r *Room) modelData(ctx context.Context, c *collabRecord, member string, spec *api.ModelSpec, seed [32]byte) ([]model.Feature, model.Data, error) {
	features := make([]model.Feature, len(spec.Features))
	// The plan resolves columns and filters exactly as a query's: a
	// categorical feature as a grouping, a numeric one as a sum, the
	// label's predicate as a filter, on the same codes; a label without
	// an op as a grouping, read as a flag.
	q := api.QuerySpec{Filters: labelFilter(spec.Label)}
	for i, name := range spec.Features {
		_, column, _ := strings.Cut(name, ".")
		f := model.Feature{Name: name, Column: column}
		if dom, ok := c.Settings.Domains[name]; ok {
			if len(dom) > model.MaxDomain {
				return nil, model.Data{}, badRequest("the feature %s has more than %d declared values: a model splits on at most %d", name, model.MaxDomain, model.MaxDomain)
			}
			f.Kind, f.Domain = model.Categorical, dom
			q.GroupBy = append(q.GroupBy, name)
		} else if b, ok := c.Settings.Bounds[name]; ok {
			f.Kind, f.Bounds = model.Numeric, &b
			q.Metrics = append(q.Metrics, api.Metric{Kind: api.MetricSum, Column: name})
		} else {
			return nil, model.Data{}, badRequest("the feature %s has no declared domain or bounds: a tree splits only on those, never on the data", name)
		}
		features[i] = f
	}
	if spec.Label.Op == "" {
		q.GroupBy = append(q.GroupBy, spec.Label.Column)
	}
	p, err := r.plan(c, q, 1, 0, 0)
	if err != nil {
		return nil, model.Data{}, err
	}
	// A match recorded before the room kept its noisy overlap trains on
	// everyone.
	rate := 1.0
	if c.Match.Noisy > 0 {
		rate = model.SampleRate(r.modelSample(), c.Match.Noisy)
	}
	// The plan's columns are in the join's order (Room.plan): every
	// member's column is read at the picked people's places in the join.
	picked := model.Sample(p.Table.Len(), rate, seed)
	people := make([]uint32, len(picked))
	for j, i := range picked {
		people[j] = uint32(i)
	}
	rows := make([][]uint32, len(p.Table.Rows))
	for m := range rows {
		rows[m] = people
	}
	n := len(rows[0])
	mi := slices.Index(c.Members, member)
	d := model.Data{Values: make([][]float64, len(features)), Label: make([]bool, n)}
	var groups, sums int
	for i, f := range features {
		if f.Kind == model.Numeric {
			// A numeric feature is a bounded column, read as an aggregate
			// reads it, which is as f.Value reads a value.
			d.Values[i] = p.Metrics[sums].Column.Values(rows[mi])
			sums++
			continue
		}
		col := p.GroupBy[groups].Col
		groups++
		perCode := make([]float64, len(col.Dict))
		for code, v := range col.Dict {
			perCode[code] = f.Value(v)
		}
		vals := make([]float64, n)
		for j, row := range rows[mi] {
			vals[j] = perCode[col.Codes[row]]
		}
		d.Values[i] = vals
	}
	if err := ctx.Err(); err != nil {
		return nil, model.Data{}, err
	}
	if len(p.Filters) == 1 {
		lf := p.Filters[0]
		d.Label = lf.Kept(rows[lf.Member])
		return features, d, nil
	}
	col := p.GroupBy[groups].Col
	li := slices.Index(c.Members, strings.SplitN(spec.Label.Column, ".", 2)[0])
	for j, row := range rows[li] {
		d.Label[j] = col.Truthy(int(col.Codes[row]))
	}
	return features, d, nil
}

// modelSample is how many people a model trains on, on average, at most;
// 0 for all of them.
func (r *Room) modelSample() int {
	switch s := r.cfg.ModelSample; {
	case s == 0:
		return model.DefaultSample
	case s < 0:
		return 0
	default:
		return s
	}
}

// labelFilter is a label with an op as the query filter it is.
func labelFilter(l api.Filter) []api.Filter {
	if l.Op == "" {
		return nil
	}
	return []api.Filter{l}
}
