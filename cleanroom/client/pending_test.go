package client_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

func TestPendingSteps(t *testing.T) {
	three := []string{"coursely", "pulsefit", "shopco"}
	all := map[string]bool{"coursely": true, "pulsefit": true, "shopco": true}
	for _, tc := range []struct {
		name string
		v    api.Collaboration
		want string
	}{
		{"nobody accepted yet but the creator", api.Collaboration{Mode: api.ModeBlinded, Members: three, Accepted: map[string]bool{"coursely": true}},
			"waiting for pulsefit to accept the collaboration; shopco to accept the collaboration; coursely to upload"},
		{"hashed: one upload", api.Collaboration{Mode: api.ModeHashed, Members: three, Accepted: all,
			Datasets: map[string]*api.Dataset{"pulsefit": {Layers: 1, Ready: true}}},
			"waiting for coursely to upload; shopco to upload"},
		{"blinded: sets on their way round", api.Collaboration{Mode: api.ModeBlinded, Members: three, Accepted: all,
			Datasets: map[string]*api.Dataset{"coursely": {Layers: 1}, "pulsefit": {Layers: 2}, "shopco": {Layers: 3, Ready: true}}},
			"waiting for pulsefit to re-encrypt coursely's set (it carries 1 of 3 keys); shopco to re-encrypt pulsefit's set (it carries 2 of 3 keys)"},
		{"blinded: the last member's set", api.Collaboration{Mode: api.ModeBlinded, Members: three, Accepted: all,
			Datasets: map[string]*api.Dataset{"coursely": {Layers: 3, Ready: true}, "pulsefit": {Layers: 3, Ready: true}, "shopco": {Layers: 2}}},
			"waiting for pulsefit to re-encrypt shopco's set (it carries 2 of 3 keys)"},
		{"ready", api.Collaboration{Mode: api.ModeHashed, Members: three, Accepted: all,
			Datasets: map[string]*api.Dataset{"coursely": {Ready: true}, "pulsefit": {Ready: true}, "shopco": {Ready: true}}},
			"ready to match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := client.Waiting(client.PendingSteps(&tc.v)); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestSyncSaysWhatItWaitsFor: sync --wait reports what the collaboration
// waits for while it waits, and says it again when its time is up.
func TestSyncSaysWhatItWaitsFor(t *testing.T) {
	rm := startRoom(t)
	a := rm.partner("alpha", nil)
	b := rm.partner("bravo", nil)
	sa, sb := rm.collab("c1", api.ModeBlinded, nil, a, b)
	upload := func(c *client.Client, state client.StateDir) {
		t.Helper()
		spec := client.UploadSpec{Collab: "c1", Input: writeCSV(t, peopleHeader, people(0, minList+10)), IDColumn: "email",
			Kind: crypto.KindEmail, State: state}
		if _, err := c.UploadCSV(context.Background(), spec); err != nil {
			t.Fatal(err)
		}
	}
	// syncFor runs alpha's sync --wait for a moment and returns what it
	// reported and its error.
	syncFor := func() ([]string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
		defer cancel()
		var mu sync.Mutex
		var seen []string
		_, err := a.SyncWith(ctx, "c1", client.SyncOptions{Wait: true, Interval: 50 * time.Millisecond,
			Status: func(p []client.Pending) {
				mu.Lock()
				if w := client.Waiting(p); !slices.Contains(seen, w) {
					seen = append(seen, w)
				}
				mu.Unlock()
			}})
		return seen, err
	}

	check := func(want string) {
		t.Helper()
		seen, err := syncFor()
		if !slices.Equal(seen, []string{want}) {
			t.Errorf("reported %q, want %q", seen, want)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still "+want) {
			t.Errorf("Sync = %v, want a timeout %q", err, want)
		}
	}
	upload(a, sa)
	check("waiting for bravo to upload; bravo to re-encrypt alpha's set (it carries 1 of 2 keys)")
	upload(b, sb) // alpha's next sync re-encrypts bravo's set, then waits for bravo
	check("waiting for bravo to re-encrypt alpha's set (it carries 1 of 2 keys)")
	if _, err := b.Sync(context.Background(), "c1", true, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	rep, err := a.SyncWith(context.Background(), "c1", client.SyncOptions{Wait: true})
	if err != nil || !rep.Ready || len(rep.Waiting) != 0 {
		t.Fatalf("Sync = %+v, %v once every set is ready", rep, err)
	}
}
