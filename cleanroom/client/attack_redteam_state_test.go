package client_test

// Red-team attacks on what the client leaves on the partner's disk: the
// state directory's files and modes across an interrupted upload, and
// saved progress another hand edits. Each failed on the code before its
// fix: saved progress with a wrong digest made every rerun fail at the
// commit.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// stateFiles walks a state directory: each entry's mode, and whether any
// file other than a secret holds an identifier form or the secret.
func stateFiles(t *testing.T, dir string, forms [][]byte, secret []byte) (modes map[string]fs.FileMode, leaks []string) {
	t.Helper()
	modes = map[string]fs.FileMode{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		rel, _ := filepath.Rel(dir, p)
		modes[rel] = fi.Mode() & (fs.ModeDir | fs.ModePerm)
		if d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, f := range forms {
			if bytes.Contains(b, f) {
				leaks = append(leaks, rel+" holds an identifier form")
				break
			}
		}
		if !strings.HasSuffix(rel, ".secret") && (bytes.Contains(b, secret) || bytes.Contains(b, []byte(hex.EncodeToString(secret)))) {
			leaks = append(leaks, rel+" holds the collaboration secret")
		}
		return nil
	})
	return modes, leaks
}

// TestAttackRedteamClientLocalState: what the client leaves on disk across
// an upload interrupted after its first part (the context cancelled, as at
// a signal) and its resumption: every file 0600, the state directory 0700,
// no identifier in any file, the secret only in its own file, nothing in
// TMPDIR, nothing left after the commit but the secret, and no row lost or
// sent twice. A state directory that already existed with mode 0755 is
// closed to 0700 (its file names are the collaborations' ids).
func TestAttackRedteamClientLocalState(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	_, w, a, _, _, _ := recordedAlpha(t)
	// A fresh state directory, as KEYFILE.d is the first time: the
	// creator's client makes it, and the secret in it, delivering it again.
	state := client.StateDir(filepath.Join(t.TempDir(), "alpha.key.d"))
	if err := a.DistributeSecret(context.Background(), "c1", state, nil); err != nil {
		t.Fatal(err)
	}
	ks, err := state.LoadSecret(a.Room().ID, "c1")
	if err != nil {
		t.Fatal(err)
	}
	n := minList + 100
	in := rtList(t, 0, n)
	var forms [][]byte
	for i := range n {
		for _, f := range identifierForms(t, rtPerson(i)) {
			forms = append(forms, f)
		}
	}
	spec := client.UploadSpec{Collab: "c1", Input: in, IDColumn: "email", Kind: crypto.KindEmail, Columns: []string{"age_band"}, State: state, RowsPerPart: 50}
	ctx, cancel := context.WithCancel(context.Background())
	s := spec
	s.Progress = func(sent int64, _ float64) {
		if sent > 0 {
			cancel()
		}
	}
	if _, err := a.UploadCSV(ctx, s); err == nil {
		t.Fatal("the interrupted upload finished")
	}
	secret := ks.Bytes()
	check := func(when string) {
		t.Helper()
		modes, leaks := stateFiles(t, string(state), forms, secret)
		t.Logf("%s: %v", when, modes)
		for name, m := range modes {
			want := fs.FileMode(0o600)
			if m.IsDir() {
				want = fs.ModeDir | 0o700
			}
			if m != want {
				t.Errorf("LEAK: %s: %s has mode %04o, want %04o", when, name, m, want)
			}
		}
		for _, l := range leaks {
			t.Errorf("LEAK: %s: %s", when, l)
		}
		if e, _ := os.ReadDir(tmp); len(e) > 0 {
			t.Errorf("LEAK: %s: the client left %d files in TMPDIR", when, len(e))
		}
	}
	check("after the interrupt")
	if !exists(uploadFile(state, "c1")) {
		t.Fatal("no progress saved at the interrupt")
	}
	rep, err := a.UploadCSV(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != int64(n) || rep.Resumed == 0 {
		t.Errorf("the resumed upload: %+v", rep)
	}
	check("after the commit")
	if exists(uploadFile(state, "c1")) {
		t.Error("the progress file outlives the commit")
	}
	// Every row's token reached the room exactly once.
	seen := map[string]int{}
	for _, body := range w.parts()[rep.Upload] {
		part, err := api.ParsePart(body, api.PartLimits{Columns: 1, MaxRows: api.MaxRowsPerPart})
		if err != nil {
			t.Fatal(err)
		}
		for r := range part.Rows {
			seen[string(part.Tokens[r*api.TokenSize:(r+1)*api.TokenSize])]++
		}
	}
	if len(seen) != n {
		t.Errorf("LOSS: %d distinct tokens reached the room's upload, want %d", len(seen), n)
	}

	// A state directory the user made beforehand with mode 0755.
	loose := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(loose, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(loose, 0o755)
	if err := a.DistributeSecret(context.Background(), "c1", client.StateDir(loose), nil); err != nil {
		t.Fatal(err)
	}
	ls := spec
	ls.State = client.StateDir(loose)
	ctx2, cancel2 := context.WithCancel(context.Background())
	ls.Progress = func(sent int64, _ float64) {
		if sent > 0 {
			cancel2()
		}
	}
	a.UploadCSV(ctx2, ls)
	lks, err := ls.State.LoadSecret(a.Room().ID, "c1")
	if err != nil {
		t.Fatal(err)
	}
	modes, leaks := stateFiles(t, loose, forms, lks.Bytes())
	t.Logf("a state directory made 0755 beforehand, after an interrupted upload: %v", modes)
	for name, m := range modes {
		if m&0o077 != 0 {
			t.Errorf("LEAK: %s has mode %04o in a 0755 state directory", name, m)
		}
	}
	for _, l := range leaks {
		t.Errorf("LEAK: %s", l)
	}
}

// TestAttackRedteamClientTamperedResume: another hand edits the saved
// progress of an interrupted upload (same user, or a state directory
// others can write). It points the upload at another member's open upload,
// at a path outside the collaboration, and gives a part the room holds a
// wrong digest. Measured: where the client's requests go, whether another
// member's upload receives anything, and whether the upload still
// completes by running it again (the promise: an interrupted upload
// resumes and nothing is lost).
func TestAttackRedteamClientTamperedResume(t *testing.T) {
	_, w, a, b, sa, sb := recordedAlpha(t)
	n := minList + 100
	interrupt := func(c *client.Client, spec client.UploadSpec) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		spec.Progress = func(sent int64, _ float64) {
			if sent > 0 {
				cancel()
			}
		}
		if _, err := c.UploadCSV(ctx, spec); err == nil {
			t.Fatal("the interrupted upload finished")
		}
	}
	specA := client.UploadSpec{Collab: "c1", Input: rtList(t, 0, n), IDColumn: "email", Kind: crypto.KindEmail, State: sa, RowsPerPart: 50}
	specB := client.UploadSpec{Collab: "c1", Input: rtList(t, 1000, n), IDColumn: "email", Kind: crypto.KindEmail, State: sb, RowsPerPart: 50}
	interrupt(b, specB)
	var bravoState map[string]any
	bb, _ := os.ReadFile(uploadFile(sb, "c1"))
	json.Unmarshal(bb, &bravoState)
	bravoUpload, _ := bravoState["upload"].(string)

	edit := func(f func(st map[string]any)) {
		t.Helper()
		var st map[string]any
		raw, err := os.ReadFile(uploadFile(sa, "c1"))
		if err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(raw, &st)
		f(st)
		out, _ := json.Marshal(st)
		os.WriteFile(uploadFile(sa, "c1"), out, 0o600)
	}
	for _, tc := range []struct {
		name string
		f    func(st map[string]any)
	}{
		{"another member's upload", func(st map[string]any) { st["upload"] = bravoUpload }},
		{"a path outside the collaboration", func(st map[string]any) { st["upload"] = "../../../principals" }},
		{"a wrong digest for a part the room holds", func(st map[string]any) {
			d := st["digests"].(map[string]any)
			for k := range d {
				d[k] = strings.Repeat("0", 64)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			interrupt(a, specA)
			edit(tc.f)
			w.mu.Lock()
			w.reqs = nil
			w.mu.Unlock()
			var notices []string
			spec := specA
			spec.Notice = func(m string) { notices = append(notices, m) }
			runs := 0
			var rep *client.UploadReport
			var err error
			for runs < 3 {
				runs++
				if rep, err = a.UploadCSV(context.Background(), spec); err == nil {
					break
				}
			}
			for _, r := range w.snapshot() {
				u, _ := url.Parse(r.url)
				if r.method != "GET" && !strings.HasPrefix(u.EscapedPath(), "/v1/collaborations/c1/uploads") {
					t.Errorf("LEAK: a change went outside the collaboration's uploads: %s %s", r.method, u.EscapedPath())
				}
				if bravoUpload != "" && strings.Contains(u.Path, "/uploads/"+bravoUpload+"/") && r.method != "GET" {
					t.Errorf("LEAK: alpha's data was sent to bravo's upload: %s %s", r.method, u.Path)
				}
			}
			t.Logf("runs %d, last error %v, report %+v, notices %q", runs, err, rep, notices)
			if err != nil {
				t.Errorf("STUCK: after the edit, %d runs of the same command did not complete the upload: %v", runs, err)
			} else if rep.Rows != int64(n) {
				t.Errorf("LOSS: the upload committed %d rows, want %d", rep.Rows, n)
			}
		})
	}
	// bravo's own upload is unharmed: it resumes and commits its rows.
	rep, err := b.UploadCSV(context.Background(), specB)
	if err != nil || rep.Rows != int64(n) {
		t.Errorf("bravo's upload after alpha's edits: %+v, %v", rep, err)
	}
}
