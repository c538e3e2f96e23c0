package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
)

// TestAuditVerbsOverAPI: an auditor exports what it may see from a running
// room with its own key, and verifies it offline; a room auditor gets the
// whole log.
func TestAuditVerbsOverAPI(t *testing.T) {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	if code, _, errs := cli("init", "--data", path("room")); code != 0 {
		t.Fatalf("init: %s", errs)
	}
	r, room, stop := serveDataDir(t, path("room"), nil)
	os.WriteFile(path("room.vkey"), []byte(r.Info().VerifierKey+"\n"), 0o644)

	must := func(want string, args ...string) string {
		t.Helper()
		code, out, errs := cli(args...)
		if code != 0 || !strings.Contains(out+errs, want) {
			t.Fatalf("cleanroom %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	for _, p := range []string{"coursely", "pulsefit", "fitapp", "aud", "regulator"} {
		code, out, errs := cli("keygen", "--name", p, "--out", path(p+".key"))
		if code != 0 {
			t.Fatalf("keygen: %s", errs)
		}
		os.WriteFile(path(p+".jwks"), []byte(out), 0o644)
	}
	add := func(args ...string) {
		must("registered", append([]string{"partner", "add", "--room", room, "--key", path("room/operator.key")}, args...)...)
	}
	for _, p := range []string{"coursely", "pulsefit", "fitapp"} {
		add("--id", p, "--keys", path(p+".jwks"))
	}
	add("--id", "aud", "--keys", path("aud.jwks"), "--role", "auditor", "--partner", "coursely")
	add("--id", "regulator", "--keys", path("regulator.jwks"), "--role", "room-auditor")
	as := func(p string, args ...string) []string { return append(args, "--room", room, "--key", path(p+".key")) }
	must("created", as("coursely", "collab", "create", "--id", "alliance", "--members", "coursely,pulsefit", "--kind", "email")...)
	must("created", as("pulsefit", "collab", "create", "--id", "other", "--members", "pulsefit,fitapp", "--kind", "email")...)

	must("wrote "+path("aud.txt"), as("aud", "audit", "export", "--out", path("aud.txt"))...)
	out := must("each proved included in its signed checkpoint", "audit", "verify", path("aud.txt"), "--key", path("room.vkey"))
	if !strings.Contains(out, "partner coursely: collaborations [alliance]") {
		t.Errorf("verify does not show the scope:\n%s", out)
	}
	if b, _ := os.ReadFile(path("aud.txt")); strings.Contains(string(b), `"collaboration":"other"`) {
		t.Error("the auditor of coursely received entries of a collaboration coursely is not in")
	}
	must("wrote", as("regulator", "audit", "export", "--out", path("all.txt"))...)
	must("verified against its signed checkpoint", "audit", "verify", path("all.txt"), "--key", path("room.vkey"))
	must(`"format": "cleanroom.dev/audit-bundle/v2"`, "audit", "verify", path("aud.txt"), "--key", path("room.vkey"), "--json")

	// The auditor keeps the checkpoint it verified, and proves the next
	// bundle extends it: each auditor's and the room auditor's.
	for _, who := range []string{"aud", "regulator"} {
		first, ck := path(who+"-1.txt"), path(who+".ckpt")
		must("wrote", as(who, "audit", "export", "--out", first)...)
		must("OK", "audit", "verify", first, "--key", path("room.vkey"), "--save-checkpoint", ck)
		must("created", as("coursely", "collab", "create", "--id", "later-"+who, "--members", "coursely,pulsefit", "--kind", "email")...)
		plain, since := path(who+"-2.txt"), path(who+"-3.txt")
		must("wrote", as(who, "audit", "export", "--out", plain)...)
		// A sparse bundle proves it only with the proof export --since
		// asks for; the whole log's recomputes the tree of that size.
		code, out, errs := cli("audit", "verify", plain, "--key", path("room.vkey"), "--since", ck)
		if who == "aud" && (code == 0 || !strings.Contains(errs, "export one that extends it")) {
			t.Errorf("%s: a sparse bundle exported without --since, verified --since: exit %d, %s", who, code, errs)
		}
		if who == "regulator" && (code != 0 || !strings.Contains(out, "OK: the log extends your checkpoint")) {
			t.Errorf("%s: the whole log, verified --since: exit %d, %s%s", who, code, out, errs)
		}
		must("wrote", as(who, "audit", "export", "--out", since, "--since", ck)...)
		must("OK: the log extends your checkpoint", "audit", "verify", since, "--key", path("room.vkey"), "--since", ck, "--save-checkpoint", ck)
		if b, _ := os.ReadFile(ck); !strings.Contains(string(b), "\n") || strings.Contains(string(b), "{") {
			t.Errorf("%s: the saved checkpoint is not a signed note:\n%s", who, b)
		}
	}
	// --since takes a checkpoint of this room's only.
	os.WriteFile(path("junk.ckpt"), []byte("not a checkpoint\n"), 0o644)
	if code, _, errs := cli(as("aud", "audit", "export", "--out", path("z.txt"), "--since", path("junk.ckpt"))...); code == 0 || !strings.Contains(errs, "not a checkpoint of this room's") {
		t.Errorf("export --since a file that is no checkpoint: exit %d, %s", code, errs)
	}

	// A partner is not an auditor; flags that do not go together.
	code, _, errs := cli(as("coursely", "audit", "export", "--out", path("x.txt"))...)
	if code != 1 || !strings.Contains(errs, "only auditors") {
		t.Errorf("a partner's export: exit %d, %s", code, errs)
	}
	if _, err := os.Stat(path("x.txt")); err == nil {
		t.Error("a refused export left a file")
	}
	code, _, errs = cli(append(as("aud", "audit", "export", "--out", path("y.txt")), "--data", path("room"))...)
	if code != 2 || !strings.Contains(errs, "one of --room or --data") {
		t.Errorf("--room with --data: exit %d, %s", code, errs)
	}

	// The room and key in the environment, as for every verb that talks
	// to a room.
	t.Setenv("CLEANROOM_ROOM", room)
	t.Setenv("CLEANROOM_KEY", path("aud.key"))
	must("wrote "+path("env.txt"), "audit", "export", "--out", path("env.txt"))
	must("each proved included in its signed checkpoint", "audit", "verify", path("env.txt"), "--key", path("room.vkey"))

	// An operator finds the entries of a request its logs name by the
	// request's id, which the log holds only as a digest keyed by the
	// sender: the sender hands over that request's token.
	k, err := readPartnerKey(path("coursely.key"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(context.Background(), room, k, client.Options{HTTP: &http.Client{Transport: withRequestID{"ops-ticket-42"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Collaboration(context.Background(), "alliance"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CLEANROOM_KEY", path("regulator.key"))
	must("wrote", "audit", "export", "--out", path("ticket.txt"))
	token := strings.TrimSpace(must("", as("coursely", "audit", "request-token", "ops-ticket-42")...))
	other := strings.TrimSpace(must("", as("coursely", "audit", "request-token", "ops-ticket-43")...))
	regulators := strings.TrimSpace(must("", "audit", "request-token", "ops-ticket-42"))
	if len(token) != 64 || token == other || token == regulators {
		t.Fatalf("request tokens %q (coursely's ticket 42), %q (its ticket 43), %q (the regulator's ticket 42)", token, other, regulators)
	}
	verify := []string{"audit", "verify", path("ticket.txt"), "--key", path("room.vkey"), "--request-id", "ops-ticket-42"}
	out = must("request ops-ticket-42 (found by its token): 1 entry in this bundle", append(verify, "--request-token", token)...)
	if !strings.Contains(out, "coursely collaboration.read allowed (collaboration alliance)") {
		t.Errorf("verify --request-id does not list the request's entry:\n%s", out)
	}
	if b, _ := os.ReadFile(path("ticket.txt")); strings.Contains(string(b), "ops-ticket-42") {
		t.Error("the bundle holds the request id as sent")
	}
	// Without the request's own token, the id names no entry.
	must("hint: an entry holds its request id keyed by its sender", verify...)
	for _, tok := range []string{other, regulators} {
		must("request ops-ticket-42 (found by its token): 0 entries", append(verify, "--request-token", tok)...)
	}
	for _, bad := range [][]string{
		append(verify, "--request-token", "00"),
		{"audit", "verify", path("ticket.txt"), "--key", path("room.vkey"), "--request-token", token},
		{"audit", "request-token"},
		{"audit", "request-token", "ops ticket"},
		{"audit", "verify", path("ticket.txt"), "--key", path("room.vkey"), "--request-id", "ops/ticket"},
		{"audit", "request-token", "ops-ticket-42", "--principal", "coursely"},
	} {
		if code, _, errs := cli(bad...); code != 2 {
			t.Errorf("cleanroom %s: exit %d, %s", strings.Join(bad, " "), code, errs)
		}
	}

	// The operator reads any principal's token from the stopped room's data.
	dataToken := []string{"audit", "request-token", "ops-ticket-42", "--data", path("room"), "--principal", "coursely"}
	if code, _, errs := cli(dataToken...); code != 1 || !strings.Contains(errs, "stop the room first") {
		t.Errorf("request-token --data of a running room: exit %d, %s", code, errs)
	}
	stop()
	if got := strings.TrimSpace(must("", dataToken...)); got != token {
		t.Errorf("request-token --data: %q, coursely's own is %q", got, token)
	}
	if code, _, errs := cli("audit", "request-token", "ops-ticket-42", "--data", path("room")); code != 2 {
		t.Errorf("request-token --data without --principal: exit %d, %s", code, errs)
	}
}

// withRequestID sends every request with its X-Request-Id.
type withRequestID struct{ id string }

func (w withRequestID) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("X-Request-Id", w.id)
	return http.DefaultTransport.RoundTrip(req)
}

// TestAuditExportCrashedData: export --data reads a data directory whose
// room was killed mid-write, which Badger will not open read-only, without
// changing it.
func TestAuditExportCrashedData(t *testing.T) {
	dir := t.TempDir()
	live, crashed := filepath.Join(dir, "live"), filepath.Join(dir, "crashed")
	const origin = "cleanroom.test/room/crash"
	seed := sha256.Sum256([]byte(origin))
	key := ed25519.NewKeyFromSeed(seed[:])
	ctx := context.Background()
	// Small Badger files, so that the crash image below is cheap to copy.
	db, err := badger.Open(badger.DefaultOptions(cleanroom.DataDir(live).Database()).
		WithSyncWrites(true).WithLogger(nil).WithMemTableSize(4 << 20).WithValueThreshold(1 << 10).WithValueLogFileSize(1 << 20))
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.New(ctx, db, audit.Options{Origin: origin, Key: key, CheckpointEvery: -1, CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if _, err := l.Append(ctx, audit.Entry{Time: time.Unix(int64(i), 0), Principal: "coursely", Action: "dataset.upload",
			Decision: audit.Decision{Allow: true}}); err != nil {
			t.Fatal(err)
		}
		if i == 19 {
			if _, err := l.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// What a SIGKILL leaves: the files as they are on disk while the room
	// runs, its write-ahead log unflushed.
	copyFiles(t, cleanroom.DataDir(live).Database(), cleanroom.DataDir(crashed).Database())
	l.Close()
	db.Close()
	vkey, err := audit.VerifierKey(origin, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "room.vkey"), []byte(vkey), 0o644)

	if ro, err := audit.Open(ctx, cleanroom.DataDir(crashed).Database(), audit.Options{ReadOnly: true}); err == nil {
		ro.Close()
		t.Fatal("the crash image opens read-only: this test does not reach the recovery it is for")
	}
	before := listFiles(t, cleanroom.DataDir(crashed).Database())
	bundle := filepath.Join(dir, "bundle.txt")
	if code, _, errs := cli("audit", "export", "--data", crashed, "--out", bundle); code != 0 {
		t.Fatalf("export --data of a crashed room: %s", errs)
	}
	if code, out, errs := cli("audit", "verify", bundle, "--key", filepath.Join(dir, "room.vkey")); code != 0 ||
		!strings.Contains(out, "OK: 20 entries (0..19)") {
		t.Fatalf("verify: %d %s %s", code, out, errs)
	}
	if after := listFiles(t, cleanroom.DataDir(crashed).Database()); after != before {
		t.Fatalf("the export changed the crashed directory:\n%s\n%s", before, after)
	}
}

func copyFiles(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	es, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		in, err := os.Open(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(to, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		out.Close()
	}
}

// listFiles describes dir's files by name, size and modification time.
func listFiles(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range es {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%d:%d\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}
