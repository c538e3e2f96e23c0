package cleanroom

import (
	"context"
	"sync"

	"golang.org/x/sync/semaphore"
)

// What may run at the same time as a match. A match reads every member's
// dataset of one collaboration, so it excludes the commits that would
// replace one of them (and delete what it reads), and nothing else: uploads
// to other collaborations commit while it runs. Commits of one member are
// serialized (each compares the new list with the member's previous one,
// which the other would replace); commits of different members are not.
//
// Memory is shared by weight: Config.MatchMemory bounds the matcher's
// memory across the room, a match taking matchShare of it and an upload's
// comparison compareShare, so one match and one comparison, or four
// comparisons, run together, and two matches never do.
const (
	matchShare   = 3 // quarters of MatchMemory
	compareShare = 1

	// gateWidth is the weight of a collaboration's gate: a match takes all
	// of it, a commit one.
	gateWidth = 1 << 20
)

// gates hands out weighted semaphores by key, keeping each only while
// someone holds or waits for it.
type gates struct {
	mu sync.Mutex
	m  map[string]*gate
}

type gate struct {
	sem  *semaphore.Weighted
	refs int
}

// acquire takes n of key's gate (of width gateWidth), waiting until ctx
// ends; release gives it back.
func (g *gates) acquire(ctx context.Context, key string, n int64) (release func(), err error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = map[string]*gate{}
	}
	e := g.m[key]
	if e == nil {
		e = &gate{sem: semaphore.NewWeighted(gateWidth)}
		g.m[key] = e
	}
	e.refs++
	g.mu.Unlock()
	done := func() {
		g.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(g.m, key)
		}
		g.mu.Unlock()
	}
	if err := e.sem.Acquire(ctx, n); err != nil {
		done()
		return nil, err
	}
	return func() { e.sem.Release(n); done() }, nil
}

// matchMemory returns the matcher memory of a share (in quarters of
// MatchMemory), and takes it from the room's, waiting until ctx ends.
func (r *Room) matchMemory(ctx context.Context, quarters int64) (budget int64, release func(), err error) {
	budget = max(r.cfg.MatchMemory*quarters/4, 1)
	if err := r.matchMem.Acquire(ctx, quarters); err != nil {
		return 0, nil, err
	}
	return budget, func() { r.matchMem.Release(quarters) }, nil
}

// lockForMatch excludes every commit to the collaboration until release.
func (r *Room) lockForMatch(ctx context.Context, collab string) (release func(), err error) {
	return r.gates.acquire(ctx, "collab/"+collab, gateWidth)
}

// lockForCommit excludes a match of the collaboration and the member's other
// commits until release.
func (r *Room) lockForCommit(ctx context.Context, collab, member string) (release func(), err error) {
	shared, err := r.gates.acquire(ctx, "collab/"+collab, 1)
	if err != nil {
		return nil, err
	}
	own, err := r.gates.acquire(ctx, "member/"+collab+"/"+member, gateWidth)
	if err != nil {
		shared()
		return nil, err
	}
	return func() { own(); shared() }, nil
}
