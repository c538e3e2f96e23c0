package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
	"golang.org/x/sync/errgroup"
)

// SyncReport says what Sync did.
type SyncReport struct {
	Tasks    int   `json:"tasks"`
	Elements int64 `json:"elements"`
	Ready    bool  `json:"ready"` // every member's set carries every key
	// Waiting is what the collaboration still waits for, as of the last
	// look at it (empty when it is ready).
	Waiting []Pending `json:"waiting,omitempty"`
}

// SyncOptions tune SyncWith.
type SyncOptions struct {
	// Wait keeps Sync going until every member's set carries every
	// member's key (or ctx ends), looking again every Interval (default
	// one second).
	Wait     bool
	Interval time.Duration
	// Status, if set, is called with what the collaboration waits for
	// each time Sync waits.
	Status func([]Pending)
}

// Sync re-encrypts, with this partner's key, every set the room relays to
// it. With wait, it keeps going until every member's set carries every
// member's key (or ctx ends), polling every interval.
func (c *Client) Sync(ctx context.Context, collab string, wait bool, interval time.Duration) (*SyncReport, error) {
	return c.SyncWith(ctx, collab, SyncOptions{Wait: wait, Interval: interval})
}

// SyncError is the error of a Sync that stopped before it was done. Report
// says what it did until then and what the collaboration waited for when it
// last looked (empty if it never did). If ctx ended, Err wraps ctx's cause
// and says what the collaboration was waiting for.
type SyncError struct {
	Report SyncReport
	Err    error
}

func (e *SyncError) Error() string { return e.Err.Error() }
func (e *SyncError) Unwrap() error { return e.Err }

// SyncWith is Sync with its options. Its error is a *SyncError.
func (c *Client) SyncWith(ctx context.Context, collab string, opts SyncOptions) (*SyncReport, error) {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	rep := &SyncReport{}
	if err := c.sync(ctx, collab, opts, rep); err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
			if len(rep.Waiting) > 0 {
				err = fmt.Errorf("client: still %s: %w", Waiting(rep.Waiting), err)
			}
		}
		return nil, &SyncError{Report: *rep, Err: err}
	}
	return rep, nil
}

// sync re-encrypts what the room relays to this partner, then looks at the
// collaboration, until it is ready or, without opts.Wait, once.
func (c *Client) sync(ctx context.Context, collab string, opts SyncOptions, rep *SyncReport) error {
	bk := c.BlindingKey(collab)
	for {
		tasks, err := c.reencryptTasks(ctx, bk, collab, rep)
		if err != nil {
			return err
		}
		v, err := c.Collaboration(ctx, collab)
		if err != nil {
			return err
		}
		rep.Ready = len(v.Datasets) == len(v.Members)
		for _, d := range v.Datasets {
			rep.Ready = rep.Ready && d.Ready
		}
		rep.Waiting = PendingSteps(v)
		if rep.Ready || !opts.Wait {
			return nil
		}
		if v.Revoked {
			return errors.New("client: the collaboration was revoked")
		}
		if d := v.Datasets[c.Principal()]; d != nil && d.RelayRefused != "" {
			return fmt.Errorf("client: %s's re-encryption of your set failed the room's checks, so the room stopped relaying it: upload your list again", d.RelayRefused)
		}
		if tasks > 0 {
			continue // more may have come while these were done
		}
		if opts.Status != nil {
			opts.Status(rep.Waiting)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(opts.Interval):
		}
	}
}

// reencryptTasks does every relay task the room has for this partner now,
// counting them in rep, and returns how many there were.
func (c *Client) reencryptTasks(ctx context.Context, bk *crypto.BlindingKey, collab string, rep *SyncReport) (int, error) {
	var tasks []api.Task
	if err := c.do(ctx, "GET", "/v1/collaborations/"+esc(collab)+"/tasks", nil, &tasks); err != nil {
		return 0, err
	}
	for _, t := range tasks {
		done := map[int]bool{}
		for _, p := range t.Done {
			done[p] = true
		}
		var todo []int
		for p := range t.Parts {
			if !done[p] {
				todo = append(todo, p)
			}
		}
		n, err := c.reencryptTask(ctx, bk, collab, t.ID, todo)
		rep.Elements += n
		if err != nil {
			return 0, err
		}
		rep.Tasks++
	}
	return len(tasks), nil
}

// reencryptTask re-encrypts the given parts of a relay task. The next part
// downloads and the last one uploads while this one is re-encrypted, so the
// partner's cores are not idle while the room checks what it was sent (a
// part of 65,536 elements is tens of milliseconds of the room's time).
// It returns how many elements the room accepted.
func (c *Client) reencryptTask(ctx context.Context, bk *crypto.BlindingKey, collab, task string, parts []int) (int64, error) {
	path := func(p int) string {
		return fmt.Sprintf("/v1/collaborations/%s/tasks/%s/parts/%d", esc(collab), esc(task), p)
	}
	fetched, encrypted := make(chan relayPart), make(chan relayPart)
	var accepted atomic.Int64
	// Three stages at once: download the next part, re-encrypt this one,
	// upload the last. The first error cancels ctx; the stages drain.
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(fetched)
		return c.fetchParts(ctx, path, parts, fetched)
	})
	g.Go(func() error {
		defer close(encrypted)
		return reencryptParts(ctx, bk, fetched, encrypted)
	})
	g.Go(func() error { return c.putParts(ctx, path, encrypted, &accepted) })
	err := g.Wait()
	return accepted.Load(), err
}

// relayPart is one part of a relay task: its number and elements.
type relayPart struct {
	n int
	b []byte
}

// fetchParts downloads the parts, in order, into out; it stops when ctx
// ends.
func (c *Client) fetchParts(ctx context.Context, path func(int) string, parts []int, out chan<- relayPart) error {
	for _, p := range parts {
		var buf bytes.Buffer
		if err := c.do(ctx, "GET", path(p), nil, &buf); err != nil {
			return err
		}
		select {
		case out <- relayPart{p, buf.Bytes()}:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// reencryptParts re-encrypts the parts from in, in place, into out.
func reencryptParts(ctx context.Context, bk *crypto.BlindingKey, in <-chan relayPart, out chan<- relayPart) error {
	for p := range in {
		if err := reencryptInPlace(ctx, bk, p.n, p.b); err != nil {
			for range in {
				// The downloader stops at ctx.Done; let it.
			}
			return err
		}
		select {
		case out <- p:
		case <-ctx.Done():
		}
	}
	return nil
}

// putParts uploads the re-encrypted parts from in, counting the elements
// the room accepts. After an error it drains in.
func (c *Client) putParts(ctx context.Context, path func(int) string, in <-chan relayPart, accepted *atomic.Int64) error {
	var err error
	for p := range in {
		if err != nil || ctx.Err() != nil {
			continue // drain: an error has been recorded
		}
		if err = c.call(ctx, "PUT", path(p.n), bytes.NewReader(p.b), "application/octet-stream", nil, true); err == nil {
			accepted.Add(int64(len(p.b) / api.TokenSize))
		}
	}
	return err
}

// reencryptInPlace re-encrypts part n of a relay task, as the room sent it.
func reencryptInPlace(ctx context.Context, bk *crypto.BlindingKey, n int, b []byte) error {
	if len(b)%api.TokenSize != 0 {
		return fmt.Errorf("client: the room sent part %d of a relay task with a partial element", n)
	}
	// Each element is validated as it is decoded.
	if err := bk.ReencryptBytes(ctx, b, b); err != nil {
		return fmt.Errorf("client: the room sent an invalid element in part %d: %w", n, err)
	}
	return nil
}
