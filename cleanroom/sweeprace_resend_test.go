package cleanroom

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// TestSweepOutlastsPartSentAgainEachRound: while an abandoned upload is
// swept, its member sends part 0 again, with other bytes, in each round,
// once the round's audit entry has committed and while the round deletes
// the keys it read. A part sent again must neither make the sweep give up
// (deleteData after maxDeleteRounds, which would also stop sweepAbandoned
// before the uploads after this one) nor outlive it: a PUT that commits
// before the round's batch is deleted with it, one after is refused.
//
// The upload is given many keys (filler under its segments' prefix, as a
// large upload's parts and layers would be) only to widen the window in
// which the round deletes, so that the PUT reliably lands in it.
func TestSweepOutlastsPartSentAgainEachRound(t *testing.T) {
	tr, up, _ := sweepRace(t)
	ctx := context.Background()
	const filler = 60000
	wb := tr.room.db.NewWriteBatch()
	for i := range filler {
		if err := wb.Set(store.Segments(up.ID).Key(1000000+i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	status := make(chan int, maxDeleteRounds+1)
	round := 0
	hook := func(string) {
		round++
		before := tr.room.audit.Size()
		body := binaryPart(t, 1000, 1, make([]byte, 32), "west", distinctTokens(fmt.Sprint("again-", round)))
		go func() {
			// Once the round's data.delete entry has committed, the round
			// opens its transaction and reads its keys.
			for deadline := time.Now().Add(10 * time.Second); tr.room.audit.Size() == before; time.Sleep(100 * time.Microsecond) {
				if time.Now().After(deadline) {
					status <- 0
					return
				}
			}
			resp, _ := rawRequestAs(t, tr, "alpha", "PUT", fmt.Sprintf("/v1/collaborations/c1/uploads/%s/parts/0", up.ID), api.PartContentType, body)
			status <- resp.StatusCode
		}()
	}
	tr.room.beforeDelete.Store(&hook)
	defer tr.room.beforeDelete.Store(nil)
	start := time.Now()
	err := tr.room.sweepUpload(ctx, "c1", "alpha", up.ID, time.Now().Add(time.Hour))
	took := time.Since(start)
	tr.room.beforeDelete.Store(nil)
	var statuses []int
	for range round {
		statuses = append(statuses, <-status)
	}
	t.Logf("rounds %d, PUT statuses %v, sweep took %v", round, statuses, took)
	if err != nil {
		t.Fatalf("the sweep of an upload whose member sent a part again in each round failed: %v", err)
	}
	if n := countKeys(t, tr.room, append(store.UploadData(up.ID), uploads.Span(up.ID)...)...); n != 0 {
		t.Errorf("%d keys of the swept upload left", n)
	}
}
