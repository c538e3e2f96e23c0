package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// SyncReport says what Sync did.
type SyncReport struct {
	Tasks    int   `json:"tasks"`
	Elements int64 `json:"elements"`
	Ready    bool  `json:"ready"` // every member's set carries every key
}

// Sync re-encrypts, with this partner's key, every set the room relays to
// it. With wait, it keeps going until every member's set carries every
// member's key (or ctx ends), polling every interval.
func (c *Client) Sync(ctx context.Context, collab string, wait bool, interval time.Duration) (*SyncReport, error) {
	rep := &SyncReport{}
	bk := c.key.BlindingKey()
	for {
		var tasks []api.Task
		if err := c.do(ctx, "GET", "/v1/collaborations/"+esc(collab)+"/tasks", nil, &tasks); err != nil {
			return rep, err
		}
		for _, t := range tasks {
			done := map[int]bool{}
			for _, p := range t.Done {
				done[p] = true
			}
			for p := range t.Parts {
				if done[p] {
					continue
				}
				n, err := c.reencryptPart(ctx, bk, collab, t.ID, p)
				if err != nil {
					return rep, err
				}
				rep.Elements += int64(n)
			}
			rep.Tasks++
		}
		v, err := c.Collaboration(ctx, collab)
		if err != nil {
			return rep, err
		}
		rep.Ready = len(v.Datasets) == len(v.Members)
		for _, d := range v.Datasets {
			rep.Ready = rep.Ready && d.Ready
		}
		if rep.Ready || !wait {
			return rep, nil
		}
		if v.Revoked {
			return rep, errors.New("client: the collaboration was revoked")
		}
		if len(tasks) == 0 {
			select {
			case <-ctx.Done():
				return rep, ctx.Err()
			case <-time.After(interval):
			}
		}
	}
}

func (c *Client) reencryptPart(ctx context.Context, bk *crypto.BlindingKey, collab, task string, part int) (int, error) {
	path := fmt.Sprintf("/v1/collaborations/%s/tasks/%s/parts/%d", esc(collab), esc(task), part)
	var buf bytes.Buffer
	if err := c.do(ctx, "GET", path, nil, &buf); err != nil {
		return 0, err
	}
	b := buf.Bytes()
	if len(b)%api.TokenSize != 0 {
		return 0, fmt.Errorf("client: the room sent part %d of a relay task with a partial element", part)
	}
	// Re-encrypted in place; each element is validated as it is decoded.
	if err := bk.ReencryptBytes(ctx, b, b); err != nil {
		return 0, fmt.Errorf("client: the room sent an invalid element in part %d: %w", part, err)
	}
	return len(b) / api.TokenSize, c.call(ctx, "PUT", path, bytes.NewReader(b), "application/octet-stream", nil, true)
}
