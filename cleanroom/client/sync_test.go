package client

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
	"golang.org/x/mod/sumdb/note"
)

// t0Room is the key of the stub rooms of this package's tests.
var t0Room = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

// stubRoomInfo is what a stub room with key k answers GET /v1/room with:
// its id, key and proof for the request's challenge.
func stubRoomInfo(k ed25519.PrivateKey, req *http.Request) api.RoomInfo {
	vk, _ := note.NewEd25519VerifierKey("cleanroom/room-1", k.Public().(ed25519.PublicKey))
	info := api.RoomInfo{ID: "room-1", AuditOrigin: "cleanroom/room-1", VerifierKey: vk}
	if c, err := base64.RawURLEncoding.DecodeString(req.URL.Query().Get("challenge")); err == nil {
		info.Proof = base64.StdEncoding.EncodeToString(ed25519.Sign(k, api.RoomProofMessage(info.ID, c)))
	}
	return info
}

// relayRoom plays the room's side of one relay task: it serves parts of
// elements and records what comes back. Sync's pipelining (download ahead,
// upload behind) is what is under test, so the room is a stub; the real one
// is exercised end to end in package cleanroom.
type relayRoom struct {
	parts  [][]byte
	refuse int // the part whose upload is refused, or -1
	mu     sync.Mutex
	got    map[int][]byte
}

func (r *relayRoom) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	const task = "/v1/collaborations/c1/tasks/task-1/parts/"
	switch {
	case req.URL.Path == "/v1/room":
		json.NewEncoder(w).Encode(stubRoomInfo(t0Room, req))
	case req.URL.Path == "/v1/collaborations/c1/tasks":
		r.mu.Lock()
		var tasks []api.Task
		if len(r.got) < len(r.parts) {
			tasks = []api.Task{{ID: "task-1", Owner: "bravo", Layer: 1, Parts: len(r.parts), Done: []int{}}}
		}
		r.mu.Unlock()
		json.NewEncoder(w).Encode(tasks)
	case req.URL.Path == "/v1/collaborations/c1":
		r.mu.Lock()
		ready := len(r.got) == len(r.parts)
		r.mu.Unlock()
		json.NewEncoder(w).Encode(api.Collaboration{ID: "c1", Members: []string{"alpha", "bravo"},
			Datasets: map[string]*api.Dataset{"alpha": {Ready: ready}, "bravo": {Ready: ready}}})
	case strings.HasPrefix(req.URL.Path, task):
		p, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, task))
		if err != nil || p < 0 || p >= len(r.parts) {
			http.NotFound(w, req)
			return
		}
		if req.Method == "GET" {
			w.Write(r.parts[p])
			return
		}
		b, _ := io.ReadAll(req.Body)
		if p == r.refuse {
			w.WriteHeader(http.StatusUnprocessableEntity)
			json.NewEncoder(w).Encode(api.Problem{Title: "invalid data", Status: http.StatusUnprocessableEntity, Detail: "part refused"})
			return
		}
		r.mu.Lock()
		r.got[p] = b
		r.mu.Unlock()
	default:
		http.NotFound(w, req)
	}
}

func TestSyncPipeline(t *testing.T) {
	ctx := context.Background()
	owner, _ := crypto.GenerateBlindingKey(nil)
	ks, _ := crypto.NewSecret(nil)
	const parts, per = 4, 24
	sent := make([][]byte, parts)
	for p := range sent {
		for i := range per {
			e, err := owner.Encrypt(ks, sha256.Sum256(fmt.Appendf(nil, "%d/%d", p, i)))
			if err != nil {
				t.Fatal(err)
			}
			b := e.Bytes()
			sent[p] = append(sent[p], b[:]...)
		}
	}
	mkParts := func() [][]byte {
		out := make([][]byte, parts)
		for p := range out {
			out[p] = append([]byte(nil), sent[p]...)
		}
		return out
	}
	start := func(t *testing.T, r *relayRoom) *Client {
		srv := httptest.NewServer(r)
		t.Cleanup(srv.Close)
		key, err := crypto.GeneratePartnerKey("alpha", nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(ctx, srv.URL, key, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("every part comes back re-encrypted", func(t *testing.T) {
		r := &relayRoom{parts: mkParts(), refuse: -1, got: map[int][]byte{}}
		c := start(t, r)
		rep, err := c.Sync(ctx, "c1", true, time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Ready || rep.Tasks != 1 || rep.Elements != parts*per {
			t.Fatalf("report %+v", rep)
		}
		bk := c.BlindingKey("c1")
		for p, sent := range r.parts {
			got := r.got[p]
			if len(got) != len(sent) {
				t.Fatalf("part %d: %d bytes back for %d", p, len(got), len(sent))
			}
			for i := 0; i < len(sent); i += crypto.ElementSize {
				e, err := crypto.DecodeElement(sent[i : i+crypto.ElementSize])
				if err != nil {
					t.Fatal(err)
				}
				want, _ := bk.Reencrypt(e)
				if w := want.Bytes(); string(got[i:i+crypto.ElementSize]) != string(w[:]) {
					t.Fatalf("part %d element %d is not k·element", p, i/crypto.ElementSize)
				}
			}
		}
	})

	t.Run("an invalid element stops the task", func(t *testing.T) {
		r := &relayRoom{parts: mkParts(), refuse: -1, got: map[int][]byte{}}
		clear(r.parts[2][5*crypto.ElementSize : 6*crypto.ElementSize]) // the identity
		c := start(t, r)
		_, err := c.Sync(ctx, "c1", true, time.Millisecond)
		if !errors.Is(err, crypto.ErrIdentity) || !strings.Contains(err.Error(), "part 2") {
			t.Fatalf("Sync = %v, want the identity in part 2", err)
		}
		// A cancelled upload's handler may still be running: read under
		// the room's lock.
		r.mu.Lock()
		defer r.mu.Unlock()
		for p := range r.got {
			if p >= 2 {
				t.Fatalf("part %d was uploaded after part 2 failed", p)
			}
		}
	})

	t.Run("a refused upload is the error", func(t *testing.T) {
		r := &relayRoom{parts: mkParts(), refuse: 1, got: map[int][]byte{}}
		c := start(t, r)
		rep, err := c.Sync(ctx, "c1", true, time.Millisecond)
		var prob *api.Problem
		if !errors.As(err, &prob) || prob.Status != http.StatusUnprocessableEntity {
			t.Fatalf("Sync = %v, want the room's 422", err)
		}
		var se *SyncError
		if rep != nil || !errors.As(err, &se) {
			t.Fatalf("Sync = %+v, %T; want no report and a *SyncError", rep, err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if se.Report.Elements != int64(len(r.got))*per {
			t.Fatalf("the error says %d elements accepted, the room took %d parts", se.Report.Elements, len(r.got))
		}
		if _, ok := r.got[1]; ok {
			t.Fatal("the refused part was recorded")
		}
	})

	t.Run("cancellation ends it", func(t *testing.T) {
		r := &relayRoom{parts: mkParts(), refuse: -1, got: map[int][]byte{}}
		c := start(t, r)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := c.Sync(cctx, "c1", true, time.Millisecond); !errors.Is(err, context.Canceled) {
			t.Fatalf("Sync = %v", err)
		}
	})
}
