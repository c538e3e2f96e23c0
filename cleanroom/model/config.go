package model

// Defaults of training, for a spec that leaves them out.
const (
	// DefaultTrees is the forest's size. Each tree gets Epsilon/Trees:
	// more trees average away the randomness of their structure but make
	// every count noisier; Jagannathan et al. find ten a good balance.
	DefaultTrees = 10
	// DefaultHoldout is the share of people held out to measure accuracy.
	DefaultHoldout = 0.2
	// DefaultAccuracyShare is the share of a model's epsilon its accuracy
	// spends.
	DefaultAccuracyShare = 0.1
)

// DefaultDepth is the depth of the trees for this many features: half of
// them, rounded up, as Jagannathan et al. recommend (a tree that may split
// on every feature spreads the people over too many leaves for their noisy
// counts), and at least two.
func DefaultDepth(features int) int {
	return min(MaxDepth, max(2, (features+1)/2))
}

// DefaultConfig is a training configuration of the defaults for a model
// of this many features, epsilon in all (its accuracy share included),
// min leaf k and noise. Its seed is zero: set one.
func DefaultConfig(features int, epsilon float64, k int, noise Noise) Config {
	return Config{
		Trees: DefaultTrees, Depth: DefaultDepth(features), Holdout: DefaultHoldout,
		Epsilon: epsilon * (1 - DefaultAccuracyShare), AccuracyEpsilon: epsilon * DefaultAccuracyShare,
		MinLeaf: k, Noise: noise,
	}
}
