package console

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// TestAttackRedteamConsoleRefreshRewrittenLog: the auditor's console
// fetches and verifies the bundle and shows its checkpoint; on "refresh"
// a dishonest operator answers with a log whose entries 3..5 were
// rewritten (denied queries made allowed), signed with the room's key.
// Verified on its own the new bundle passes; the console verifies it
// against the checkpoint it saw last, as cleanroom audit verify --since
// does, and must refuse it.
func TestAttackRedteamConsoleRefreshRewrittenLog(t *testing.T) {
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	const origin = "cleanroom/room-fork"
	vkey, _ := audit.VerifierKey(origin, key.Public().(ed25519.PublicKey))

	entry := func(i int, allow bool) audit.Entry {
		return audit.Entry{Time: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC), Principal: "pulsefit", Role: "partner",
			Action: "query.run", Collaboration: "alliance", Decision: audit.Decision{Allow: allow},
			RequestID: fmt.Sprintf("req-%d", i)}
	}
	// Every log the operator forges is a copy of one store, so that each
	// keys request ids with the request secret of the room's, and the
	// auditor's request key is the same for all.
	opts := audit.Options{Origin: origin, Key: key, CheckpointEvery: -1, CheckpointInterval: -1}
	store := t.TempDir()
	l, err := audit.Open(ctx, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	requestKey, err := l.RequestKey("aud")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	// Each bundle ends in the entry of the export that asked for it, as
	// the room logs it under the request's id.
	export := func(rewrite bool, n int, requestID string) []byte {
		dir := t.TempDir()
		if err := os.CopyFS(dir, os.DirFS(store)); err != nil {
			t.Fatal(err)
		}
		l, err := audit.Open(ctx, dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		for i := range n {
			allow := i%2 == 0
			if rewrite && i >= 3 {
				allow = true
			}
			if _, err := l.Append(ctx, entry(i, allow)); err != nil {
				t.Fatal(err)
			}
		}
		own := audit.Entry{Time: time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC), Principal: "aud", Role: "auditor",
			Action: "audit.export", Decision: audit.Decision{Allow: true}, RequestID: requestID}
		if _, err := l.Append(ctx, own); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := l.Export(ctx, &b, 0, 0, nil); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}

	var mu sync.Mutex
	served := 0
	var firstBundle []byte // what a replaying room answers again
	replay := false
	room := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/room":
			ch, _ := base64.RawURLEncoding.DecodeString(r.URL.Query().Get("challenge"))
			info := api.RoomInfo{ID: "room-fork", AuditOrigin: origin, VerifierKey: vkey,
				Proof: base64.StdEncoding.EncodeToString(ed25519.Sign(key, api.RoomProofMessage("room-fork", ch)))}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(info)
		case "/v1/principals/me/request-key":
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(api.RequestKey{Principal: "aud", Key: requestKey})
		case "/v1/audit/export":
			mu.Lock()
			id := r.Header.Get("X-Request-Id")
			b := export(false, 6, id)
			switch {
			case served == 0:
				firstBundle = b
			case replay:
				b = firstBundle
			default:
				b = export(true, 8, id)
			}
			served++
			mu.Unlock()
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write(b)
		default:
			http.NotFound(w, r)
		}
	}))
	defer room.Close()

	k, err := crypto.GeneratePartnerKey("aud", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(ctx, room.URL, k, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Client: c, Role: RoleAuditor})
	if err != nil {
		t.Fatal(err)
	}
	fetch := func() *auditSnapshot {
		s.audit.mu.Lock()
		defer s.audit.mu.Unlock()
		return s.fetchAudit(ctx)
	}
	first := fetch()
	if !first.Verified() {
		t.Fatalf("first fetch: %v %v", first.FetchErr, first.VerifyErr)
	}
	second := fetch()
	if _, err := audit.Verify(bytes.NewReader(second.Bundle), s.verifier, nil); err != nil {
		t.Fatalf("the rewritten log does not verify on its own (the attack needs it to): %v", err)
	}
	if second.Verified() {
		for i := 3; i < 6; i++ {
			if first.Entries[i].E.Decision.Allow != second.Entries[i].E.Decision.Allow {
				t.Errorf("entry %d: the console showed it %s, then, on refresh, %s, and calls both verified",
					i, strings.ToUpper(fmt.Sprint(first.Entries[i].E.Decision.Allow)), strings.ToUpper(fmt.Sprint(second.Entries[i].E.Decision.Allow)))
			}
		}
		return
	}
	t.Logf("the refresh refused: %v", second.VerifyErr)
	// And it stays refused: the console's checkpoint is still the honest one.
	if third := fetch(); third.Verified() {
		t.Error("a second refresh verified the rewritten log")
	}
	// Nor does the room get away with answering the first bundle again,
	// hiding what it logged since: it lacks the refresh's own entry.
	mu.Lock()
	replay = true
	mu.Unlock()
	if again := fetch(); again.Verified() || !errors.Is(again.VerifyErr, client.ErrStaleBundle) {
		t.Errorf("the first bundle, answered again, was taken for the room's log: verified %v, %v", again.Verified(), again.VerifyErr)
	}
}
