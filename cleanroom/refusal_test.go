package cleanroom

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

func wantProblem(t *testing.T, err error, typ string) *api.Problem {
	t.Helper()
	var p *api.Problem
	if !errors.As(err, &p) || p.Type != typ {
		t.Fatalf("got %v, want a %s problem", err, typ)
	}
	return p
}

// readyPair sets up two partners with matched blinded or hashed lists.
func readyPair(t *testing.T, mode string, settings map[string]any) (*testRoom, *client.Client, *client.Client, map[string]client.StateDir) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	states := tr.collab("c1", mode, settings, a, b)
	ctx := context.Background()
	for i, p := range []*client.Client{a, b} {
		if _, err := p.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(i*500, i*500+1500)), states[p.Principal()])); err != nil {
			t.Fatal(err)
		}
	}
	if mode == api.ModeBlinded {
		done := make(chan error, 1)
		go func() { _, err := b.Sync(ctx, "c1", true, 10*time.Millisecond); done <- err }()
		if _, err := a.Sync(ctx, "c1", true, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	return tr, a, b, states
}

// TestRevokeIsAKillSwitch: after a member revokes, queries, matches and
// uploads are refused, each refusal audited with the policy's reason.
func TestRevokeIsAKillSwitch(t *testing.T) {
	tr, a, b, states := readyPair(t, api.ModeHashed, map[string]any{"noise_off": true})
	ctx := context.Background()
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	q := api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}}
	if _, err := a.Query(ctx, "c1", q); err != nil {
		t.Fatal(err)
	}
	if err := b.Revoke(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	const reason = "a member revoked this collaboration: it no longer touches data"
	for name, do := range map[string]func() error{
		"query": func() error { _, err := a.Query(ctx, "c1", q); return err },
		"match": func() error { _, err := a.Match(ctx, "c1"); return err },
		"upload": func() error {
			_, err := a.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(0, 1500)), states["alpha"]))
			return err
		},
	} {
		p := wantProblem(t, do(), api.ProblemDenied)
		if len(p.Reasons) == 0 || p.Reasons[0] != reason {
			t.Errorf("%s: reasons %v", name, p.Reasons)
		}
		e := lastEntry(t, tr.room)
		if e.Decision.Allow || e.Decision.Reasons[0] != reason {
			t.Errorf("%s: refusal not audited: %+v", name, e)
		}
	}
}

// TestPolicyRefusals: the policy's checks reach the caller as 403 problems
// with reasons, and the refusal is in the audit log.
func TestPolicyRefusals(t *testing.T) {
	tr, a, b, _ := readyPair(t, api.ModeHashed, map[string]any{"allowed_dimensions": []string{"alpha.age_band"}})
	ctx := context.Background()
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, reason string
		q            api.QuerySpec
	}{
		{"no epsilon", "a query must spend some epsilon", api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}}},
		{"too much epsilon", "the query asks for more epsilon than one query may spend", api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 3}},
		{"dimension not allowed", "grouping or filtering by alpha.spend is not allowed in this collaboration", api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{"alpha.spend"}, Epsilon: 0.1}},
		// Lift tells how many people are exposed or not and converted or
		// not: a breakdown by both its columns.
		{"lift split not allowed", "splitting lift by alpha.spend is not allowed in this collaboration", api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricLift, Exposed: "alpha.spend", Converted: "bravo.spend"}}, Epsilon: 0.1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Version = api.QueryVersion
			_, err := a.Query(ctx, "c1", tc.q)
			p := wantProblem(t, err, api.ProblemDenied)
			if !strings.Contains(strings.Join(p.Reasons, "|"), tc.reason) {
				t.Errorf("reasons %v, want %q", p.Reasons, tc.reason)
			}
			if e := lastEntry(t, tr.room); e.Action != "query.run" || e.Decision.Allow {
				t.Errorf("last audit entry %+v", e)
			}
		})
	}
	// The budget: 10 epsilon, half of it each member's; alpha spent 0.1
	// on the match's release, so at 0.5 a query its 10th is refused, while
	// bravo's share is untouched.
	query := func(c *client.Client) error {
		_, err := c.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.5})
		return err
	}
	for i := range 10 {
		err := query(a)
		if i < 9 && err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		if i == 9 {
			p := wantProblem(t, err, api.ProblemDenied)
			if !strings.Contains(strings.Join(p.Reasons, "|"), "your share of the collaboration's privacy budget is spent") {
				t.Errorf("reasons %v", p.Reasons)
			}
		}
	}
	for i := range 11 {
		err := query(b)
		if i < 10 && err != nil {
			t.Fatalf("bravo's query %d: %v", i, err)
		}
		if i == 10 {
			p := wantProblem(t, err, api.ProblemDenied)
			if !strings.Contains(strings.Join(p.Reasons, "|"), "budget is spent") {
				t.Errorf("reasons %v", p.Reasons)
			}
		}
	}
	bud, err := a.Budget(ctx, "c1")
	if err != nil || bud.Spent != 9.6 || bud.Remaining != 0.4 || bud.QueriesToday != 19 || bud.MatchesToday != 1 ||
		bud.MemberShare != 5 || bud.MemberSpent["alpha"] != 4.6 || bud.MemberSpent["bravo"] != 5 {
		t.Errorf("budget %+v, %v", bud, err)
	}
	// An analyst may query but not upload; an auditor may not query.
	an := tr.partner("ana", policy.RoleAnalyst, "alpha")
	if _, err := an.Match(ctx, "c1"); err == nil {
		t.Error("an analyst ran a match")
	}
	au := tr.partner("audrey", policy.RoleAuditor, "alpha")
	_, err = au.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.1})
	wantProblem(t, err, api.ProblemDenied)
	if err := au.ExportAudit(ctx, io.Discard); err != nil {
		t.Errorf("auditor export: %v", err)
	}
	wantProblem(t, a.ExportAudit(ctx, io.Discard), api.ProblemDenied)
}

// TestCanaryMismatch: a member holding another secret (as a member whose
// copy was swapped would) is told so before the match, not matched at 0%.
func TestCanaryMismatch(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	states := tr.collab("c1", api.ModeHashed, nil, a, b)
	other, _ := crypto.NewSecret(nil)
	path := filepath.Join(string(states["bravo"]), tr.op.Room().ID, "c1.secret")
	var saved map[string]any
	if b, err := crypto.ReadSecretFile(path); err != nil || json.Unmarshal(b, &saved) != nil {
		t.Fatalf("bravo's saved secret: %v", err)
	}
	saved["secret"] = other.Hex()
	raw, _ := json.Marshal(saved)
	if err := crypto.WriteSecretFile(path, raw, true); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, p := range []*client.Client{a, b} {
		if _, err := p.UploadCSV(ctx, uploadSpec("c1", writeList(t, span(i*500, i*500+1500)), states[p.Principal()])); err != nil {
			t.Fatal(err)
		}
	}
	_, err := a.Match(ctx, "c1")
	wantProblem(t, err, api.ProblemCanaryMismatch)
	if e := lastEntry(t, tr.room); e.Action != "match.run" || e.Decision.Allow {
		t.Errorf("mismatch not audited: %+v", e)
	}
}

// TestBadUploads: malformed parts, invalid points, oversized bodies and
// unknown columns are refused with clear problems that never echo a value.
func TestBadUploads(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	states := tr.collab("c1", api.ModeBlinded, nil, a, b)
	ctx := context.Background()

	_, err := a.UploadCSV(ctx, client.UploadSpec{Collab: "c1", Input: writeList(t, span(0, 1500)), IDColumn: "mail", Kind: crypto.KindEmail, State: states["alpha"]})
	if !errors.Is(err, client.ErrUnknownColumn) {
		t.Errorf("unknown id column: %v", err)
	}
	// 1,500 rows of 10 people: the client lets the rows through, the
	// room counts the distinct identifiers at the commit.
	few := make([]int, 1500)
	for i := range few {
		few[i] = i % 10
	}
	_, err = a.UploadCSV(ctx, client.UploadSpec{Collab: "c1", Input: writeList(t, few), IDColumn: "email", Kind: crypto.KindEmail, State: states["alpha"]})
	p := wantProblem(t, err, api.ProblemDenied)
	if !strings.Contains(p.Reasons[0], "fewer distinct identifiers than the collaboration's minimum") {
		t.Errorf("small list: %v", p.Reasons)
	}

	// Start an upload by hand, then send bad parts.
	var canary [][]byte
	bk := a.BlindingKey("c1")
	ks, _ := states["alpha"].LoadSecret(tr.op.Room().ID, "c1")
	for i := range 4 {
		e, _ := bk.Encrypt(ks, crypto.MatchKey{byte(i + 1)})
		eb := e.Bytes()
		canary = append(canary, eb[:])
	}
	identity := make([]byte, 32)
	// Blinded canaries are points, checked as every element is.
	for name, bad := range map[string][]byte{"the identity": identity, "a non-canonical encoding": bytes.Repeat([]byte{0xff}, 32)} {
		b, _ := jsonMarshal(api.StartUpload{Kind: "email", Profile: "pair-v1", Columns: []string{"region"}, Rows: 1000, RowsPerPart: 1000,
			Canary: [][]byte{canary[0], bad, canary[2], canary[3]}})
		if resp, body := rawRequest(t, tr, "alpha", "POST", "/v1/collaborations/c1/uploads", b); resp.StatusCode != http.StatusUnprocessableEntity ||
			!strings.Contains(string(body), "not a valid ristretto255 element") {
			t.Errorf("a canary that is %s: %d %s", name, resp.StatusCode, body)
		}
	}
	repeated, _ := jsonMarshal(api.StartUpload{Kind: "email", Profile: "pair-v1", Columns: []string{"region"}, Rows: 1000, RowsPerPart: 1000,
		Canary: [][]byte{canary[0], canary[1], canary[0], canary[3]}})
	if resp, body := rawRequest(t, tr, "alpha", "POST", "/v1/collaborations/c1/uploads", repeated); resp.StatusCode != http.StatusUnprocessableEntity ||
		!strings.Contains(string(body), "canary tokens repeat") {
		t.Errorf("a canary repeated: %d %s", resp.StatusCode, body)
	}
	up := startUpload(t, tr, api.StartUpload{Kind: "email", Profile: "pair-v1", Columns: []string{"region"}, Rows: 1000, RowsPerPart: 1000, Canary: canary})
	const secretValue = "ZZ-a-data-value-ZZ"
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		detail string // what the problem says, if checked
	}{
		{"not gzip", []byte("plain text " + secretValue), http.StatusUnprocessableEntity, ""},
		{"bad json", gz(secretValue + "\n"), http.StatusUnprocessableEntity, ""},
		{"short token", gz(`{"t":"` + secretValue + `","a":["x"]}` + "\n"), http.StatusUnprocessableEntity, ""},
		{"identity point", gz(fmt.Sprintf(`{"t":"%s","a":["%s"]}`+"\n", b64(identity), secretValue)), http.StatusUnprocessableEntity, ""},
		{"wrong columns", gz(fmt.Sprintf(`{"t":"%s","a":["%s","x"]}`+"\n", b64(canary[0]), secretValue)), http.StatusUnprocessableEntity, ""},
		{"too few rows", gz(fmt.Sprintf(`{"t":"%s","a":["%s"]}`+"\n", b64(canary[0]), secretValue)), http.StatusUnprocessableEntity, ""},
		{"gzip bomb", gz(strings.Repeat("\n", api.MaxPartBytes+10)), http.StatusUnprocessableEntity, ""},
		{"binary: no header", nil, http.StatusUnprocessableEntity, "no row count"},
		{"binary: cut short", binaryPart(t, 1000, 1, canary[0], secretValue)[:5000], http.StatusUnprocessableEntity, "fewer tokens"},
		{"binary: identity point", binaryPart(t, 1000, 1, canary[0], secretValue, func(p *api.Part) { copy(p.Tokens[32*7:], identity) }), http.StatusUnprocessableEntity, "element 7"},
		{"binary: wrong columns", binaryPart(t, 1000, 2, canary[0], secretValue), http.StatusUnprocessableEntity, "2 columns, want 1"},
		{"binary: too few rows", binaryPart(t, 999, 1, canary[0], secretValue), http.StatusUnprocessableEntity, "999 rows, want 1000"},
		{"binary: too many rows", binaryPart(t, 1001, 1, canary[0], secretValue), http.StatusUnprocessableEntity, "more than 1000 rows"},
		{"binary: value not UTF-8", binaryPart(t, 1000, 1, canary[0], secretValue, func(p *api.Part) { p.Values[len(p.Values)-1] = 0xff }), http.StatusUnprocessableEntity, "row 1000: a value is not UTF-8"},
		{"binary: trailing bytes", append(binaryPart(t, 1000, 1, canary[0], secretValue), secretValue...), http.StatusUnprocessableEntity, "bytes after the last row"},
		{"binary: too large", make([]byte, api.MaxPartBytes+1), http.StatusRequestEntityTooLarge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := ""
			if strings.HasPrefix(tc.name, "binary") {
				ct = api.PartContentType
			}
			resp, body := rawRequestAs(t, tr, "alpha", "PUT", "/v1/collaborations/c1/uploads/"+up.ID+"/parts/0", ct, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if !strings.Contains(string(body), tc.detail) {
				t.Errorf("the problem does not say %q: %s", tc.detail, body)
			}
			if resp.Header.Get("Content-Type") != api.ProblemContentType {
				t.Errorf("content type %q", resp.Header.Get("Content-Type"))
			}
			if strings.Contains(string(body), secretValue) || strings.Contains(string(body), b64(canary[0])) {
				t.Errorf("the problem echoes data: %s", body)
			}
		})
	}
	// JSON bodies are limited too.
	resp, body := rawRequest(t, tr, "alpha", "POST", "/v1/collaborations", bytes.Repeat([]byte(" "), api.MaxJSONBody+1))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized JSON body: %d %s", resp.StatusCode, body)
	}
	// A commit with parts missing is refused, and nothing became visible.
	resp, body = rawRequest(t, tr, "alpha", "POST", "/v1/collaborations/c1/uploads/"+up.ID+"/commit", []byte(`{"digest":"00"}`))
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("commit of an empty upload: %d %s", resp.StatusCode, body)
	}
	if v, _ := a.Collaboration(ctx, "c1"); len(v.Datasets) != 0 {
		t.Errorf("datasets visible: %v", v.Datasets)
	}
}

// madeUpCanary is canary tokens for a hashed upload made by hand: as many
// as kind has canary identifiers, distinct, as the room requires.
func madeUpCanary(kind string) [][]byte {
	canary := make([][]byte, len(api.CanaryIdentifiers(kind)))
	for i := range canary {
		canary[i] = make([]byte, api.TokenSize)
		canary[i][0] = byte(i + 1)
	}
	return canary
}

// startRegionUpload starts alpha's upload in c1 of emails with one column,
// region, made-up canaries, and rows (0: declared at the commit) in parts
// of rowsPerPart.
func startRegionUpload(t testing.TB, tr *testRoom, rows int64, rowsPerPart int) api.Upload {
	t.Helper()
	canary := madeUpCanary("email")
	return startUpload(t, tr, api.StartUpload{Kind: "email", Profile: "pair-v1", Columns: []string{"region"}, Rows: rows, RowsPerPart: rowsPerPart, Canary: canary})
}

func startUpload(t testing.TB, tr *testRoom, req api.StartUpload) api.Upload {
	t.Helper()
	b, _ := jsonMarshal(req)
	resp, body := rawRequest(t, tr, "alpha", "POST", "/v1/collaborations/c1/uploads", b)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("start upload: %d %s", resp.StatusCode, body)
	}
	var u api.Upload
	if err := jsonUnmarshal(body, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

func rawRequest(t testing.TB, tr *testRoom, who, method, path string, body []byte) (*http.Response, []byte) {
	t.Helper()
	return rawRequestAs(t, tr, who, method, path, "", body)
}

func rawRequestAs(t testing.TB, tr *testRoom, who, method, path, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	tok, err := api.SignRequestToken(tr.keys[who].SigningKey(), who, tr.op.Room().ID, randID(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, tr.url+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

// binaryPart encodes rows rows of columns values each (value), every token
// tok; edit, if given, changes the part before it is encoded.
// distinctTokens gives every row of a part its own token, derived from
// seed: a list of distinct people.
func distinctTokens(seed string) func(*api.Part) {
	return func(p *api.Part) {
		for i := range p.Rows {
			sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", seed, i))
			copy(p.Tokens[i*api.TokenSize:], sum[:])
		}
	}
}

func binaryPart(t testing.TB, rows, columns int, tok []byte, value string, edit ...func(*api.Part)) []byte {
	t.Helper()
	p := api.Part{Columns: columns}
	vals := slices.Repeat([]string{value}, columns)
	for range rows {
		if err := p.AppendValues(vals); err != nil {
			t.Fatal(err)
		}
		p.AppendToken([32]byte(tok))
	}
	for _, e := range edit {
		e(&p)
	}
	b, err := p.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
