package cleanroom

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestCommitBesideMatch: while a match of one collaboration runs (its gate
// held), uploads to another collaboration commit; an upload that would
// replace one of the match's inputs waits for the match to end, then
// commits; and a match waits for a commit of its collaboration.
func TestCommitBesideMatch(t *testing.T) {
	tr := startRoom(t)
	a, b := tr.partner("alpha", policy.RolePartner, ""), tr.partner("bravo", policy.RolePartner, "")
	settings := map[string]any{"noise_off": true}
	busy := tr.collab("busy", api.ModeHashed, settings, a, b)
	free := tr.collab("free", api.ModeHashed, settings, a, b)
	ctx := context.Background()
	list := writeList(t, span(0, 1200))
	if _, err := a.UploadCSV(ctx, uploadSpec("busy", list, busy[a.Principal()])); err != nil {
		t.Fatal(err)
	}

	unlock, err := tr.room.lockForMatch(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	// Another collaboration's commit does not wait.
	done := make(chan error, 1)
	go func() {
		_, err := a.UploadCSV(ctx, uploadSpec("free", list, free[a.Principal()]))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a commit to another collaboration waited for the match")
	}
	// A commit replacing one of the match's inputs waits until it ends.
	var committed atomic.Bool
	go func() {
		_, err := a.UploadCSV(ctx, uploadSpec("busy", writeList(t, span(100, 1300)), busy[a.Principal()]))
		committed.Store(err == nil)
		done <- err
	}()
	waiting := func() bool {
		tr.room.gates.mu.Lock()
		defer tr.room.gates.mu.Unlock()
		g := tr.room.gates.m["collab/busy"]
		return g != nil && g.refs == 2
	}
	for deadline := time.Now().Add(20 * time.Second); !waiting(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) || committed.Load() {
			t.Fatal("the commit never reached the match's gate")
		}
	}
	time.Sleep(100 * time.Millisecond)
	if committed.Load() {
		t.Fatal("a commit replaced a dataset the running match reads")
	}
	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A match waits for a commit of its collaboration; a match whose wait
	// ends with its context is refused with the context's error.
	release, err := tr.room.lockForCommit(ctx, "busy", "alpha")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := tr.room.lockForMatch(short, "busy"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a match passed the gate during a commit: %v", err)
	}
	release()
	if len(tr.room.gates.m) != 0 {
		t.Errorf("gates kept after use: %d", len(tr.room.gates.m))
	}
}

// TestGatesCommitsOfMembers: commits of different members share the gate,
// one member's commits take turns.
func TestGatesCommitsOfMembers(t *testing.T) {
	r := &Room{}
	ctx := context.Background()
	relA, err := r.lockForCommit(ctx, "c", "alpha")
	if err != nil {
		t.Fatal(err)
	}
	relB, err := r.lockForCommit(ctx, "c", "bravo")
	if err != nil {
		t.Fatalf("another member's commit waited: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := r.lockForCommit(short, "c", "alpha"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("two commits of one member ran together: %v", err)
	}
	relA()
	relB()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			rel, err := r.lockForCommit(ctx, "c", "alpha")
			if err == nil {
				rel()
			}
		})
	}
	wg.Wait()
	if len(r.gates.m) != 0 {
		t.Errorf("gates kept after use: %d", len(r.gates.m))
	}
}

// TestCacheLoadsApart: a slow load of one entry holds up neither another
// entry nor the cache, and concurrent gets of one entry load it once.
func TestCacheLoadsApart(t *testing.T) {
	var c columnCache
	slow, started := make(chan struct{}), make(chan struct{})
	var loads atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			it, err := c.get("big", func() (*cacheItem, error) {
				loads.Add(1)
				close(started)
				<-slow
				return &cacheItem{size: 1}, nil
			})
			if err != nil || it == nil {
				t.Error(it, err)
			}
		})
	}
	<-started
	if _, err := c.get("small", func() (*cacheItem, error) { return &cacheItem{size: 1}, nil }); err != nil {
		t.Fatal(err)
	}
	close(slow)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("one entry loaded %d times at once", n)
	}
	if _, err := c.get("big", func() (*cacheItem, error) { t.Error("a cached entry loaded again"); return nil, errors.New("no") }); err != nil {
		t.Fatal(err)
	}
}
