package client_test

// Red-team attacks on the partner's side (the client): what it sends to the
// room, what its errors say, and what the order and sizes of what it sends
// teach the room's operator (the pins and the state on disk have files of
// their own). Each test measures against a real room on loopback, with
// every byte the client sends recorded by its transport. Each failed on
// the code before its fix: rows went in the file's order; a headerless
// file's first row, an identifier, was echoed in an error.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
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
