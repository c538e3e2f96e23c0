package cleanroom

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestRequestKeyIsTheCallers: every principal, whatever its role, gets its
// own request key, the same after the room restarts; each fetch is
// audited, and a client fetches once; and the key finds the caller's
// requests by id, another's key none of them.
func TestRequestKeyIsTheCallers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tr := startRoom(t)
	clients := map[string]*client.Client{
		"alpha": tr.partner("alpha", policy.RolePartner, ""),
		"ana":   tr.partner("ana", policy.RoleAnalyst, "alpha"),
		"aud":   tr.partner("aud", policy.RoleAuditor, "alpha"),
		"reg":   tr.partner("reg", policy.RoleRoomAuditor, ""),
	}
	keys := map[string][]byte{}
	for id, c := range clients {
		before := tr.room.audit.Size()
		k, err := c.RequestKey(ctx)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if e := lastEntry(t, tr.room); tr.room.audit.Size() != before+1 || e.Principal != id || e.Action != string(policy.ActionPrincipalSelf) || !e.Decision.Allow {
			t.Errorf("%s: the fetch left entry %+v", id, e)
		}
		for other, ok := range keys {
			if bytes.Equal(ok, k) {
				t.Errorf("%s and %s have the same request key", id, other)
			}
		}
		keys[id] = k
	}
	// A client asks once: the key of a principal never changes.
	before := tr.room.audit.Size()
	if k, err := clients["alpha"].RequestKey(ctx); err != nil || !bytes.Equal(k, keys["alpha"]) || tr.room.audit.Size() != before {
		t.Errorf("alpha asked again: key %x, %v; the log grew by %d", k, err, tr.room.audit.Size()-before)
	}
	status, sent := requestWithID(t, tr, "ana", time.Now(), "GET", "/v1/principals/me", "ticket-7", nil)
	if status != 200 || sent != "ticket-7" {
		t.Fatalf("GET /v1/principals/me: %d under %q", status, sent)
	}
	e := lastEntry(t, tr.room)
	for id, k := range keys {
		if got, want := audit.IsRequest(e, k, "ticket-7"), id == "ana"; got != want {
			t.Errorf("%s's key finds ana's request: %v", id, got)
		}
	}
	tr.restart()
	for id := range clients {
		k, err := tr.room.audit.RequestKey(id)
		if err != nil || !bytes.Equal(k, keys[id]) {
			t.Errorf("%s's request key after a restart: %x, %v; want %x", id, k, err, keys[id])
		}
	}
}
