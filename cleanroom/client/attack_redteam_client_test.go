package client_test

// Red-team attacks on the partner's side (the client): what it sends to the
// room, what its errors say, what it leaves on disk, and what the order and
// sizes of what it sends teach the room's operator (the pins have a file of
// their own). Each test measures against a real room on loopback, with
// every byte the client sends recorded by its transport. Each failed on
// the code before its fix: rows went in the file's order; a headerless
// file's first row, an identifier, was echoed in an error; saved progress
// with a wrong digest made every rerun fail at the commit.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// wireRecorder is a transport that keeps every request a client sends, its
// method, URL, headers and body, byte for byte, before passing it on.
type wireRecorder struct {
	mu   sync.Mutex
	reqs []wireReq
}

type wireReq struct {
	method, url string
	header      http.Header
	body        []byte
}

func (w *wireRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	w.mu.Lock()
	w.reqs = append(w.reqs, wireReq{req.Method, req.URL.String(), req.Header.Clone(), body})
	w.mu.Unlock()
	r2 := req.Clone(req.Context())
	if body != nil {
		r2.Body = io.NopCloser(bytes.NewReader(body))
		r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return http.DefaultTransport.RoundTrip(r2)
}

func (w *wireRecorder) snapshot() []wireReq {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.reqs)
}

// all is every byte sent: request lines, headers (with every JWT segment
// decoded as well) and bodies.
func (w *wireRecorder) all() []byte {
	var b bytes.Buffer
	for _, r := range w.snapshot() {
		fmt.Fprintf(&b, "%s %s\n", r.method, r.url)
		if u, err := url.PathUnescape(r.url); err == nil {
			fmt.Fprintf(&b, "%s\n", u)
		}
		for k, vs := range r.header {
			for _, v := range vs {
				fmt.Fprintf(&b, "%s: %s\n", k, v)
				for _, seg := range strings.Split(strings.TrimPrefix(v, "Bearer "), ".") {
					if d, err := base64.RawURLEncoding.DecodeString(seg); err == nil {
						b.Write(d)
						b.WriteByte('\n')
					}
				}
			}
		}
		b.Write(r.body)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// parts returns the bodies of the upload parts sent, by upload and part
// number (the last try of each).
func (w *wireRecorder) parts() map[string]map[int][]byte {
	out := map[string]map[int][]byte{}
	for _, r := range w.snapshot() {
		u, _ := url.Parse(r.url)
		segs := strings.Split(u.Path, "/")
		if r.method != http.MethodPut || len(segs) < 4 || segs[len(segs)-2] != "parts" || segs[len(segs)-4] != "uploads" {
			continue
		}
		var n int
		fmt.Sscan(segs[len(segs)-1], &n)
		up := segs[len(segs)-3]
		if out[up] == nil {
			out[up] = map[int][]byte{}
		}
		out[up][n] = r.body
	}
	return out
}

// rtPerson is one person of the red-team lists: the identifier as the file
// holds it (mixed case, padded), so that raw, trimmed and normalized forms
// all differ.
func rtPerson(i int) string {
	return fmt.Sprintf("  Rt%05d.Quixotic-Person@Example-Mail.ORG ", i)
}

// rtList writes the people from..from+n with attributes unrelated to the
// identifiers, in ascending order.
func rtList(t *testing.T, from, n int) string {
	t.Helper()
	rows := make([]string, n)
	for i := range rows {
		p := from + i
		rows[i] = fmt.Sprintf("%q,%d,%d", rtPerson(p), 20+p%4*10, p%97)
	}
	return writeCSV(t, "email,age_band,spend", rows)
}

// identifierForms are the byte strings from which a person's identifier can
// be read or tested: the raw and normalized forms and their local part, the
// match key (the plain SHA-256 of the normalized form) in every encoding,
// a truncated match key, the SHA-256 of the raw form, the unkeyed HMAC and
// SHA-256 of hex(match key).
func identifierForms(t *testing.T, raw string) map[string][]byte {
	t.Helper()
	p, err := crypto.LookupProfile(crypto.ProfilePAIRv1, crypto.ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	norm, err := p.Normalize(crypto.KindEmail, raw)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := p.MatchKey(crypto.KindEmail, raw)
	if err != nil {
		t.Fatal(err)
	}
	hx := mk.String()
	rawHash := sha256.Sum256([]byte(strings.TrimSpace(raw)))
	unkeyed := hmac.New(sha256.New, nil)
	unkeyed.Write([]byte(hx))
	hexHash := sha256.Sum256([]byte(hx))
	local, _, _ := strings.Cut(norm, "@")
	return map[string][]byte{
		"raw":                  []byte(raw),
		"trimmed raw":          []byte(strings.TrimSpace(raw)),
		"normalized":           []byte(norm),
		"normalized local":     []byte(local),
		"raw local":            []byte(strings.TrimSpace(raw)[:len(local)]),
		"match key":            mk[:],
		"match key[:12]":       mk[:12],
		"hex(match key)":       []byte(hx),
		"HEX(match key)":       []byte(strings.ToUpper(hx)),
		"b64(match key)":       []byte(base64.StdEncoding.EncodeToString(mk[:])),
		"b64url(match key)":    []byte(base64.RawURLEncoding.EncodeToString(mk[:])),
		"sha256(raw)":          rawHash[:],
		"hex(sha256(raw))":     []byte(hex.EncodeToString(rawHash[:])),
		"hmac(nil,hex(mk))":    unkeyed.Sum(nil),
		"sha256(hex(mk))":      hexHash[:],
		"hex(sha256(hex(mk)))": []byte(hex.EncodeToString(hexHash[:])),
	}
}

// recordedAlpha starts a room with alpha, whose requests w records, and
// bravo, members of the hashed collaboration c1.
func recordedAlpha(t *testing.T) (rm *room, w *wireRecorder, a, b *client.Client, sa, sb client.StateDir) {
	rm = startRoom(t)
	w = new(wireRecorder)
	a, _ = rm.partnerVia("alpha", rm.url, client.Options{HTTP: &http.Client{Transport: w}})
	b = rm.partner("bravo", nil)
	sa, sb = rm.collab("c1", api.ModeHashed, nil, a, b)
	return rm, w, a, b, sa, sb
}

// TestAttackRedteamClientWireNoIdentifier records every byte two partners'
// clients send through a whole collaboration (create, secret delivery,
// accept, upload, re-encryption in blinded mode, match, a query) and
// searches them for every form of every person's identifier from which it
// could be read or tested without the collaboration secret.
func TestAttackRedteamClientWireNoIdentifier(t *testing.T) {
	for _, mode := range []string{api.ModeHashed, api.ModeBlinded} {
		t.Run(mode, func(t *testing.T) {
			rm := startRoom(t)
			var wa, wb wireRecorder
			a, _ := rm.partnerVia("alpha", rm.url, client.Options{HTTP: &http.Client{Transport: &wa}})
			b, _ := rm.partnerVia("bravo", rm.url, client.Options{HTTP: &http.Client{Transport: &wb}})
			sa, sb := rm.collab("c1", mode, nil, a, b)
			ctx := context.Background()
			la, lb := rtList(t, 0, minList+100), rtList(t, 150, minList+100)
			for _, u := range []struct {
				c     *client.Client
				state client.StateDir
				in    string
			}{{a, sa, la}, {b, sb, lb}} {
				if _, err := u.c.UploadCSV(ctx, client.UploadSpec{Collab: "c1", Input: u.in, IDColumn: "email", Kind: crypto.KindEmail,
					Columns: []string{"age_band", "spend"}, State: u.state, RowsPerPart: 64}); err != nil {
					t.Fatal(err)
				}
			}
			if mode == api.ModeBlinded {
				sctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				var wg sync.WaitGroup
				errs := make([]error, 2)
				for i, c := range []*client.Client{a, b} {
					wg.Go(func() { _, errs[i] = c.Sync(sctx, "c1", true, 50*time.Millisecond) })
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			if _, err := a.Match(ctx, "c1"); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.5}); err != nil {
				t.Fatal(err)
			}

			sent := append(wa.all(), wb.all()...)
			hits := map[string]int{}
			people := 0
			for i := range 450 {
				people++
				for form, pat := range identifierForms(t, rtPerson(i)) {
					if bytes.Contains(sent, pat) {
						hits[form]++
					}
				}
			}
			// The input files' names and fingerprints are the partner's
			// business too.
			for _, in := range []string{la, lb} {
				if bytes.Contains(sent, []byte(in)) || bytes.Contains(sent, []byte(filepath.Dir(in))) {
					hits["input path"]++
				}
			}
			t.Logf("%s: %d requests, %d bytes sent; %d people x %d forms searched; hits %v",
				mode, len(wa.snapshot())+len(wb.snapshot()), len(sent), people, len(identifierForms(t, rtPerson(0))), hits)
			if len(hits) > 0 {
				t.Errorf("LEAK: the bytes the clients sent hold identifier forms: %v", hits)
			}
		})
	}
}

// TestAttackRedteamClientPartShapeIndependentOfIdentifiers: the room sees
// each part's size and row count. Identifiers of 20 or 200 characters, and
// invalid rows (skipped) sprinkled in the file, must not change a single
// part's size: the size follows the attribute values' lengths only, which
// are the same for every row here (the upload's order mixes the rows, and
// each file has an order of its own).
func TestAttackRedteamClientPartShapeIndependentOfIdentifiers(t *testing.T) {
	rm := startRoom(t)
	var w wireRecorder
	a, _ := rm.partnerVia("alpha", rm.url, client.Options{HTTP: &http.Client{Transport: &w}})
	b := rm.partner("bravo", nil)
	lists := map[string][]string{}
	n := minList + 56
	for i := range n {
		attrs := fmt.Sprintf("%d,%02d", 20+i%4*10, i%97)
		lists["short"] = append(lists["short"], fmt.Sprintf("s%d@x.io,%s", i, attrs))
		lists["long"] = append(lists["long"], fmt.Sprintf("%s%d@%s.example.org,%s", strings.Repeat("l", 150), i, strings.Repeat("d", 40), attrs))
		lists["invalid rows"] = append(lists["invalid rows"], fmt.Sprintf("v%d@x.io,%s", i, attrs))
		if i%7 == 3 {
			lists["invalid rows"] = append(lists["invalid rows"], fmt.Sprintf("not-an-email-%d,%s", i, attrs))
		}
	}
	sizes := map[string][]int{}
	for k, name := range []string{"short", "long", "invalid rows"} {
		id := fmt.Sprintf("c%d", k)
		sa, _ := rm.collab(id, api.ModeHashed, nil, a, b)
		before := len(w.parts())
		rep, err := a.UploadCSV(context.Background(), client.UploadSpec{Collab: id, Input: writeCSV(t, "email,age_band,spend", lists[name]),
			IDColumn: "email", Kind: crypto.KindEmail, Columns: []string{"age_band", "spend"}, State: sa, RowsPerPart: 64})
		if err != nil {
			t.Fatal(err)
		}
		parts := w.parts()
		if len(parts) != before+1 {
			t.Fatalf("%d uploads recorded", len(parts))
		}
		up := parts[rep.Upload]
		for p := range len(up) {
			sizes[name] = append(sizes[name], len(up[p]))
		}
	}
	t.Logf("part sizes: %v", sizes)
	if !slices.Equal(sizes["short"], sizes["long"]) || !slices.Equal(sizes["short"], sizes["invalid rows"]) {
		t.Errorf("LEAK: part sizes depend on the identifiers or on where invalid rows are: %v", sizes)
	}
}

// spearman is the rank correlation of two permutations of 0..n-1.
func spearman(x, y []int) float64 {
	n := float64(len(x))
	var d2 float64
	for i := range x {
		d := float64(x[i] - y[i])
		d2 += d * d
	}
	return 1 - 6*d2/(n*(n*n-1))
}

// TestAttackRedteamClientUploadOrderFollowsInput: the operator holds every
// part. It cannot compute a token, but it sees the position of each token
// in the upload. Partners' exports are often sorted (by email, by sign-up
// date); if the upload keeps the file's order, the operator learns for each
// token, and so for each matched row with its attributes, where its
// identifier sorts in the member's list. Measured in hashed mode with the
// test holding the secret: each row's token is found in the parts and its
// position compared with the row's place in the file, within each part and
// over the upload. The client sends the rows in a keyed order of its own
// (order.go): the correlation is at chance (it was 1.000 overall and in
// every part, every row at its input position, in the file's order).
func TestAttackRedteamClientUploadOrderFollowsInput(t *testing.T) {
	_, w, a, _, sa, _ := recordedAlpha(t)
	// A list sorted by email, as a CRM export often is.
	n := minList + 200
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%c%05d@example.org", 'a'+i*26/n, (i*7919)%100000)
	}
	sort.Strings(ids)
	rows := make([]string, n)
	for i, id := range ids {
		rows[i] = fmt.Sprintf("%s,%d", id, 20+i%4*10)
	}
	in := writeCSV(t, "email,age_band", rows)
	rep, err := a.UploadCSV(context.Background(), client.UploadSpec{Collab: "c1", Input: in, IDColumn: "email", Kind: crypto.KindEmail,
		Columns: []string{"age_band"}, State: sa, RowsPerPart: 100})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := sa.LoadSecret(a.Room().ID, "c1")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := crypto.LookupProfile(crypto.ProfilePAIRv1, crypto.ProfileOptions{})
	keys := make([]crypto.MatchKey, n)
	for i, id := range ids {
		keys[i], _ = p.MatchKey(crypto.KindEmail, id)
	}
	toks := make([]crypto.Token, n)
	if err := crypto.HashTokens(context.Background(), ks, toks, keys); err != nil {
		t.Fatal(err)
	}
	where := map[crypto.Token]int{}
	for i, tk := range toks {
		where[tk] = i
	}
	parts := w.parts()[rep.Upload]
	var uploaded []int // input row of each uploaded position
	var withinRho []float64
	for pn := range len(parts) {
		part, err := api.ParsePart(parts[pn], api.PartLimits{Columns: 1, MaxRows: api.MaxRowsPerPart})
		if err != nil {
			t.Fatal(err)
		}
		var inPart []int
		for r := range part.Rows {
			tk := crypto.Token(part.Tokens[r*api.TokenSize : (r+1)*api.TokenSize])
			i, ok := where[tk]
			if !ok {
				t.Fatalf("part %d row %d: a token of no input row", pn, r)
			}
			inPart = append(inPart, i)
		}
		uploaded = append(uploaded, inPart...)
		if len(inPart) > 2 {
			// Ranks within the part: position vs the rows' input order.
			ord := slices.Clone(inPart)
			slices.Sort(ord)
			rank := make([]int, len(inPart))
			pos := make([]int, len(inPart))
			for j, v := range inPart {
				rank[j], _ = slices.BinarySearch(ord, v)
				pos[j] = j
			}
			withinRho = append(withinRho, spearman(pos, rank))
		}
	}
	same := 0
	pos := make([]int, len(uploaded))
	for j, i := range uploaded {
		pos[j] = j
		if i == j {
			same++
		}
	}
	overall := spearman(pos, uploaded)
	minWithin := math.Inf(1)
	for _, r := range withinRho {
		minWithin = min(minWithin, math.Abs(r))
	}
	maxWithin := 0.0
	for _, r := range withinRho {
		maxWithin = max(maxWithin, math.Abs(r))
	}
	t.Logf("%d rows in %d parts: %d at their input position; rank correlation with the input (sorted by email) %.3f overall, |rho| within parts %.3f-%.3f",
		n, len(parts), same, overall, minWithin, maxWithin)
	// A permutation the operator cannot undo would give |rho| around
	// 1/sqrt(rows per part) = 0.1 within parts and 1/sqrt(rows) = 0.05
	// overall; 0.5 and 0.25 are five deviations.
	if maxWithin > 0.5 || math.Abs(overall) > 0.25 || same > n/10 {
		t.Errorf("LEAK: the upload keeps the input file's order (%d of %d rows at their input position, within-part |rho| up to %.3f): "+
			"the operator learns where each token's identifier sorts in a sorted export", same, n, maxWithin)
	}
}

// TestAttackRedteamClientErrorsEchoNoValues crafts inputs whose every
// identifier and value carries a marker, for each way an upload or an
// audience's mapping can go wrong, and searches every error, skipped row's
// reason and notice for the markers.
func TestAttackRedteamClientErrorsEchoNoValues(t *testing.T) {
	rm := startRoom(t)
	a := rm.partner("alpha", nil)
	b := rm.partner("bravo", nil)
	sa, _ := rm.collab("c1", api.ModeHashed, nil, a, b)
	good := func(n int) []string {
		var rows []string
		for i := range n {
			rows = append(rows, fmt.Sprintf("ok%05d@example.org,MKVALOK%d", i, i))
		}
		return rows
	}
	bad := []string{
		"MKID1-no-at-sign,MKVAL1",
		"MKID2@@example.org,MKVAL2",
		"MKID3 white@example.org,MKVAL3",
		"@MKID4.example.org,MKVAL4",
		"MKID5@,MKVAL5",
		strings.Repeat("MKID6", 60) + "@example.org,MKVAL6",
	}
	cases := []struct {
		name, header string
		rows         []string
	}{
		{"invalid identifiers", "email,tier", append(good(minList+10), bad...)},
		{"headerless", "", append([]string{"mkid7@example.org,MKVAL7"}, good(minList+10)...)},
		{"bare quote", "email,tier", append(good(minList+10), `mkid8@example.org,MK"VAL8`)},
		{"field count", "email,tier", append(good(minList+10), "mkid9@example.org,MKVAL9,MKEXTRA9")},
		{"unterminated quote", "email,tier", append(good(minList+10), `mkid10@example.org,"MKVAL10`)},
		{"oversize value", "email,tier", append(good(minList+10), "mkid11@example.org,é"+strings.Repeat("MKVAL11", 50))},
		{"invalid utf-8", "email,tier", append(good(minList+10), "mkid12@example.org,MKVAL12\xff\xfe")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var said []string
			path := filepath.Join(t.TempDir(), "list.csv")
			body := strings.Join(tc.rows, "\n") + "\n"
			if tc.header != "" {
				body = tc.header + "\n" + body
			}
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := a.UploadCSV(context.Background(), client.UploadSpec{Collab: "c1", Input: path, IDColumn: "email", Kind: crypto.KindEmail,
				Columns: []string{"tier"}, State: sa, RowsPerPart: 100,
				Invalid: func(line int, reason string) { said = append(said, fmt.Sprintf("line %d: %s", line, reason)) },
				Notice:  func(msg string) { said = append(said, msg) }})
			if err != nil {
				said = append(said, err.Error())
			}
			// The audience's mapping reads the same file again.
			_, aerr := client.WriteAudience(context.Background(), mustProfile(t), client.AudienceInput{Collab: "c1", Room: a.Room().ID, Input: path, IDColumn: "email", Kind: crypto.KindEmail, State: sa},
				&api.Audience{Collaboration: "c1", Rows: 1, Audience: []uint32{0}}, io.Discard)
			if aerr != nil {
				said = append(said, aerr.Error())
			}
			all := strings.Join(said, "\n")
			if i := strings.Index(strings.ToUpper(all), "MK"); i >= 0 {
				t.Errorf("LEAK: an error or report echoes input data (%q ...):\n%s", all[i:min(len(all), i+40)], all)
			}
			t.Logf("%d messages, e.g. %q", len(said), said[len(said)-1])
		})
	}
}

func mustProfile(t *testing.T) crypto.Profile {
	t.Helper()
	p, err := crypto.LookupProfile(crypto.ProfilePAIRv1, crypto.ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

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
