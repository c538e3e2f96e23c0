package console

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// The tests' alliance: a real room (Badger on disk, OPA, HTTP on loopback),
// two brands with uploaded and matched lists, an analyst and an auditor of
// the first brand, and the alliance's own policy module.
const (
	brandA  = "coursely"
	brandB  = "pulsefit"
	analyst = "ana"
	auditor = "compliance"
	collab  = "spring-alliance"
)

// alliancePolicy refuses region breakdowns: the refusal the tests expect,
// with its reason.
const alliancePolicy = `package collaboration

deny contains "the alliance does not break the overlap down by region" if {
	input.action == "query.run"
	some d in input.resource.query.dimensions
	endswith(d, ".region")
}
`

const regionReason = "the alliance does not break the overlap down by region"

var ageBands = []string{"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}

// fixture is the room and its principals' clients.
type fixture struct {
	url     string
	clients map[string]*client.Client
	stop    func()
}

// startAlliance runs the room in dir until stop, with rows customers per
// brand of whom overlap are customers of both.
func startAlliance(dir string, rows, overlap int) (*fixture, error) {
	ctx := context.Background()
	roomDir := cleanroom.DataDir(filepath.Join(dir, "room"))
	op, err := cleanroom.Init(ctx, cleanroom.Config{Dir: roomDir})
	if err != nil {
		return nil, err
	}
	room, err := cleanroom.Open(ctx, cleanroom.Config{Dir: roomDir, CheckpointInterval: -1,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		room.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { room.Serve(sctx, ln); close(done) }()
	f := &fixture{url: "http://" + ln.Addr().String(), clients: map[string]*client.Client{}}
	f.stop = func() { cancel(); <-done; room.Close() }
	if err := f.populate(ctx, op, dir, rows, overlap); err != nil {
		f.stop()
		return nil, err
	}
	return f, nil
}

func (f *fixture) populate(ctx context.Context, op *crypto.PartnerKey, dir string, rows, overlap int) error {
	opc, err := client.New(ctx, f.url, op, client.Options{})
	if err != nil {
		return err
	}
	for _, p := range []struct{ id, role, of string }{
		{brandA, RolePartner, ""}, {brandB, RolePartner, ""}, {analyst, RoleAnalyst, brandA}, {auditor, RoleAuditor, brandA},
	} {
		k, err := crypto.GeneratePartnerKey(p.id, nil)
		if err != nil {
			return err
		}
		if err := opc.RegisterPrincipal(ctx, api.Principal{ID: p.id, Role: p.role, Partner: p.of, Keys: k.Public()}); err != nil {
			return fmt.Errorf("registering %s: %w", p.id, err)
		}
		if f.clients[p.id], err = client.New(ctx, f.url, k, client.Options{}); err != nil {
			return err
		}
	}
	settings, _ := json.Marshal(map[string]any{
		"allowed_dimensions": []string{brandA + ".age_band", brandA + ".region"},
		"domains":            map[string][]string{brandA + ".age_band": ageBands},
		"bounds":             map[string][2]float64{brandA + ".revenue": {0, 200}, brandA + ".campaign_cost": {0, 5}, brandB + ".revenue": {0, 100}},
	})
	a, b := f.clients[brandA], f.clients[brandB]
	if _, err := a.CreateCollaboration(ctx, api.CreateCollaboration{ID: collab, Mode: api.ModeHashed, Profile: crypto.ProfilePAIRv1,
		Kind: "email", Members: []string{brandA, brandB}, Settings: settings}); err != nil {
		return err
	}
	states := map[string]client.StateDir{brandA: client.StateDir(filepath.Join(dir, brandA)), brandB: client.StateDir(filepath.Join(dir, brandB))}
	if err := a.DistributeSecret(ctx, collab, states[brandA], nil); err != nil {
		return err
	}
	shown, err := b.Collaboration(ctx, collab)
	if err != nil {
		return err
	}
	if err := b.Accept(ctx, collab, shown.SettingsDigest); err != nil {
		return err
	}
	if err := b.ReceiveSecret(ctx, collab, states[brandB], nil); err != nil {
		return err
	}
	prop, err := a.ProposePolicy(ctx, collab, []byte(alliancePolicy))
	if err != nil {
		return err
	}
	if _, err := b.ApprovePolicy(ctx, collab, prop.Hash); err != nil {
		return err
	}
	lists, err := writeLists(dir, rows, overlap)
	if err != nil {
		return err
	}
	for id, cols := range map[string][]string{brandA: {"age_band", "region", "revenue", "exposed", "campaign_cost"}, brandB: {"conversions", "revenue"}} {
		if _, err := f.clients[id].UploadCSV(ctx, client.UploadSpec{Collab: collab, Input: lists[id], IDColumn: "email",
			Kind: crypto.KindEmail, Columns: cols, State: states[id]}); err != nil {
			return fmt.Errorf("%s's upload: %w", id, err)
		}
	}
	_, err = a.Match(ctx, collab)
	return err
}

// writeLists writes both brands' customer lists: people 0..rows-1 at the
// course platform, rows-overlap.. at the fitness app.
func writeLists(dir string, rows, overlap int) (map[string]string, error) {
	rng := rand.New(rand.NewPCG(7, 7))
	out := map[string]string{}
	regions := []string{"north", "south", "east", "west"}
	for _, b := range []struct {
		id     string
		first  int
		header []string
		row    func(i int) []string
	}{
		{brandA, 0, []string{"email", "age_band", "region", "revenue", "exposed", "campaign_cost"}, func(i int) []string {
			return []string{email(i), ageBands[i%len(ageBands)], regions[i%len(regions)], strconv.Itoa(20 + rng.IntN(150)),
				strconv.FormatBool(i%2 == 0), strconv.FormatFloat(1+rng.Float64()*3, 'f', 2, 64)}
		}},
		{brandB, rows - overlap, []string{"email", "conversions", "revenue"}, func(i int) []string {
			conv := 0
			if rng.IntN(10) < 3+2*(1-i%2) {
				conv = 1
			}
			return []string{email(i), strconv.Itoa(conv), strconv.Itoa(rng.IntN(90))}
		}},
	} {
		path := filepath.Join(dir, b.id+".csv")
		fh, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		w := csv.NewWriter(fh)
		w.Write(b.header)
		for i := b.first; i < b.first+rows; i++ {
			w.Write(b.row(i))
		}
		w.Flush()
		if err := fh.Close(); err != nil {
			return nil, err
		}
		out[b.id] = path
	}
	return out, nil
}

func email(i int) string { return fmt.Sprintf("customer%06d@example.org", i) }

// consoleUnderTest is a console serving one principal on loopback.
type consoleUnderTest struct {
	srv    *Server
	url    string // with the token, as printed
	origin string // http://host:port
	base   string // the origin and the pages' path: what a page's path follows
}

// startConsole serves a console for principal id until ctx ends.
func (f *fixture) startConsole(ctx context.Context, id, role string) (*consoleUnderTest, error) {
	srv, err := New(Config{Client: f.clients[id], Role: role})
	if err != nil {
		return nil, err
	}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go srv.Serve(ctx, ln)
	origin := "http://" + ln.Addr().String()
	return &consoleUnderTest{srv: srv, url: srv.URL(ln.Addr()), origin: origin, base: origin + srv.base}, nil
}

// brandConsole serves brand A's console, on an alliance of its own, until
// the test ends.
func brandConsole(t *testing.T) (*fixture, *consoleUnderTest) {
	t.Helper()
	f := alliance(t)
	cu, err := f.startConsole(t.Context(), brandA, RolePartner)
	if err != nil {
		t.Fatal(err)
	}
	return f, cu
}

// sendAsWritten sends a request for path exactly as written (the client
// cleans nothing), with a query form as its body, by c, and returns the
// answer with its body read.
func sendAsWritten(t *testing.T, c *http.Client, method, origin, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, origin+"/", strings.NewReader(url.Values{"count": {"on"}, "epsilon": {"0.5"}, "do": {"run"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = "//" + req.URL.Host + path
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

// httpClient is a plain HTTP client that keeps the console's cookie and
// does not follow redirects.
func httpClient(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// latest returns the newest answer, if any.
func (s *resultStore) latest() *storedResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.order) == 0 {
		return nil
	}
	r := s.byID[s.order[len(s.order)-1]]
	return &r
}
