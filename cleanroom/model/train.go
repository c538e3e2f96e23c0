package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// Noise adds noise to a count to which each person adds at most one:
// analytics.Laplace (Google's differential-privacy library) in the room,
// analytics.Exact when a collaboration turned noise off.
type Noise interface {
	Count(x int64, epsilon float64) int64
}

// Data is what a model is trained on: one entry per person.
type Data struct {
	// Values[f][i] is person i's value of feature f, as Feature.Value
	// gives it: a categorical value's index in the domain (-1 outside
	// it), a numeric value clamped to the bounds.
	Values [][]float64
	Label  []bool
}

// Config says how to train.
type Config struct {
	Trees, Depth int
	// Epsilon is the trees' (all of them: each gets Epsilon/Trees, since
	// they compose sequentially); AccuracyEpsilon the held-out accuracy's.
	Epsilon, AccuracyEpsilon float64
	// Holdout is the share of people held out of training to measure the
	// accuracy (0: none, and no accuracy).
	Holdout float64
	// MinLeaf is the least noisy total of a node the model holds (k).
	MinLeaf int
	Noise   Noise
	// Seed seeds the trees' structure and who is held out: the room draws
	// it at random for every model.
	Seed [32]byte
}

// ErrConfig is wrapped by Train's errors about its arguments.
var ErrConfig = errors.New("model: invalid training")

// checkEvery is how many people a worker routes between looks at its
// context.
const checkEvery = 1 << 16

// Train trains a forest of random decision trees on d under differential
// privacy (see the package documentation): the structure of every tree is
// drawn from the features and the seed, each tree's node counts get noise
// at Epsilon/Trees, and, with a holdout, the accuracy at AccuracyEpsilon.
// The model it returns names no collaboration, member or label: the
// caller fills them in.
func Train(ctx context.Context, features []Feature, d Data, cfg Config) (*Model, error) {
	if err := checkTraining(features, d, cfg); err != nil {
		return nil, err
	}
	m := &Model{Format: Format, Method: Method, Features: features, Depth: cfg.Depth, MinLeaf: cfg.MinLeaf,
		TreeEpsilon: cfg.Epsilon / float64(cfg.Trees), Holdout: cfg.Holdout, Noise: true}
	rng := rand.New(rand.NewChaCha8(cfg.Seed))
	trees := make([][]Node, cfg.Trees)
	for t := range trees {
		trees[t] = grow(features, cfg.Depth, rng)
	}
	n := len(d.Label)
	var held []bool
	if cfg.Holdout > 0 {
		// Each person is held out by a draw of its own, independent of
		// everyone else's: who trains does not depend on who else is there.
		held = make([]bool, n)
		for i := range held {
			held[i] = rng.Float64() < cfg.Holdout
		}
	}
	// Each tree routes every training person to one node; the trees are
	// counted on all cores.
	counts := make([][][2]int64, cfg.Trees)
	var wg sync.WaitGroup
	next := make(chan int, cfg.Trees)
	for t := range cfg.Trees {
		next <- t
	}
	close(next)
	for range min(runtime.GOMAXPROCS(0), cfg.Trees) {
		wg.Go(func() {
			for t := range next {
				counts[t] = countTree(ctx, features, trees[t], d, held)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for t := range trees {
		if tr, ok := release(trees[t], counts[t], features, m.TreeEpsilon, cfg); ok {
			m.Trees = append(m.Trees, tr)
		} else {
			m.TreesWithheld++
		}
	}
	m.Epsilon = cfg.Epsilon
	if cfg.Holdout > 0 {
		m.AccuracyEpsilon = cfg.AccuracyEpsilon
		m.Epsilon += cfg.AccuracyEpsilon
		m.Accuracy = accuracy(m, d, held, cfg)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("model: trained an invalid model: %w", err)
	}
	return m, nil
}

func checkTraining(features []Feature, d Data, cfg Config) error {
	switch {
	case len(features) == 0 || len(features) > MaxFeatures || len(d.Values) != len(features):
		return fmt.Errorf("%w: 1 to %d features, each with its values", ErrConfig, MaxFeatures)
	case cfg.Trees < 1 || cfg.Trees > MaxTrees || cfg.Depth < 1 || cfg.Depth > MaxDepth:
		return fmt.Errorf("%w: 1 to %d trees of depth 1 to %d", ErrConfig, MaxTrees, MaxDepth)
	case !(cfg.Epsilon > 0) || math.IsInf(cfg.Epsilon, 0) || cfg.Noise == nil:
		return fmt.Errorf("%w: the trees need a finite, positive epsilon and noise", ErrConfig)
	case !(cfg.Holdout >= 0 && cfg.Holdout <= 0.5):
		return fmt.Errorf("%w: the holdout is a share from 0 to 0.5", ErrConfig)
	case cfg.Holdout > 0 && (!(cfg.AccuracyEpsilon > 0) || math.IsInf(cfg.AccuracyEpsilon, 0)):
		return fmt.Errorf("%w: a holdout needs a finite, positive accuracy epsilon", ErrConfig)
	case cfg.MinLeaf < 1:
		return fmt.Errorf("%w: min leaf is at least 1", ErrConfig)
	}
	for f := range features {
		if err := features[f].check(); err != nil {
			return fmt.Errorf("%w: feature %d: %v", ErrConfig, f+1, err)
		}
		if len(d.Values[f]) != len(d.Label) {
			return fmt.Errorf("%w: every feature has a value for every person", ErrConfig)
		}
	}
	return nil
}

// countTree counts, at each node of a tree, the training people whose
// path stops there, by label.
func countTree(ctx context.Context, features []Feature, nodes []Node, d Data, held []bool) [][2]int64 {
	counts := make([][2]int64, len(nodes))
	m := &Model{Features: features}
	t := &Tree{Nodes: nodes}
	var i int
	x := func(f int) float64 { return d.Values[f][i] }
	for i = range d.Label {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return nil
		}
		if held != nil && held[i] {
			continue
		}
		l := 0
		if d.Label[i] {
			l = 1
		}
		counts[m.reach(t, x)][l]++
	}
	return counts
}
