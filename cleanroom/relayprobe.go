package cleanroom

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/matcher"
)

// Relay probes: the room's spot checks of a member's re-encryption.
//
// Nothing in PAIR proves that a member's answer to a relay task is its key
// times what it was sent. A member that answered some elements with others
// of its choosing would change the other member's set, and with it the
// overlap and every answer about it, unseen unless one of the few canaries
// was among them. So the room hides probes among the elements it offers:
// each is one of the set's canary elements times a fresh scalar of the
// room's (s·C), which, to a member that knows neither s nor which elements
// are canaries, is an element like any other (DDH). The answer to a probe
// must be s times the answer to its canary (k·s·C = s·(k·C)), whatever key
// the member holds. A member that changes a share f of its answers passes
// all of them with a probability of about (1-f)^relayProbes: 0.12% at
// f = 10%, 53% at f = 1%. The probes cost the room two group operations
// each and the member as many elements more to re-encrypt; a batched
// zero-knowledge proof of the whole answer (DLEQ) would cost two for every
// element, doubling the relay's work.

// relayProbes is how many probes a relay task hides.
const relayProbes = 64

// relayProbe is one probe of a task: Scalar times the task's canary
// element Canary, at the row after the canaries' numbered by its place in
// the task's list. Both stay in the room.
type relayProbe struct {
	Canary int    `json:"canary"`
	Scalar []byte `json:"scalar"`
}

// errProbeMismatch: a member's answers are not one key applied to every
// element it was sent.
var errProbeMismatch = errors.New("cleanroom: a relay answer fails the room's probes")

// addProbes appends probes to all, the pairs of a set about to be offered:
// its dataRows rows and, from row dataRows on, its canaries. It returns
// the pairs and the probes, none where the set has no canaries.
func addProbes(all []matcher.Pair, dataRows int64, canaries int, rng *mrand.Rand) ([]matcher.Pair, []relayProbe, error) {
	n := min(int64(relayProbes), math.MaxUint32-dataRows-int64(canaries))
	if canaries == 0 || n <= 0 {
		return all, nil, nil
	}
	canary := make([]crypto.Element, canaries)
	found := 0
	for _, p := range all {
		if i := int64(p.Row) - dataRows; i >= 0 && i < int64(canaries) {
			e, err := crypto.DecodeElement(p.Token[:])
			if err != nil {
				return nil, nil, fmt.Errorf("cleanroom: canary %d of the set: %w", i, err)
			}
			canary[i] = e
			found++
		}
	}
	if found != canaries {
		return nil, nil, fmt.Errorf("cleanroom: the set holds %d of its %d canaries", found, canaries)
	}
	probes := make([]relayProbe, n)
	for j := range probes {
		s, err := crypto.GenerateBlindingKey(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		c := rng.IntN(canaries)
		e, err := s.Reencrypt(canary[c])
		if err != nil {
			return nil, nil, err
		}
		all = append(all, matcher.Pair{Row: uint32(dataRows) + uint32(canaries) + uint32(j), Token: e.Bytes()})
		probes[j] = relayProbe{Canary: c, Scalar: s.Bytes()}
	}
	return all, probes, nil
}

// checkProbes checks every probe of task t whose answer and whose canary's
// answer have both been stored (store.TaskCanaries: the canaries' answers
// by canary number, then the probes'), unmasked. It returns
// errProbeMismatch if one is not its scalar times its canary's.
func (r *Room) checkProbes(t *taskRecord) error {
	if len(t.Probes) == 0 {
		return nil
	}
	answers := make([][]byte, t.Canaries+len(t.Probes))
	err := r.db.View(func(txn *badger.Txn) error {
		for p := range t.Parts {
			err := store.ReadSegment(txn, store.TaskCanaries(t.ID).Key(p), func(b []byte) error {
				return store.EachPair(b, func(elem []byte, i uint32) {
					if int(i) < len(answers) {
						answers[i] = append([]byte(nil), elem...)
					}
				})
			})
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue // not answered yet
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for j, p := range t.Probes {
		c, got := answers[p.Canary], answers[t.Canaries+j]
		if c == nil || got == nil {
			continue
		}
		s, err := crypto.NewBlindingKey(p.Scalar)
		if err != nil {
			return fmt.Errorf("cleanroom: relay task %s probe %d: %w", t.ID, j, err)
		}
		ce, err := crypto.DecodeElement(c)
		if err != nil {
			return fmt.Errorf("cleanroom: relay task %s canary %d: %w", t.ID, p.Canary, err)
		}
		want, err := s.Reencrypt(ce)
		if err != nil {
			return err
		}
		if want.Bytes() != [crypto.ElementSize]byte(got) {
			return errProbeMismatch
		}
	}
	return nil
}
