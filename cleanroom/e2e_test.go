package cleanroom

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestEndToEnd runs whole collaborations over a real listener: partners
// upload, re-encrypt each other's sets (blinded), match and query, and the
// answers are checked against the synthetic ground truth (noise off, so
// exactly).
func TestEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    string
		members int
	}{
		{"hashed/2", api.ModeHashed, 2},
		{"blinded/2", api.ModeBlinded, 2},
		{"blinded/3", api.ModeBlinded, 3},
		{"hashed/3", api.ModeHashed, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := startRoom(t)
			names := []string{"alpha", "bravo", "charlie"}[:tc.members]
			var ps []*client.Client
			for _, n := range names {
				ps = append(ps, tr.partner(n, policy.RolePartner, ""))
			}
			settings := map[string]any{"noise_off": true, "allowed_dimensions": []string{"alpha.age_band"}}
			states := tr.collab("c1", tc.mode, settings, ps...)

			// Member i holds people [i*200, i*200+1500): everyone holds
			// [400, 1500) with three members, [200, 1500) with two.
			lists := make([][]int, tc.members)
			for i := range lists {
				lists[i] = span(i*200, i*200+1500)
			}
			common := map[int]bool{}
			for _, id := range lists[0] {
				in := true
				for _, l := range lists[1:] {
					in = in && slices.Contains(l, id)
				}
				common[id] = in
			}
			want := map[string]int64{}
			var overlap int64
			for id, in := range common {
				if in {
					_, band := person(id)
					want[band]++
					overlap++
				}
			}

			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make([]error, len(ps))
			for i, p := range ps {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rep, err := p.UploadCSV(ctx, uploadSpec("c1", writeList(t, lists[i]), states[p.Principal()]))
					if err == nil && (rep.Rows != 1500 || rep.Parts != 3) {
						t.Errorf("%s: upload report %+v", p.Principal(), rep)
					}
					errs[i] = err
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if tc.mode == api.ModeBlinded {
				syncAll(t, ctx, "c1", ps)
			}
			if _, err := ps[1].Match(ctx, "c1"); err != nil {
				t.Fatal(err)
			}
			if got := tr.matched("c1"); got != overlap {
				t.Fatalf("matched %d, true overlap %d", got, overlap)
			}
			q, err := ps[0].Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{"alpha.age_band"}})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			for _, row := range q.Rows {
				got[row[0].(string)] = int64(row[1].(float64))
			}
			for band, n := range want {
				if n < 50 {
					continue // under k: withheld
				}
				if got[band] != n {
					t.Errorf("%s: count %d, want %d", band, got[band], n)
				}
			}
			if q.Noise {
				t.Error("noise_off collaboration answered with noise")
			}
			if tc.mode == api.ModeBlinded {
				// A new list of the first member goes to the others masked
				// (relay.go), and the match still finds the true overlap.
				lists[0] = span(100, 1700)
				if _, err := ps[0].UploadCSV(ctx, uploadSpec("c1", writeList(t, lists[0]), states[ps[0].Principal()])); err != nil {
					t.Fatal(err)
				}
				syncAll(t, ctx, "c1", ps)
				if _, err := ps[1].Match(ctx, "c1"); err != nil {
					t.Fatal(err)
				}
				overlap = 0
				for _, id := range lists[0] {
					in := true
					for _, l := range lists[1:] {
						in = in && slices.Contains(l, id)
					}
					if in {
						overlap++
					}
				}
				if got := tr.matched("c1"); got != overlap {
					t.Fatalf("after a new list: matched %d, true overlap %d", got, overlap)
				}
			}
			// Every request went to the audit log, and it verifies.
			if n := tr.room.audit.Size(); n < 10 {
				t.Errorf("audit log has %d entries", n)
			}
		})
	}
}

// syncAll has every member re-encrypt, at once, what the room relays to it
// until every set carries every key.
func syncAll(t *testing.T, ctx context.Context, collab string, ps []*client.Client) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(ps))
	for i, p := range ps {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			_, errs[i] = p.Sync(sctx, collab, true, 20*time.Millisecond)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
