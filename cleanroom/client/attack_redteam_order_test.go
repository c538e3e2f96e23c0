package client_test

// Red-team attacks on the upload's keyed order (order.go, parts.go) and on
// the mapping of an audience back to the member's file through that order
// (models.go), as the room's operator or a lying room would make them.
// Each test measures against a real room on loopback, what the client
// sends recorded by its transport. Each failed on the code before its fix:
// a file not byte for byte the uploaded one mapped nearly every record to
// another person than the room named, without an error; a lying room's
// answer naming another collaboration (or a path) was mapped through that
// secret; a row named twice dropped every later row.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// sentRow is one row of an upload as the operator holds it: its token and
// its attribute values, at its place in the upload.
type sentRow struct {
	tok  crypto.Token
	vals []string
}

// sentRows decodes an upload's parts, in part order, into its rows.
func sentRows(t *testing.T, parts map[int][]byte, columns int) (rows []sentRow, perPart []int) {
	t.Helper()
	for pn := range len(parts) {
		body, ok := parts[pn]
		if !ok {
			t.Fatalf("part %d of %d was not recorded", pn, len(parts))
		}
		p, err := api.ParsePart(body, api.PartLimits{Columns: columns, MaxRows: api.MaxRowsPerPart})
		if err != nil {
			t.Fatalf("part %d: %v", pn, err)
		}
		v := p.Values
		for r := range p.Rows {
			sr := sentRow{tok: crypto.Token(p.Tokens[r*api.TokenSize : (r+1)*api.TokenSize])}
			for range columns {
				n, k := binary.Uvarint(v)
				sr.vals = append(sr.vals, string(v[k:k+int(n)]))
				v = v[k+int(n):]
			}
			rows = append(rows, sr)
		}
		perPart = append(perPart, p.Rows)
	}
	return rows, perPart
}

// tokenIndex maps the hashed-mode token of each identifier to its index.
func tokenIndex(t *testing.T, ks *crypto.Secret, ids []string) map[crypto.Token]int {
	t.Helper()
	p := mustProfile(t)
	keys := make([]crypto.MatchKey, len(ids))
	for i, id := range ids {
		k, err := p.MatchKey(crypto.KindEmail, id)
		if err != nil {
			t.Fatalf("identifier %d: %v", i, err)
		}
		keys[i] = k
	}
	toks := make([]crypto.Token, len(ids))
	if err := crypto.HashTokens(context.Background(), ks, toks, keys); err != nil {
		t.Fatal(err)
	}
	m := make(map[crypto.Token]int, len(ids))
	for i, tk := range toks {
		m[tk] = i
	}
	return m
}

// pearson is the correlation of x and y.
func pearson(x, y []float64) float64 {
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	return sxy / math.Sqrt(sxx*syy)
}

// ranks returns the rank of each of xs among them (distinct values).
func ranks(xs []int) []int {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return xs[a] - xs[b] })
	out := make([]int, len(xs))
	for r, i := range idx {
		out[i] = r
	}
	return out
}

func seqInts(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func floats(xs []int) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

// timedRecorder records when each part's request left, then hands it to a
// wireRecorder.
type timedRecorder struct {
	wireRecorder
	tmu   sync.Mutex
	times map[int]time.Time // part number → first try
	start time.Time         // the upload's opening
}

func (tr *timedRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	now := time.Now()
	segs := strings.Split(req.URL.Path, "/")
	tr.tmu.Lock()
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/uploads") {
		tr.start = now
	}
	if req.Method == http.MethodPut && len(segs) > 2 && segs[len(segs)-2] == "parts" {
		n, _ := strconv.Atoi(segs[len(segs)-1])
		if tr.times == nil {
			tr.times = map[int]time.Time{}
		}
		if _, ok := tr.times[n]; !ok {
			tr.times[n] = now
		}
	}
	tr.tmu.Unlock()
	return tr.wireRecorder.RoundTrip(req)
}

// TestAttackRedteamOrderLargeSortedInput: the operator holds every part of
// an upload of a 150,000-row export sorted by email, whose customer id and
// sign-up date columns (uploaded) rise with the file's order, with a run
// of 2,000 invalid identifiers in the middle, large enough (about 17 MB)
// that the spill has four groups. Measured with the test holding the
// secret (hashed mode) to find each uploaded row's place in the file:
//   - rank correlation of upload position with file position, overall and
//     within each part (bound 5/sqrt(rows));
//   - correlation of each uploaded attribute with upload position, overall
//     and within each part, which the operator computes without any secret;
//   - neighbours: uploaded rows next to each other that were within 10 rows
//     in the file (about 20 by chance);
//   - each part's and each spill group's mean file position (z-score,
//     bound 5): a part or group holding the file's start or end;
//   - part row counts (all full but the last, whatever the invalid rows),
//     and the parts' arrival order against their mean file position.
func TestAttackRedteamOrderLargeSortedInput(t *testing.T) {
	if testing.Short() {
		t.Skip("a 150,000-row upload")
	}
	rm := startRoom(t)
	var w timedRecorder
	a, _ := rm.partnerVia("alpha", rm.url, client.Options{HTTP: &http.Client{Transport: &w}})
	b := rm.partner("bravo", nil)
	sa, _ := rm.collab("c1", api.ModeHashed, nil, a, b)

	const n, perPart = 150_000, 10_000
	const badFrom, badTo = 60_000, 62_000
	day0 := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
	pad := strings.Repeat("x", 70)
	var sb strings.Builder
	sb.WriteString("email,cust_id,signup,notes\n")
	var ids []string // valid identifiers, in file order
	for i := range n {
		id := fmt.Sprintf("u%07d@example.org", i) // sorted by email
		if i >= badFrom && i < badTo {
			id = fmt.Sprintf("bad-%07d", i)
		} else {
			ids = append(ids, id)
		}
		fmt.Fprintf(&sb, "%s,%d,%s,%s\n", id, 1_000_000+i, day0.AddDate(0, 0, i*3650/n).Format("2006-01-02"), pad)
	}
	in := filepath.Join(t.TempDir(), "export.csv")
	if err := os.WriteFile(in, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	groups := 0
	rep, err := a.UploadCSV(context.Background(), client.UploadSpec{Collab: "c1", Input: in, IDColumn: "email", Kind: crypto.KindEmail,
		Columns: []string{"cust_id", "signup"}, State: sa, RowsPerPart: perPart,
		Progress: func(int64, float64) {
			if groups == 0 {
				m, _ := filepath.Glob(filepath.Join(roomState(sa), "c1.rows-*"))
				groups = len(m)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	m := len(ids)
	if rep.Rows != int64(m) || rep.Skipped != badTo-badFrom {
		t.Fatalf("report %+v, want %d rows and %d skipped", rep, m, badTo-badFrom)
	}
	ks, err := sa.LoadSecret(a.Room().ID, "c1")
	if err != nil {
		t.Fatal(err)
	}
	where := tokenIndex(t, ks, ids)
	rows, counts := sentRows(t, w.parts()[rep.Upload], 2)
	if len(rows) != m {
		t.Fatalf("%d rows sent, want %d", len(rows), m)
	}
	fileRank := make([]int, m) // the file position (among valid rows) of each uploaded row
	custID := make([]float64, m)
	signup := make([]float64, m)
	for p, r := range rows {
		i, ok := where[r.tok]
		if !ok {
			t.Fatalf("row %d: a token of no input row", p)
		}
		fileRank[p] = i
		c, _ := strconv.Atoi(r.vals[0])
		custID[p] = float64(c)
		d, _ := time.Parse("2006-01-02", r.vals[1])
		signup[p] = d.Sub(day0).Hours() / 24
	}
	pos := floats(seqInts(m))
	bound := 5 / math.Sqrt(float64(m))
	overall := spearman(seqInts(m), fileRank)
	rhoCust, rhoDate := pearson(pos, custID), pearson(pos, signup)

	// Within each part: position in the part against file rank, cust_id
	// and sign-up date.
	var worstPart, worstPartAttr, worstPartZ float64
	partMeans := make([]float64, len(counts))
	start := 0
	for pn, c := range counts {
		fr := fileRank[start : start+c]
		if c > 2 {
			worstPart = max(worstPart, math.Abs(spearman(seqInts(c), ranks(fr))))
			pp := floats(seqInts(c))
			worstPartAttr = max(worstPartAttr, math.Abs(pearson(pp, custID[start:start+c])), math.Abs(pearson(pp, signup[start:start+c])))
		}
		var s float64
		for _, x := range fr {
			s += float64(x)
		}
		partMeans[pn] = s / float64(c)
		z := (partMeans[pn] - float64(m-1)/2) / (float64(m) / math.Sqrt(12*float64(c)))
		worstPartZ = max(worstPartZ, math.Abs(z))
		start += c
	}
	partBound := 5 / math.Sqrt(float64(perPart))
	// Spill groups: the upload's rows in as many equal bins.
	var worstGroupZ float64
	if groups > 1 {
		for g := range groups {
			lo, hi := g*m/groups, (g+1)*m/groups
			var s float64
			for _, x := range fileRank[lo:hi] {
				s += float64(x)
			}
			z := (s/float64(hi-lo) - float64(m-1)/2) / (float64(m) / math.Sqrt(12*float64(hi-lo)))
			worstGroupZ = max(worstGroupZ, math.Abs(z))
		}
	}
	// Neighbours in the upload that were near in the file.
	near := 0
	for p := 1; p < m; p++ {
		if d := fileRank[p] - fileRank[p-1]; d >= -10 && d <= 10 {
			near++
		}
	}
	// Part row counts: all full but the last.
	uneven := 0
	for pn, c := range counts {
		if pn < len(counts)-1 && c != perPart {
			uneven++
		}
	}
	// Arrival order of the parts against their mean file position.
	w.tmu.Lock()
	arrival := make([]int, len(counts))
	order := seqInts(len(counts))
	slices.SortFunc(order, func(x, y int) int { return w.times[x].Compare(w.times[y]) })
	for r, pn := range order {
		arrival[pn] = r
	}
	firstGap := time.Duration(0)
	if t0, ok := w.times[order[0]]; ok {
		firstGap = t0.Sub(w.start)
	}
	w.tmu.Unlock()
	meanRanks := make([]int, len(partMeans))
	for i, r := range ranks(func() []int {
		out := make([]int, len(partMeans))
		for i, x := range partMeans {
			out[i] = int(x)
		}
		return out
	}()) {
		meanRanks[i] = r
	}
	rhoArrival := spearman(arrival, meanRanks)

	t.Logf("%d rows (%d skipped, in one run mid-file), %d parts, %d spill groups (%d bytes)", m, rep.Skipped, len(counts), groups, sb.Len())
	t.Logf("rank correlation upload position vs file position: overall %.4f (bound %.4f); worst |rho| within a part %.4f (bound %.4f)", overall, bound, worstPart, partBound)
	t.Logf("correlation upload position vs cust_id %.4f, vs sign-up date %.4f (bound %.4f); worst within a part %.4f (bound %.4f)", rhoCust, rhoDate, bound, worstPartAttr, partBound)
	t.Logf("worst |z| of a part's mean file position %.2f, of a spill group's %.2f (bound 5); neighbours within 10 file rows: %d (chance ~20, bound 60)", worstPartZ, worstGroupZ, near)
	t.Logf("parts not full before the last: %d; arrival order vs parts' mean file position: rho %.3f over %d parts (chance sd %.2f); first part %v after the upload opened",
		uneven, rhoArrival, len(counts), 1/math.Sqrt(float64(len(counts)-1)), firstGap.Round(time.Millisecond))
	if groups < 4 {
		t.Errorf("the spill had %d groups: the test meant to span several", groups)
	}
	if math.Abs(overall) > bound || worstPart > partBound {
		t.Errorf("LEAK: the upload's order follows the file's (overall %.4f, within a part %.4f)", overall, worstPart)
	}
	if math.Abs(rhoCust) > bound || math.Abs(rhoDate) > bound || worstPartAttr > partBound {
		t.Errorf("LEAK: an attribute sorted in the file follows the upload's order (cust_id %.4f, sign-up %.4f, within a part %.4f)", rhoCust, rhoDate, worstPartAttr)
	}
	if worstPartZ > 5 || worstGroupZ > 5 || near > 60 {
		t.Errorf("LEAK: parts or groups carry a stretch of the file (part z %.2f, group z %.2f, neighbours %d)", worstPartZ, worstGroupZ, near)
	}
	if uneven > 0 {
		t.Errorf("LEAK: %d parts before the last are not full: their counts tell where invalid rows were", uneven)
	}
}

// TestAttackRedteamOrderReexportAlignment: a partner uploads an export,
// then the next day's (one row added, one removed, one attribute changed),
// and once the same file again; the first upload is interrupted and
// resumed. In hashed mode the operator links rows across uploads by their
// tokens: for each pair it compares the positions of the rows both hold,
// to learn from the pair of permutations where rows stood (if the two
// orders were related, a row inserted at file position p shifts the
// positions of the rows after it by one). Bound: |rank correlation| of the
// common rows' positions 5/sqrt(n), and at most 30 rows (3 by chance)
// within one position of where they were. The same bytes again give the
// same order (nothing new to learn). The resumed run sends only the parts
// the room lacks, each the same bytes as any earlier try.
func TestAttackRedteamOrderReexportAlignment(t *testing.T) {
	_, w, a, _, sa, _ := recordedAlpha(t)
	const n, perPart = 20_000, 1_000
	row := func(i int, tier string) string { return fmt.Sprintf("e%06d@example.org,%s,%d", i, tier, 20+i%4*10) }
	base := make([]string, n)
	for i := range base {
		base[i] = row(i, "t"+strconv.Itoa(i%5))
	}
	mid := n / 2
	variants := []struct {
		name string
		rows []string
		same bool
	}{
		{"same file again", base, true},
		{"one row added mid-file", slices.Insert(slices.Clone(base), mid, row(n+7, "t9")), false},
		{"one row removed mid-file", slices.Delete(slices.Clone(base), mid, mid+1), false},
		{"one attribute changed", func() []string { r := slices.Clone(base); r[mid] = row(mid, "tX"); return r }(), false},
	}
	spec := func(in string) client.UploadSpec {
		return client.UploadSpec{Collab: "c1", Input: in, IDColumn: "email", Kind: crypto.KindEmail,
			Columns: []string{"tier", "age_band"}, State: sa, RowsPerPart: perPart}
	}
	positions := func(upload string) map[crypto.Token]int {
		rows, _ := sentRows(t, w.parts()[upload], 2)
		out := make(map[crypto.Token]int, len(rows))
		for p, r := range rows {
			out[r.tok] = p
		}
		return out
	}

	// The first upload, interrupted once some parts are in, then resumed.
	baseIn := writeCSV(t, "email,tier,age_band", base)
	ctx, cancel := context.WithCancel(context.Background())
	s := spec(baseIn)
	s.Progress = func(sent int64, _ float64) {
		if sent >= 3*perPart {
			cancel()
		}
	}
	if _, err := a.UploadCSV(ctx, s); err == nil {
		t.Fatal("the interrupted upload finished")
	}
	cancel()
	first := w.snapshot()
	rep, err := a.UploadCSV(context.Background(), spec(baseIn))
	if err != nil {
		t.Fatal(err)
	}
	bodies := map[int]map[string]bool{}
	sentBefore, sentAfter := map[int]bool{}, map[int]bool{}
	for k, r := range w.snapshot() {
		u, _ := url.Parse(r.url)
		segs := strings.Split(u.Path, "/")
		if r.method != http.MethodPut || segs[len(segs)-2] != "parts" || segs[len(segs)-3] != rep.Upload {
			continue
		}
		pn, _ := strconv.Atoi(segs[len(segs)-1])
		if bodies[pn] == nil {
			bodies[pn] = map[string]bool{}
		}
		bodies[pn][string(r.body)] = true
		if k < len(first) {
			sentBefore[pn] = true
		} else {
			sentAfter[pn] = true
		}
	}
	differing, resent := 0, 0
	for pn, bs := range bodies {
		if len(bs) > 1 {
			differing++
		}
		if sentBefore[pn] && sentAfter[pn] {
			resent++
		}
	}
	t.Logf("interrupted run sent %d parts, the resumed run %d (%d of them again, report: %d resumed); parts sent with different bytes: %d",
		len(sentBefore), len(sentAfter), resent, rep.Resumed, differing)
	if differing > 0 {
		t.Errorf("LEAK: %d parts were sent twice with different bytes: the operator holds two orders of the same rows", differing)
	}
	if len(sentBefore)+len(sentAfter)-resent != rep.Parts {
		t.Errorf("the two runs sent %d distinct parts of %d", len(sentBefore)+len(sentAfter)-resent, rep.Parts)
	}
	basePos := positions(rep.Upload)
	if len(basePos) != n {
		t.Fatalf("%d rows in the first upload", len(basePos))
	}

	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			in := writeCSV(t, "email,tier,age_band", v.rows)
			before := map[string]bool{}
			for up := range w.parts() {
				before[up] = true
			}
			vrep, err := a.UploadCSV(context.Background(), spec(in))
			upload := ""
			if err != nil {
				// The room may refuse the commit (a list that differs from
				// the last by a handful of people): the parts are in its
				// hands all the same.
				for up := range w.parts() {
					if !before[up] {
						upload = up
					}
				}
				t.Logf("upload: %v", err)
			} else {
				upload = vrep.Upload
			}
			if upload == "" {
				t.Fatal("no new upload recorded")
			}
			pos := positions(upload)
			var x, y []int
			for tk, p := range basePos {
				if q, ok := pos[tk]; ok {
					x, y = append(x, p), append(y, q)
				}
			}
			rho := spearman(ranks(x), ranks(y))
			inPlace := 0
			for i := range x {
				if d := x[i] - y[i]; d >= -1 && d <= 1 {
					inPlace++
				}
			}
			bound := 5 / math.Sqrt(float64(len(x)))
			t.Logf("%d rows in both uploads: rank correlation of their positions %.4f (bound %.4f), %d within one position (chance %.1f, bound 30)",
				len(x), rho, bound, inPlace, 3*float64(len(x))/float64(n))
			if v.same {
				if inPlace != len(x) {
					t.Errorf("the same bytes uploaded again went in another order (%d of %d rows in place): the operator holds two orders of one list", inPlace, len(x))
				}
				return
			}
			if math.Abs(rho) > bound || inPlace > 30 {
				t.Errorf("LEAK: the next day's upload keeps the first's order (rho %.4f, %d rows within one position): "+
					"the operator aligns the two and learns where the changed row sits", rho, inPlace)
			}
		})
	}
}

// TestAttackRedteamOrderAudienceMapping: the room answers an activation
// with upload rows; WriteAudience maps them back to the member's file
// through the upload's order. The truth is read off the wire: the token
// at each upload position, hashed by the test from each identifier. Cases:
// the file that was uploaded (the baseline); a file that differs from it in
// one attribute value, in line endings (a spreadsheet's re-save), or in one
// person, with as many valid rows (a daily re-export given by mistake, or
// an upload since replaced); and lying answers: a row named twice, a row
// out of range, another row count, and (through ActivateCSV) another
// collaboration of the member named in the answer. Each must write
// exactly the people the room named, or fail: a record of another person
// written without an error is a break. WriteAudience now maps only the
// uploaded file's bytes (its fingerprint, recorded at the commit) for the
// recorded upload and the caller's collaboration, and refuses a row named
// twice; it had written 357-369 other people for the edited files, kept
// only the rows before a duplicate, and read the secret a path named.
func TestAttackRedteamOrderAudienceMapping(t *testing.T) {
	rm := startRoom(t)
	u, _ := url.Parse(rm.url)
	rp := httputil.NewSingleHostReverseProxy(u)
	var (
		mu     sync.Mutex
		forged []byte
	)
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		f := forged
		mu.Unlock()
		if r.Method == "POST" && r.URL.Path == "/v1/collaborations/c1/activations" && f != nil {
			rw.Header().Set("Content-Type", "application/json")
			rw.Write(f)
			return
		}
		rp.ServeHTTP(rw, r)
	}))
	defer proxy.Close()
	var w wireRecorder
	a, _ := rm.partnerVia("alpha", proxy.URL, client.Options{HTTP: &http.Client{Transport: &w}})
	b := rm.partner("bravo", nil)
	sa, _ := rm.collab("c1", api.ModeHashed, nil, a, b)
	sa2, _ := rm.collab("c2", api.ModeHashed, nil, a, b)
	// One state directory for all of alpha's collaborations, as the CLI's.
	sec, err := os.ReadFile(filepath.Join(roomState(sa2), "c2.secret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(roomState(sa), "c2.secret"), sec, 0o600); err != nil {
		t.Fatal(err)
	}

	const n = 3000
	var lines, ids []string // file lines; valid identifiers by valid rank
	for i := range n {
		id := fmt.Sprintf("m%05d@example.org", i)
		if i%100 == 50 {
			lines = append(lines, fmt.Sprintf("not-an-email-%d,t%d", i, i%3))
		}
		lines = append(lines, fmt.Sprintf("%s,t%d", id, i%3))
		ids = append(ids, id)
	}
	in := writeCSV(t, "email,tier", lines)
	rep, err := a.UploadCSV(context.Background(), client.UploadSpec{Collab: "c1", Input: in, IDColumn: "email", Kind: crypto.KindEmail,
		Columns: []string{"tier"}, State: sa, RowsPerPart: 500})
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := sa.LoadSecret(a.Room().ID, "c1")
	where := tokenIndex(t, ks, ids)
	rows, _ := sentRows(t, w.parts()[rep.Upload], 1)
	atPos := make([]string, len(rows)) // the person at each upload row
	for p, r := range rows {
		i, ok := where[r.tok]
		if !ok {
			t.Fatalf("row %d: a token of no input row", p)
		}
		atPos[p] = ids[i]
	}
	var named []uint32
	for r := 3; r < len(rows); r += 7 {
		named = append(named, uint32(r))
	}
	ain := func(path string) client.AudienceInput {
		return client.AudienceInput{Collab: "c1", Room: a.Room().ID, Input: path, IDColumn: "email", Kind: crypto.KindEmail, State: sa}
	}
	// judge compares what was written with the people named.
	judge := func(t *testing.T, aud []uint32, out []byte, err error) {
		t.Helper()
		want := map[string]bool{}
		for _, r := range aud {
			if int(r) < len(atPos) {
				want[atPos[r]] = true
			}
		}
		recs, _ := csv.NewReader(bytes.NewReader(out)).ReadAll()
		right, wrong := 0, 0
		for _, rec := range recs[min(1, len(recs)):] {
			if want[rec[0]] {
				right++
			} else {
				wrong++
			}
		}
		t.Logf("named %d people (%d distinct): written %d of them and %d others; error: %v", len(aud), len(want), right, wrong, err)
		if wrong > 0 {
			t.Errorf("BREAK: %d of %d records written are people the room did not name (and %d it named)", wrong, right+wrong, right)
		}
		if err == nil && right != len(want) {
			t.Errorf("BREAK: %d of the %d people named were written, without an error", right, len(want))
		}
	}
	variant := func(edit func(string) string) string {
		body, _ := os.ReadFile(in)
		p := filepath.Join(t.TempDir(), "list.csv")
		os.WriteFile(p, []byte(edit(string(body))), 0o600)
		return p
	}
	direct := []struct {
		name string
		path string
		aud  api.Audience
	}{
		{"the uploaded file", in, api.Audience{Collaboration: "c1", Upload: rep.Upload, Rows: rep.Rows, Audience: named}},
		{"one attribute edited", variant(func(s string) string {
			return strings.Replace(s, "m01234@example.org,t1", "m01234@example.org,t2", 1)
		}), api.Audience{Collaboration: "c1", Upload: rep.Upload, Rows: rep.Rows, Audience: named}},
		{"re-saved with CRLF", variant(func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }),
			api.Audience{Collaboration: "c1", Upload: rep.Upload, Rows: rep.Rows, Audience: named}},
		{"one person replaced", variant(func(s string) string {
			return strings.Replace(s, "m01234@example.org", "z99999@example.org", 1)
		}), api.Audience{Collaboration: "c1", Upload: rep.Upload, Rows: rep.Rows, Audience: named}},
		{"a row named twice", in, api.Audience{Collaboration: "c1", Upload: rep.Upload, Rows: rep.Rows,
			Audience: append([]uint32{named[0]}, named...)}},
		{"a row out of range", in, api.Audience{Collaboration: "c1", Upload: rep.Upload, Rows: rep.Rows,
			Audience: append(slices.Clone(named), uint32(rep.Rows))}},
		{"another row count", in, api.Audience{Collaboration: "c1", Upload: rep.Upload, Rows: rep.Rows + 1, Audience: named}},
	}
	for _, tc := range direct {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := client.WriteAudience(ctx, mustProfile(t), ain(tc.path), &tc.aud, &out)
			judge(t, tc.aud.Audience, out.Bytes(), err)
			if tc.path == in && err != nil && tc.name == "the uploaded file" {
				t.Errorf("the uploaded file's audience was refused: %v", err)
			}
		})
	}
	t.Run("another collaboration named", func(t *testing.T) {
		aud := api.Audience{Collaboration: "c2", Member: "alpha", Upload: rep.Upload, Rows: rep.Rows, Size: len(named), Audience: named}
		f, _ := json.Marshal(aud)
		mu.Lock()
		forged = f
		mu.Unlock()
		var out bytes.Buffer
		_, _, err := a.ActivateCSV(context.Background(), "c1", api.SegmentSpec{}, ain(in), &out)
		judge(t, named, out.Bytes(), err)
	})
	// The collaboration the answer names is a file name in the state
	// directory: a path names another directory's secret.
	t.Run("a path to another state directory", func(t *testing.T) {
		rel, err := filepath.Rel(roomState(sa), filepath.Join(roomState(sa2), "c2"))
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(roomState(sa), "c2.secret"))
		aud := api.Audience{Collaboration: rel, Member: "alpha", Upload: rep.Upload, Rows: rep.Rows, Size: len(named), Audience: named}
		f, _ := json.Marshal(aud)
		mu.Lock()
		forged = f
		mu.Unlock()
		var out bytes.Buffer
		_, _, err = a.ActivateCSV(context.Background(), "c1", api.SegmentSpec{}, ain(in), &out)
		t.Logf("the answer named collaboration %q", rel)
		judge(t, named, out.Bytes(), err)
	})
}
