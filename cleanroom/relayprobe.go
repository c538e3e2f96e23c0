package cleanroom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/crypto"
)

// Relay probes: the room's spot checks of a member's re-encryption.
//
// Nothing in PAIR proves that a member's answer to a relay task is its key
// times what it was sent. A member that answered some elements with others
// of its choosing (the sum of elements it was sent, multiples of one)
// would change the other member's set, and with it the overlap and every
// answer about it, unseen unless one of the few canaries was among them;
// and the room's mask commutes with sums and multiples. So the room hides
// probes among the elements it offers. They grow from the set's canary
// elements in rounds, each with a fresh scalar of the room's: round r makes
// s_r·X for the first elements X of the canaries and the probes made
// before it, so their number doubles each round. To a member that knows
// neither the scalars nor which elements are canaries, a probe is an
// element like any other (DDH). The answer to a probe must be s_r times the
// answer to its base (k·s·X = s·(k·X)), whatever key the member holds.
//
// The room checks them when the last part of a task arrives, and an answer
// that fails closes the task (answerPart): one try a set, so the refusal
// cannot be used, try after try, to find where the probes are. A member
// that changes t of a set's n elements passes with a probability of about
// (1 - p/(n+p))^t for p probes: the probes are a quarter as many as the
// set's rows, at least 64, so (4/5)^t on a large set: 11% at t = 10, 51%
// at t = 3. This is a spot check, not a proof: a change of a few elements
// passes often. What the member can put there is bounded by what it can
// compute: it cannot tell which elements belong to whom (the masks, each
// element offered once, so repeats mark nothing as data), and any sum of
// what it was sent takes in probes it cannot find, so it cannot plant an
// element that matches one of its own: a change corrupts the set without
// aiming at a person.
// A batched zero-knowledge proof of the whole answer (DLEQ over a random
// combination of the elements) would leave nothing unchecked, at two
// multi-scalar multiplications of the whole set on each side, more than the
// re-encryption itself costs. The probes cost the member a quarter more
// elements and the room two vectorized multiplications a probe: at 1M rows
// a member, the blinded demo takes 17-18 s with them, 13-15 s without
// (docs/PERFORMANCE.md).

// minProbes is the fewest probes a task hides; probeShare the share of a
// set's rows it hides as probes beyond that (one in probeShare).
const (
	minProbes  = 64
	probeShare = 4
)

// errProbeMismatch: a member's answers are not one key applied to every
// element it was sent.
var errProbeMismatch = errors.New("cleanroom: a relay answer fails the room's probes")

// probeCount is how many probes a task of a set of dataRows rows and
// canaries canaries hides: none without canaries, and never so many that a
// row number would not fit in 32 bits.
func probeCount(dataRows int64, canaries int) int {
	if canaries == 0 {
		return 0
	}
	n := max(int64(minProbes), (dataRows+probeShare-1)/probeShare)
	return int(max(0, min(n, math.MaxUint32-dataRows-int64(canaries))))
}

// probeRound is one round of a task's probes: nodes [from, from+n) are
// scalar times nodes [0, n), where nodes are the canaries (in the order of
// their numbers) followed by the probes.
type probeRound struct {
	scalar  *crypto.BlindingKey
	from, n int
}

// probeRounds derives the rounds of count probes over canaries canaries
// from seed, which the room keeps secret with the task.
func probeRounds(seed []byte, canaries, count int) ([]probeRound, error) {
	if len(seed) != 32 {
		return nil, fmt.Errorf("cleanroom: a probe seed of %d bytes", len(seed))
	}
	rng := mrand.NewChaCha8([32]byte(seed))
	var rounds []probeRound
	for nodes := canaries; nodes < canaries+count; {
		s, err := crypto.GenerateBlindingKey(rng)
		if err != nil {
			return nil, err
		}
		n := min(nodes, canaries+count-nodes)
		rounds = append(rounds, probeRound{scalar: s, from: nodes, n: n})
		nodes += n
	}
	return rounds, nil
}

// makeProbes returns the encodings of count probes grown from canary, the
// set's canary elements as offered (32-byte encodings in canary order).
func makeProbes(ctx context.Context, seed []byte, canary []byte, count int) ([]byte, error) {
	canaries := len(canary) / api.TokenSize
	rounds, err := probeRounds(seed, canaries, count)
	if err != nil {
		return nil, err
	}
	nodes := make([]byte, (canaries+count)*api.TokenSize)
	copy(nodes, canary)
	for _, r := range rounds {
		src := nodes[:r.n*api.TokenSize]
		dst := nodes[r.from*api.TokenSize : (r.from+r.n)*api.TokenSize]
		if err := r.scalar.ReencryptBytes(ctx, dst, src); err != nil {
			return nil, err
		}
	}
	return nodes[canaries*api.TokenSize:], nil
}

// checkProbes checks every probe of task t against the answers of every
// part: those stored (store.TaskCanaries) and, for part, canary (pairs of
// an answer and its node number), all unmasked. It returns
// errProbeMismatch if an answer is missing or is not its round's scalar
// times its base's.
func (r *Room) checkProbes(ctx context.Context, t *taskRecord, part int, canary []byte) error {
	if t.ProbeCount == 0 {
		return nil
	}
	nodes := t.Canaries + t.ProbeCount
	answers := make([]byte, nodes*api.TokenSize)
	have := make([]bool, nodes)
	keep := func(elem []byte, i uint32) {
		if int(i) < nodes {
			copy(answers[int(i)*api.TokenSize:], elem)
			have[i] = true
		}
	}
	err := r.db.View(func(txn *badger.Txn) error {
		for p := range t.Parts {
			if p == part {
				continue
			}
			if err := store.ReadSegment(txn, store.TaskCanaries(t.ID).Key(p), func(b []byte) error {
				return store.EachPair(b, keep)
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := store.EachPair(canary, keep); err != nil {
		return err
	}
	for _, h := range have {
		if !h {
			return errProbeMismatch
		}
	}
	rounds, err := probeRounds(t.ProbeSeed, t.Canaries, t.ProbeCount)
	if err != nil {
		return err
	}
	for _, rd := range rounds {
		want := make([]byte, rd.n*api.TokenSize)
		if err := rd.scalar.ReencryptBytes(ctx, want, answers[:rd.n*api.TokenSize]); err != nil {
			return errProbeMismatch // an answer the room cannot multiply is not a faithful one
		}
		if !bytes.Equal(want, answers[rd.from*api.TokenSize:(rd.from+rd.n)*api.TokenSize]) {
			return errProbeMismatch
		}
	}
	return nil
}
