package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// cliMinList is the minimum list size of the rooms these tests serve,
// lowered from the default so that lists stay small.
const cliMinList = 200

// cliRoom is a room served in-process on loopback, driven through the CLI
// as partners would, each with its key file in dir.
type cliRoom struct {
	t   *testing.T
	url string
	dir string
	id  string // the room's id
}

func startCLIRoom(t *testing.T) *cliRoom {
	t.Helper()
	r := &cliRoom{t: t, dir: t.TempDir()}
	data := r.path("room")
	if code, _, errs := cli("init", "--data", data); code != 0 {
		t.Fatalf("init: %s", errs)
	}
	defaults := policy.DefaultConstraints()
	defaults.MinListSize = cliMinList
	room, url, _ := serveDataDir(t, data, func(c *cleanroom.Config) {
		c.Defaults, c.CheckpointInterval = &defaults, -1
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	})
	r.url, r.id = url, room.Info().ID
	return r
}

// serveDataDir opens the room of the data directory data (made by
// cleanroom init), with edit's changes to its configuration if edit is not
// nil, and serves it on loopback until stop or the test's end. It returns
// the room and its URL.
func serveDataDir(t *testing.T, data string, edit func(*cleanroom.Config)) (room *cleanroom.Room, url string, stop func()) {
	t.Helper()
	cfg := cleanroom.Config{Dir: cleanroom.DataDir(data)}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	room, err := cleanroom.Open(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		room.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { room.Serve(ctx, ln); close(done) }()
	stop = sync.OnceFunc(func() { cancel(); <-done; room.Close() })
	t.Cleanup(stop)
	return room, "http://" + ln.Addr().String(), stop
}

func (r *cliRoom) path(name string) string { return filepath.Join(r.dir, name) }

// state is the path of file in partner p's state for this room.
func (r *cliRoom) state(p, file string) string { return filepath.Join(r.dir, p+".key.d", r.id, file) }

// as is a command line of partner p's.
func (r *cliRoom) as(p string, args ...string) []string {
	return append(args, "--room", r.url, "--key", r.path(p+".key"))
}

// must runs a command line that must succeed and returns its stdout and
// stderr.
func (r *cliRoom) must(args ...string) (string, string) {
	r.t.Helper()
	code, out, errs := cli(args...)
	if code != 0 {
		r.t.Fatalf("cleanroom %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out, errs
}

// partners makes the partners' keys and registers them.
func (r *cliRoom) partners(ps ...string) {
	r.t.Helper()
	for _, p := range ps {
		out, _ := r.must("keygen", "--name", p, "--out", r.path(p+".key"))
		if err := os.WriteFile(r.path(p+".jwks"), []byte(out), 0o644); err != nil {
			r.t.Fatal(err)
		}
		r.must("partner", "add", "--room", r.url, "--key", r.path("room/operator.key"), "--id", p, "--keys", r.path(p+".jwks"))
	}
}

// fingerprint is what partner p pins others by: its keys' fingerprint.
func (r *cliRoom) fingerprint(p string) string {
	r.t.Helper()
	out, _ := r.must("fingerprint", "--keys", r.path(p+".jwks"))
	return strings.TrimSpace(out)
}

// collab makes a collaboration of coursely and pulsefit that both accepted.
func (r *cliRoom) collab(id, mode string) {
	r.t.Helper()
	r.collabWith(id, mode, `{"allowed_dimensions":["coursely.age_band"],"domains":{"coursely.age_band":["20","30","40","50"]}}`)
}

// collabWith is collab with settings of the caller's.
func (r *cliRoom) collabWith(id, mode, terms string) {
	r.t.Helper()
	settings := r.path(id + ".settings.json")
	os.WriteFile(settings, []byte(terms), 0o644)
	r.must(r.as("coursely", "collab", "create", "--collab", id, "--members", "coursely,pulsefit", "--kind", "email", "--mode", mode, "--settings", settings,
		"--pin", "pulsefit="+r.fingerprint("pulsefit"))...)
	r.must(r.as("pulsefit", "collab", "accept", "--collab", id, "--settings", settings, "--pin", "coursely="+r.fingerprint("coursely"))...)
}

// list writes a CSV of n people from the from-th on, after prefix (a
// byte-order mark, say), and returns its path.
func (r *cliRoom) list(name, prefix string, from, n int) string {
	var b strings.Builder
	b.WriteString(prefix + "email,age_band,spend\n")
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "person%05d@example.com,%d,%d\n", i, 20+i%4*10, i%300)
	}
	os.WriteFile(r.path(name), []byte(b.String()), 0o644)
	return r.path(name)
}

// TestUploadVerb: the mistakes a new user makes with upload fail before the
// room opens an upload and leave nothing behind; the corrected command then
// works as is; a spreadsheet's export uploads; the bar ends at 100%.
func TestUploadVerb(t *testing.T) {
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	r.collab("alliance", api.ModeHashed)
	list := r.list("coursely.csv", "", 0, cliMinList+100)
	saved := r.state("coursely", "alliance.upload.json")

	for _, tc := range []struct {
		name, hint, text string
		args             []string
	}{
		{"a typo in --columns", "name columns exactly as in the CSV's header", `"age_bnd" (field 2 of the first line is close to it`,
			[]string{"--input", list, "--id-column", "email", "--columns", "age_bnd,spend"}},
		{"the id column as an attribute", "send attribute columns only", "the identifier column",
			[]string{"--input", list, "--id-column", "email", "--columns", "email"}},
		{"too few rows", "upload the whole list", "the input has 199 data rows; the collaboration requires at least 200",
			[]string{"--input", r.list("small.csv", "", 0, cliMinList-1), "--id-column", "email"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := cli(r.as("coursely", append([]string{"upload", "--collab", "alliance"}, tc.args...)...)...)
			if code != 1 || !strings.Contains(errs, tc.text) || !strings.Contains(errs, "hint: "+tc.hint) {
				t.Fatalf("exit %d, stderr:\n%s\nwant %q and the hint %q", code, errs, tc.text, tc.hint)
			}
			if strings.Contains(errs, "rows sent") {
				t.Errorf("rows were sent:\n%s", errs)
			}
			if _, err := os.Stat(saved); err == nil {
				t.Fatal("the refused upload saved progress")
			}
		})
	}
	out, errs := r.must(r.as("coursely", "upload", "--collab", "alliance", "--input", list, "--id-column", "email", "--columns", "age_band,spend")...)
	if !strings.Contains(out, fmt.Sprintf("uploaded %d rows to alliance in 1 part (0 resumed", cliMinList+100)) || strings.Contains(errs, "discarded") {
		t.Fatalf("the corrected upload:\n%s%s", out, errs)
	}
	if !strings.HasSuffix(errs, fmt.Sprintf("[%s] 100%%, %d rows sent\n", strings.Repeat("#", 30), cliMinList+100)) {
		t.Errorf("the progress bar does not end full:\n%q", errs)
	}

	// Excel's "CSV UTF-8", over progress saved by another run.
	bomList := r.list("pulsefit.csv", "\ufeff", 100, cliMinList+100)
	os.MkdirAll(filepath.Dir(r.state("pulsefit", "x")), 0o700)
	os.WriteFile(r.state("pulsefit", "alliance.upload.json"), []byte(`{"upload":"up-1","input":"crc32c:00000000:1","digests":{}}`), 0o600)
	out, errs = r.must(r.as("pulsefit", "upload", "--collab", "alliance", "--input", bomList, "--id-column", "email", "--columns", "spend")...)
	if !strings.Contains(out, fmt.Sprintf("uploaded %d rows", cliMinList+100)) ||
		!strings.Contains(errs, "the saved progress of an earlier upload is discarded (the input file changed since); starting over\n") {
		t.Fatalf("the spreadsheet's upload:\n%s%s", out, errs)
	}
	out, _ = r.must(r.as("pulsefit", "status", "--collab", "alliance")...)
	for _, want := range []string{"coursely: 300 rows uploaded; ready to match\n", "pulsefit: 300 rows uploaded; ready to match\n", "  ready to match\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "keys") {
		t.Errorf("hashed status speaks of keys:\n%s", out)
	}
}

// TestUploadDiscardVerb: upload --discard with nothing saved says so; over
// progress naming an upload the room does not hold, it forgets it; over
// progress naming the committed list, the room refuses and the command says
// how that list goes, recording it as committed.
func TestUploadDiscardVerb(t *testing.T) {
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	r.collab("alliance", api.ModeHashed)
	discard := r.as("coursely", "upload", "--collab", "alliance", "--discard")
	code, _, errs := cli(discard...)
	if code != 1 || !strings.Contains(errs, "no upload in progress is saved for this collaboration") || !strings.Contains(errs, "hint: only an interrupted upload is saved") {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}

	saved := r.state("coursely", "alliance.upload.json")
	os.MkdirAll(filepath.Dir(r.state("coursely", "x")), 0o700)
	os.WriteFile(saved, []byte(`{"upload":"up-1","input":"crc32c:00000000:1","digests":{}}`), 0o600)
	if out, _ := r.must(discard...); out != "discarded upload up-1 of alliance: the room deleted the parts it had received\n" {
		t.Errorf("stdout: %q", out)
	}
	if _, err := os.Stat(saved); err == nil {
		t.Error("the progress is still saved")
	}

	r.must(r.as("coursely", "upload", "--collab", "alliance", "--input", r.list("c.csv", "", 0, cliMinList), "--id-column", "email")...)
	var committed struct{ Upload string }
	b, _ := os.ReadFile(r.state("coursely", "alliance.uploaded.json"))
	if err := json.Unmarshal(b, &committed); err != nil {
		t.Fatal(err)
	}
	os.Remove(r.state("coursely", "alliance.uploaded.json"))
	os.WriteFile(saved, []byte(`{"upload":"`+committed.Upload+`","input":"crc32c:00000000:1","digests":{}}`), 0o600)
	code, _, errs = cli(discard...)
	if code != 1 || !strings.Contains(errs, "the room committed that upload already\n") || !strings.Contains(errs, "hint: the list is in the collaboration") {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
	if _, err := os.Stat(saved); err == nil {
		t.Error("the progress of the committed upload is still saved")
	}
	if _, err := os.Stat(r.state("coursely", "alliance.uploaded.json")); err != nil {
		t.Errorf("the committed upload is not recorded: %v", err)
	}
	out, _ := r.must(r.as("coursely", "status", "--collab", "alliance")...)
	if !strings.Contains(out, fmt.Sprintf("coursely: %d rows uploaded", cliMinList)) {
		t.Errorf("status after the refused discard:\n%s", out)
	}
}

// TestSyncWaitVerb: sync --wait says what it waits for and, when it gives
// up, says it again.
func TestSyncWaitVerb(t *testing.T) {
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	r.collab("alliance", api.ModeBlinded)
	r.must(r.as("coursely", "upload", "--collab", "alliance", "--input", r.list("c.csv", "", 0, cliMinList), "--id-column", "email")...)
	code, _, errs := cli(r.as("coursely", "sync", "--collab", "alliance", "--wait", "--timeout", "1500ms")...)
	want := "waiting for pulsefit to upload; pulsefit to re-encrypt coursely's set (it carries 1 of 2 keys)"
	if code != 1 || !strings.Contains(errs, want+" (0s)\n") || !strings.Contains(errs, "gave up after 1.5s, still "+want) ||
		!strings.Contains(errs, "hint: run cleanroom sync --wait again later") {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
	out, _ := r.must(r.as("coursely", "status", "--collab", "alliance")...)
	for _, w := range []string{"coursely: 200 rows uploaded; its set carries 1 of 2 keys\n", "pulsefit: accepted; waiting for upload; 1 set to re-encrypt (cleanroom sync)\n", "  " + want + "\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
}

// TestSignalsStopVerbs runs the built command, waiting in sync --wait, and
// stops it with SIGINT and SIGTERM: it ends at once, says what it was
// waiting for, and exits 130.
func TestSignalsStopVerbs(t *testing.T) {
	bin, err := exec.LookPath("cleanroom") // this test binary, as testscript.Main installed it
	if err != nil {
		t.Skip("no cleanroom command on the PATH")
	}
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	r.collab("alliance", api.ModeHashed)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			// Whatever happens, the child ends within the test's time.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, r.as("coursely", "sync", "--collab", "alliance", "--wait", "--timeout", "15s")...)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(stderr)
			if !lines.Scan() || !strings.HasPrefix(lines.Text(), "waiting for coursely to upload; pulsefit to upload") {
				cmd.Process.Kill()
				t.Fatalf("sync --wait said %q", lines.Text())
			}
			start := time.Now()
			cmd.Process.Signal(sig)
			var rest strings.Builder
			for lines.Scan() {
				rest.WriteString(lines.Text() + "\n")
			}
			err = cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != exitInterrupted || time.Since(start) > 5*time.Second {
				t.Fatalf("after %v: %v, stderr:\n%s", sig, err, rest.String())
			}
			if !strings.Contains(rest.String(), "cleanroom sync: interrupted after") || !strings.Contains(rest.String(), "still waiting for coursely to upload") {
				t.Fatalf("stderr:\n%s", rest.String())
			}
		})
	}
}

// TestInterruptedVerbs: a verb whose context ends (as main's does at a
// signal) says it was interrupted, and what it was doing if it knows, and
// exits 130.
func TestInterruptedVerbs(t *testing.T) {
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	r.collab("alliance", api.ModeHashed)
	for _, tc := range []struct {
		args []string
		// after is what the verb writes to stderr before the signal
		// comes; the signal comes at once if it is empty.
		after string
		want  string
	}{
		{r.as("coursely", "status", "--collab", "alliance"), "", "cleanroom status: interrupted (test signal)\n"},
		{r.as("coursely", "sync", "--collab", "alliance", "--wait"), "waiting for coursely to upload",
			"cleanroom sync: interrupted after 0s, still waiting for coursely to upload; pulsefit to upload\n  hint: run cleanroom sync --wait again to go on\n"},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			var out strings.Builder
			errs := &signalWriter{after: tc.after, signal: func() { cancel(errors.New("test signal")) }}
			if tc.after == "" {
				cancel(errors.New("test signal"))
			}
			done := make(chan int, 1)
			go func() {
				done <- run(&env{ctx: ctx, stdin: strings.NewReader(""), stdout: &out, stderr: errs}, tc.args)
			}()
			select {
			case code := <-done:
				if code != exitInterrupted || !strings.HasSuffix(errs.String(), tc.want) {
					t.Fatalf("exit %d, stderr:\n%s\nwant %q", code, errs.String(), tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("cleanroom %s goes on after its context ended", tc.args[0])
			}
		})
	}
}

// signalWriter collects what a verb writes and calls signal once the
// text holds after: a signal that comes when the verb has reached a
// state, whatever the machine's load.
type signalWriter struct {
	mu     sync.Mutex
	b      strings.Builder
	after  string
	signal func()
	sent   bool
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if !w.sent && w.after != "" && strings.Contains(w.b.String(), w.after) {
		w.sent = true
		w.signal()
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestPrintStatus(t *testing.T) {
	members := []string{"coursely", "pulsefit"}
	accepted := map[string]bool{"coursely": true, "pulsefit": true}
	for _, tc := range []struct {
		name      string
		v         api.Collaboration
		want, not []string
	}{
		{"hashed, one upload", api.Collaboration{Mode: api.ModeHashed, Members: members, Accepted: accepted,
			Datasets: map[string]*api.Dataset{"coursely": {Rows: 1500, Layers: 1, Ready: true}}},
			[]string{"coursely: 1500 rows uploaded; ready to match\n", "pulsefit: accepted; waiting for upload\n", "  waiting for pulsefit to upload\n"},
			[]string{"keys", "sets"}},
		{"blinded, one set to re-encrypt", api.Collaboration{Mode: api.ModeBlinded, Members: members, Accepted: accepted,
			Datasets:            map[string]*api.Dataset{"coursely": {Rows: 1500, Layers: 1}, "pulsefit": {Rows: 1200, Layers: 2, Ready: true}},
			PendingReencryption: map[string]int{"pulsefit": 1}},
			[]string{"coursely: 1500 rows uploaded; its set carries 1 of 2 keys\n",
				"pulsefit: 1200 rows uploaded; ready to match; 1 set to re-encrypt (cleanroom sync)\n",
				"  waiting for pulsefit to re-encrypt coursely's set (it carries 1 of 2 keys)\n"},
			[]string{"1 sets"}},
		{"blinded, two sets to re-encrypt", api.Collaboration{Mode: api.ModeBlinded, Members: []string{"a", "b", "c"},
			Accepted:            map[string]bool{"a": true, "b": true, "c": true},
			Datasets:            map[string]*api.Dataset{"a": {Rows: 1, Layers: 1}, "b": {Rows: 1, Layers: 3, Ready: true}, "c": {Rows: 1, Layers: 1}},
			PendingReencryption: map[string]int{"a": 1, "b": 1}},
			[]string{"b: 1 rows uploaded; ready to match; 1 set to re-encrypt", "waiting for b to re-encrypt a's set (it carries 1 of 3 keys); a to re-encrypt c's set (it carries 1 of 3 keys)"},
			nil},
		{"not accepted", api.Collaboration{Mode: api.ModeBlinded, Members: members, Accepted: map[string]bool{"coursely": true}},
			[]string{"pulsefit: not accepted yet\n", "  waiting for pulsefit to accept the collaboration; coursely to upload\n"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			printStatus(&env{stdout: &out}, &tc.v)
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("no %q in:\n%s", w, out.String())
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out.String(), w) {
					t.Errorf("%q in:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestDecodeJSONFile(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"{\"version\": \"v1\",\n \"metrics\": [\"count\",]\n}", `q.json:2:22: invalid character ']' looking for beginning of value`},
		{"{\"version\": \"v1\",\n \"epsilon\": \"0.5\"\n}", `q.json:2:17: json: cannot unmarshal string into Go struct field QuerySpec.epsilon of type float64`},
		{"{\"version\": \"v1\",\n  \"metricz\": []\n}", `q.json:2:3: unknown field "metricz"`},
		{"{\"version\": \"v1\",\n \"metrics\": [\"count\"]", `q.json:2:22: the document ends too soon`},
		{"{\"version\": \"v1\"}\n{}", `q.json:2:1: more after the end of the document`},
		{"{\"version\": \"é\", \"epsilon\": x}", `q.json:1:29: invalid character 'x'`},
		{"", `q.json: the file is empty`},
	} {
		var q api.QuerySpec
		err := decodeJSONFile("q.json", []byte(tc.in), &q)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: %v\nwant %s", tc.in, err, tc.want)
		}
	}
	var q api.QuerySpec
	if err := decodeJSONFile("q.json", []byte(`{"version":"cleanroom.dev/query/v1","metrics":["count"]}`+"\n"), &q); err != nil || q.Version != api.QueryVersion {
		t.Errorf("a good spec: %v %+v", err, q)
	}
}

func TestVersion(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"a release, from git", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.4.0"},
			Settings: vcs("vcs", "git", "vcs.revision", "4e9a16812b2fd2424bcaee19caf8c965842ebfaf", "vcs.time", "2026-03-01T10:00:00Z", "vcs.modified", "false")},
			"cleanroom v0.4.0 (revision 4e9a16812b2f, 2026-03-01T10:00:00Z) go1.26.8 " + platform},
		{"a modified checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs.revision", "4e9a16812b2fd2424bcaee19caf8c965842ebfaf", "vcs.modified", "true")},
			"cleanroom (devel) (revision 4e9a16812b2f, modified) go1.26.8 " + platform},
		{"-buildvcs=false", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs("-buildmode", "exe")},
			"cleanroom (devel) (revision unknown: built without VCS information) go1.26.8 " + platform},
		{"no build information", nil,
			"cleanroom (unknown) (revision unknown: built without VCS information) " + runtime.Version() + " " + platform},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionLine(tc.info, tc.info != nil); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, errs := cli(args...)
		if code != 0 || !strings.HasPrefix(out, "cleanroom ") || !strings.HasSuffix(out, " "+platform+"\n") {
			t.Errorf("cleanroom %s: exit %d, %q %q", args[0], code, out, errs)
		}
	}
}

// TestCollabCreateHelp: collab create -h names every profile.
func TestCollabCreateHelp(t *testing.T) {
	for _, args := range [][]string{{"collab", "create", "-h"}, {"collab", "-h"}} {
		code, _, errs := cli(args...)
		for _, p := range crypto.Profiles() {
			if code != 0 || !strings.Contains(errs, p) {
				t.Errorf("cleanroom %s: exit %d, no %s in:\n%s", strings.Join(args, " "), code, p, errs)
			}
		}
	}
}
