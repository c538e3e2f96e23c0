package main

// The CLI as a careless user runs it, against the promise "bad input gets
// a clear error, and nothing is lost": an --out that is the --input, a
// killed upload's leftovers, a clock off the room's, public keys given as
// the key, another room's verifier key, a room gone mid-upload, a file
// separated by semicolons, a directory given as an output file.

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestCLIRedteamOutIsInput: "--out" naming the very file given as
// "--input" replaces the customer list: activate leaves only the audience
// (20% of the list, say) and model apply a rewritten file, both exit 0.
// The whole list is lost, and the activation it spent cannot be redone
// from it.
func TestCLIRedteamOutIsInput(t *testing.T) {
	r, list, _ := activationRoom(t)
	spec := r.path("model-spec.json")
	os.WriteFile(spec, []byte(`{"version":"cleanroom.dev/model-spec/v1","label":{"column":"pulsefit.converted"},"features":["coursely.age_band"],"epsilon":0.5}`), 0o644)
	r.must(r.as("coursely", "model", "train", "--collab", "alliance", "--spec", spec, "--out", r.path("lookalike.json"))...)
	orig, _ := os.ReadFile(list)
	seg := r.path("segment.json")
	os.WriteFile(seg, []byte(`{"version":"cleanroom.dev/segment/v1","filters":[{"column":"coursely.age_band","op":"in","values":["20","30"]}]}`), 0o644)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"activate", r.as("coursely", "activate", "--collab", "alliance", "--segment", seg, "--input", list, "--id-column", "email", "--out", list)},
		{"model apply", []string{"model", "apply", "--model", r.path("lookalike.json"), "--input", list, "--out", list}},
		// the same file by another name
		{"model apply ./", []string{"model", "apply", "--model", r.path("lookalike.json"), "--input", list,
			"--out", filepath.Join(filepath.Dir(list), ".", filepath.Base(list))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(list, orig, 0o644)
			code, out, errs := cli(tc.args...)
			got, _ := os.ReadFile(list)
			t.Logf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
			if !bytes.Equal(got, orig) {
				t.Errorf("LOST: --out %s overwrote --input: the list of %d bytes is now %d bytes (exit %d)", filepath.Base(list), len(orig), len(got), code)
			}
			if code == 0 {
				t.Errorf("exit 0 for --out = --input; want a refusal that says --out names the input")
			}
		})
	}
}

// TestCLIRedteamDiscardLeavesSpill: a run of upload killed (SIGKILL, a
// power cut) leaves its spill files, KEYFILE.d/ROOM/COLLAB.rows-*, which
// hold the unkeyed SHA-256 match keys of every identifier of the list.
// "upload --discard", which README says makes "the progress saved here
// go", leaves them (42 MB for a 1M-row list in a manual run); only a
// later upload of the same collaboration removes them.
func TestCLIRedteamDiscardLeavesSpill(t *testing.T) {
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	r.collab("alliance", api.ModeHashed)
	saved := r.state("coursely", "alliance.upload.json")
	os.MkdirAll(filepath.Dir(saved), 0o700)
	os.WriteFile(saved, []byte(`{"upload":"up-1","input":"crc32c:00000000:1","digests":{}}`), 0o600)
	spill := r.state("coursely", "alliance.rows-123456")
	os.WriteFile(spill, bytes.Repeat([]byte{0xab}, 4096), 0o600) // what a killed run leaves
	r.must(r.as("coursely", "upload", "--collab", "alliance", "--discard")...)
	if _, err := os.Stat(spill); err == nil {
		t.Errorf("LEFTOVER: upload --discard left %s, a killed run's spill of match keys", filepath.Base(spill))
	}
}

// TestCLIRedteamClockSkew: a partner whose clock is 10 minutes off the
// room's (either way) gets "authentication failed (401): the token's
// claims are invalid: aud must be this room, and exp, iat and jti are
// required ..." and the hint "is this the key the operator registered,
// for this room?": nothing says the clock is wrong, though the room's
// answer carries its Date.
func TestCLIRedteamClockSkew(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "room")
	if code, _, errs := cli("init", "--data", data); code != 0 {
		t.Fatal(errs)
	}
	serve := func(skew time.Duration) (string, func()) {
		_, url, stop := serveDataDir(t, data, func(c *cleanroom.Config) {
			c.CheckpointInterval, c.Now = -1, func() time.Time { return time.Now().Add(skew) }
			c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		})
		return url, stop
	}
	u, stop := serve(0)
	_, out, _ := cli("keygen", "--name", "coursely", "--out", filepath.Join(dir, "coursely.key"))
	os.WriteFile(filepath.Join(dir, "coursely.jwks"), []byte(out), 0o644)
	if code, _, errs := cli("partner", "add", "--room", u, "--key", filepath.Join(data, "operator.key"), "--id", "coursely", "--keys", filepath.Join(dir, "coursely.jwks")); code != 0 {
		t.Fatal(errs)
	}
	stop()
	for _, skew := range []time.Duration{10 * time.Minute, -10 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			u, stop := serve(skew)
			defer stop()
			code, _, errs := cli("budget", "--room", u, "--key", filepath.Join(dir, "coursely.key"), "--collab", "x")
			t.Logf("exit %d\nstderr: %s", code, errs)
			if code == 0 || !strings.Contains(strings.ToLower(errs), "clock") {
				t.Errorf("UNCLEAR: a clock %v off the room's is not named as the cause", skew)
			}
		})
	}
}

// TestCLIRedteamPublicKeysAsKey: README writes the public JWK set with
// "> coursely.jwks" (mode 0644 under the usual umask); passed to --key by
// mistake it is reported as "secret file is readable by group or others
// (mode 0644)", which sends the user to chmod the public keys. Only after
// the chmod does the same command say it is the public JWK set.
func TestCLIRedteamPublicKeysAsKey(t *testing.T) {
	dir := t.TempDir()
	_, out, _ := cli("keygen", "--name", "coursely", "--out", filepath.Join(dir, "coursely.key"))
	jwks := filepath.Join(dir, "coursely.jwks")
	os.WriteFile(jwks, []byte(out), 0o644)
	for _, args := range [][]string{
		{"status", "--room", "http://127.0.0.1:1", "--key", jwks, "--collab", "x"},
		{"fingerprint", "--key", jwks},
	} {
		code, _, errs := cli(args...)
		t.Logf("%s: exit %d\nstderr: %s", args[0], code, errs)
		if code == 0 || !strings.Contains(errs, "public JWK set") || strings.Contains(errs, "secret file is readable") {
			t.Errorf("MISLEADING (%s): a public JWK set given as --key is reported as a secret file with loose permissions", args[0])
		}
	}
}

// TestCLIRedteamVerifyWrongRoomKey: an auditor who verifies a bundle with
// another room's verifier key (two rooms, one auditor) reads "audit
// bundle: latest checkpoint: invalid checkpoint: note has no verifiable
// signatures" with no hint: it reads as a forged checkpoint, not as the
// wrong --key; the bundle names its log's origin, which could be compared
// with the key's.
func TestCLIRedteamVerifyWrongRoomKey(t *testing.T) {
	dir := t.TempDir()
	keyOf := func(data string) string {
		code, out, errs := cli("init", "--data", data)
		if code != 0 {
			t.Fatal(errs)
		}
		k := regexp.MustCompile(`cleanroom/room-\S+`).FindString(out)
		if k == "" {
			t.Fatalf("no verifier key in %q", out)
		}
		return k
	}
	keyOf(filepath.Join(dir, "a"))
	other := keyOf(filepath.Join(dir, "b"))
	bundle := filepath.Join(dir, "a.bundle")
	if code, _, errs := cli("audit", "export", "--data", filepath.Join(dir, "a"), "--out", bundle); code != 0 {
		t.Fatal(errs)
	}
	code, out, errs := cli("audit", "verify", bundle, "--key", other)
	t.Logf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	if code == 0 || !strings.Contains(errs, "--key") {
		t.Errorf("UNCLEAR: verifying with another room's key does not say the key is not this log's (no hint on --key)")
	}
}

// TestCLIRedteamUploadRoomGone: the room goes away (crash, restart) while
// parts are sent. upload retries, then ends with the bare transport error
// ("sending part 1: Put \"http://.../uploads/up-.../parts/1\": ...") and no
// hint that the progress is kept and the same command resumes it, nor to
// check the room: a new user re-uploads from scratch or discards.
func TestCLIRedteamUploadRoomGone(t *testing.T) {
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	r.collab("alliance", api.ModeHashed)
	target, _ := url.Parse(r.url)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/parts/") {
			// the room died: the connection drops
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		rp.ServeHTTP(w, req)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go proxy.Serve(ln)
	defer proxy.Close()
	list := r.list("c.csv", "", 0, cliMinList+50)
	code, _, errs := cli("upload", "--room", "http://"+ln.Addr().String(), "--key", r.path("coursely.key"), "--collab", "alliance",
		"--input", list, "--id-column", "email", "--columns", "age_band")
	t.Logf("exit %d\nstderr: %s", code, errs)
	if code == 0 {
		t.Fatal("upload succeeded through a dead room")
	}
	if !strings.Contains(errs, "hint:") || !strings.Contains(errs, "again") {
		t.Errorf("UNCLEAR: an upload cut off by the room gives no hint that running it again resumes it")
	}
}

// TestCLIRedteamSemicolonCSV: a spreadsheet's export with ';' separators
// (the default in much of Europe) gets "the header, the file's first line,
// has 1 fields; is it there, with the column named so?": the separator,
// the actual cause, is never named.
func TestCLIRedteamSemicolonCSV(t *testing.T) {
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	r.collab("alliance", api.ModeHashed)
	var b strings.Builder
	b.WriteString("email;age_band\n")
	for i := range cliMinList + 10 {
		fmt.Fprintf(&b, "person%05d@example.com;%d\n", i, 20+i%4*10)
	}
	in := r.path("semi.csv")
	os.WriteFile(in, []byte(b.String()), 0o644)
	code, _, errs := cli(r.as("coursely", "upload", "--collab", "alliance", "--input", in, "--id-column", "email", "--columns", "age_band")...)
	t.Logf("exit %d\nstderr: %s", code, errs)
	if code == 0 || !(strings.Contains(errs, "semicolon") || strings.Contains(errs, "';'") || strings.Contains(errs, "comma")) {
		t.Errorf("UNCLEAR: a ';'-separated file is not named as such")
	}
}

// TestCLIRedteamOutIsDirectory: an output path that is a directory gets
// "rename ./.room.2622750558 room: file exists" (model apply --out,
// audit verify --save-checkpoint): the temporary name leaks into the
// message and "file exists" misdescribes a directory.
func TestCLIRedteamOutIsDirectory(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "room")
	code, out, errs := cli("init", "--data", data)
	if code != 0 {
		t.Fatal(errs)
	}
	key := regexp.MustCompile(`cleanroom/room-\S+`).FindString(out)
	bundle := filepath.Join(dir, "a.bundle")
	if code, _, errs := cli("audit", "export", "--data", data, "--out", bundle); code != 0 {
		t.Fatal(errs)
	}
	code, _, errs = cli("audit", "verify", bundle, "--key", key, "--save-checkpoint", data)
	t.Logf("exit %d\nstderr: %s", code, errs)
	if code == 0 || !strings.Contains(errs, "is a directory") || regexp.MustCompile(`/\.room\.\d+`).MatchString(errs) {
		t.Errorf("UNCLEAR: --save-checkpoint DIR is not reported as a directory")
	}
}

// TestUploadVerbCountsNumericValues: upload says, for a column with
// bounds, how many values are blank or not numbers and how many lie
// outside the bounds, and --json carries the counts; the values
// themselves are never printed.
func TestUploadVerbCountsNumericValues(t *testing.T) {
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	r.collabWith("alliance", api.ModeHashed, `{"bounds":{"coursely.spend":[0,250]}}`)
	var b strings.Builder
	b.WriteString("email,age_band,spend\n")
	for i := range cliMinList + 100 {
		spend := strconv.Itoa(i % 300) // 251..299 are above the bounds
		switch i {
		case 7:
			spend = "n/a-secret"
		case 8:
			spend = ""
		}
		fmt.Fprintf(&b, "person%05d@example.com,%d,%s\n", i, 20+i%4*10, spend)
	}
	in := r.path("coursely.csv")
	if err := os.WriteFile(in, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	above := 0
	for i := range cliMinList + 100 {
		if i%300 > 250 && i != 7 && i != 8 {
			above++
		}
	}
	_, errs := r.must(r.as("coursely", "upload", "--collab", "alliance", "--input", in, "--id-column", "email", "--columns", "age_band,spend")...)
	for _, want := range []string{`column "spend": 2 values are blank or not numbers`, fmt.Sprintf(`column "spend": %d values are outside the column's bounds`, above)} {
		if !strings.Contains(errs, want) {
			t.Errorf("upload did not say %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "secret") || strings.Contains(errs, "age_band") {
		t.Errorf("upload printed a value, or counted a column without bounds:\n%s", errs)
	}
}

// TestUploadVerbBadValue: a value the room cannot take stops upload with
// its line and column and what to do, never the value.
func TestUploadVerbBadValue(t *testing.T) {
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	r.collab("alliance", api.ModeHashed)
	var b strings.Builder
	b.WriteString("email,age_band,spend\n")
	for i := range cliMinList + 10 {
		spend := strconv.Itoa(i)
		if i == 20 {
			spend = "secret caf\xe9"
		}
		fmt.Fprintf(&b, "person%05d@example.com,%d,%s\n", i, 20+i%4*10, spend)
	}
	in := r.path("coursely.csv")
	if err := os.WriteFile(in, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := cli(r.as("coursely", "upload", "--collab", "alliance", "--input", in, "--id-column", "email", "--columns", "age_band,spend")...)
	if code == 0 {
		t.Fatal("upload took a value that is not UTF-8")
	}
	for _, want := range []string{`line 22: the value of column "spend" is not UTF-8 text`, "save the file as UTF-8"} {
		if !strings.Contains(errs, want) {
			t.Errorf("upload did not say %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "secret") {
		t.Errorf("upload printed the value:\n%s", errs)
	}
}
