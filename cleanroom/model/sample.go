package model

import "math/rand/v2"

// DefaultSample is the number of matched people a model trains on, on
// average, when there are more (the room's Config.ModelSample overrides
// it). Training's time and memory grow with it, not with the lists: a
// model of a 50M-person overlap costs what one of a million costs. A
// million is far past where the noise stops mattering: at the default
// epsilon a tree's count carries Laplace noise of scale about 22, against
// tens of thousands of people in a node of the default depth.
const DefaultSample = 1_000_000

// SampleRate is the probability with which each person is drawn for
// training so that, among about people people, about max are: max/people,
// or 1 when there are no more than max (or max is not positive: no
// sampling). people must not depend on anyone's data except through
// noise already charged (see Sample).
func SampleRate(max int, people int64) float64 {
	if max <= 0 || people <= int64(max) {
		return 1
	}
	return float64(max) / float64(people)
}

// Sample returns, in order, the indexes among 0..n-1 of the people drawn
// for training: each with probability rate, by a draw of its own from a
// ChaCha8 stream of seed, independent of every other person's.
//
// Why this keeps the model's guarantee, without amplification claimed:
// with rate fixed before anyone's data is read (or derived from a value
// already released under noise, whose epsilon was charged then: its use
// here is post-processing), adding or removing one person changes the
// sample by at most that person, whatever the others' draws. So a
// training that is ε-DP on its input is ε-DP on the whole list, and the
// room charges the model's full ε. A sample of a fixed size would not do:
// one person more would push another out, and two counts would change.
// Sampling does make the model more private than that (privacy
// amplification by subsampling), but the room neither claims nor spends
// the difference. The number drawn is binomial: about rate·n, within a
// few of its square root.
func Sample(n int, rate float64, seed [32]byte) []int {
	if rate >= 1 {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	rng := rand.New(rand.NewChaCha8(seed))
	out := make([]int, 0, int(rate*float64(n)*1.01)+64)
	for i := range n {
		if rng.Float64() < rate {
			out = append(out, i)
		}
	}
	return out
}
