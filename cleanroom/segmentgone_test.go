package cleanroom

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// TestSegmentGoneIsNotInternal: a segment deleted while it was read (a
// dataset replaced during a query) answers a conflict to send again, not
// an internal error, and is not counted as damage.
func TestSegmentGoneIsNotInternal(t *testing.T) {
	tr := startRoom(t)
	err := fmt.Errorf("cleanroom: reading: %w", fmt.Errorf("%w: seg/u/00000000", store.ErrSegmentGone))
	p, _ := tr.room.problemFor(context.Background(), "req", err)
	if p.Status != http.StatusConflict || p.Type == api.ProblemCorrupt {
		t.Errorf("a segment deleted while read: %d %s, want a conflict", p.Status, p.Type)
	}
}
