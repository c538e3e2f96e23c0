package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// minList is the test room's minimum list size, lowered from the default
// so that lists stay small.
const minList = 200

// room is a real room (Badger on disk, OPA) serving on loopback, and the
// operator's client.
type room struct {
	t   *testing.T
	url string
	op  *client.Client
}

func startRoom(t *testing.T) *room {
	t.Helper()
	ctx := context.Background()
	dir := cleanroom.DataDir(t.TempDir())
	defaults := policy.DefaultConstraints()
	defaults.MinListSize = minList
	cfg := cleanroom.Config{Dir: dir, CheckpointInterval: -1, Defaults: &defaults,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	opKey, err := cleanroom.Init(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cleanroom.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Serve(sctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done; r.Close() })
	rm := &room{t: t, url: "http://" + ln.Addr().String()}
	if rm.op, err = client.New(ctx, rm.url, opKey, client.Options{}); err != nil {
		t.Fatal(err)
	}
	return rm
}

// partner registers a partner and returns its client, whose requests
// reqs counts.
func (rm *room) partner(id string, reqs *requests) *client.Client {
	t := rm.t
	t.Helper()
	ctx := context.Background()
	k, err := crypto.GeneratePartnerKey(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rm.op.RegisterPrincipal(ctx, api.Principal{ID: id, Role: policy.RolePartner, Keys: k.Public()}); err != nil {
		t.Fatal(err)
	}
	opts := client.Options{}
	if reqs != nil {
		opts.HTTP = &http.Client{Transport: reqs}
	}
	c, err := client.New(ctx, rm.url, k, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// collab makes a collaboration of a and b (a creates it, b accepts as
// shown) and returns their state directories.
func (rm *room) collab(id, mode string, settings map[string]any, a, b *client.Client) (client.StateDir, client.StateDir) {
	t := rm.t
	t.Helper()
	ctx := context.Background()
	req := api.CreateCollaboration{ID: id, Mode: mode, Kind: "email", Members: []string{a.Principal(), b.Principal()}}
	if settings != nil {
		req.Settings, _ = json.Marshal(settings)
	}
	if _, err := a.CreateCollaboration(ctx, req); err != nil {
		t.Fatal(err)
	}
	sa, sb := client.StateDir(t.TempDir()), client.StateDir(t.TempDir())
	if err := a.DistributeSecret(ctx, id, sa, nil); err != nil {
		t.Fatal(err)
	}
	v, err := b.Collaboration(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Accept(ctx, id, v.SettingsDigest); err != nil {
		t.Fatal(err)
	}
	if err := b.ReceiveSecret(ctx, id, sb, nil); err != nil {
		t.Fatal(err)
	}
	return sa, sb
}

// requests counts a client's requests by method and path pattern (part
// numbers and ids folded), over the real transport.
type requests struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *requests) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[req.Method+" "+pathPattern(req.URL.Path)]++
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// count is how many requests matched method and pattern.
func (r *requests) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[key]
}

// reset forgets the requests so far.
func (r *requests) reset() {
	r.mu.Lock()
	r.n = nil
	r.mu.Unlock()
}

// writes are the requests that change something in the room.
func (r *requests) writes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for k := range r.n {
		if !strings.HasPrefix(k, "GET ") {
			out = append(out, k)
		}
	}
	return out
}

// pathPattern folds the variable segments of an upload's paths:
// /v1/collaborations/c1/uploads/up-1/parts/3 → .../uploads/*/parts/*.
func pathPattern(p string) string {
	segs := strings.Split(p, "/")
	for i := 1; i < len(segs); i++ {
		if segs[i-1] == "uploads" || segs[i-1] == "parts" {
			segs[i] = "*"
		}
	}
	return strings.Join(segs, "/")
}

// writeCSV writes rows under header to a file and returns its path.
func writeCSV(t *testing.T, header string, rows []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "list.csv")
	if err := os.WriteFile(path, []byte(header+"\n"+strings.Join(rows, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// people are n rows of email,age_band,spend,phone from the i-th person on.
func people(from, n int) []string {
	out := make([]string, n)
	for i := range out {
		p := from + i
		out[i] = fmt.Sprintf("person%05d@example.org,%d,%d,+4420794600%02d", p, 20+p%4*10, p%500, p%100)
	}
	return out
}

const peopleHeader = "email,age_band,spend,phone"

// uploadFile is the saved progress of an upload to collab, in the state
// of the one room that state has been used with.
func uploadFile(state client.StateDir, collab string) string {
	return filepath.Join(roomState(state), collab+".upload.json")
}

// roomState is the directory of the one room state has been used with (a
// path that does not exist, if none).
func roomState(state client.StateDir) string {
	rooms, _ := filepath.Glob(filepath.Join(string(state), "room-*"))
	if len(rooms) != 1 {
		return filepath.Join(string(state), "no-room")
	}
	return rooms[0]
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
