package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// TestUploadRefusedBeforeOpening: every mistake on the command line, and an
// input below the minimum list size, is refused before the room opens an
// upload, a part is sent or progress is saved; then the corrected command
// works with the state directory as the mistakes left it.
func TestUploadRefusedBeforeOpening(t *testing.T) {
	rm := startRoom(t)
	var reqs requests
	a := rm.partner("alpha", &reqs)
	b := rm.partner("bravo", nil)
	state, _ := rm.collab("c1", api.ModeHashed, map[string]any{"never_output_columns": []string{"alpha.spend"}}, a, b)
	list := writeCSV(t, peopleHeader, people(0, minList+50))
	small := writeCSV(t, peopleHeader, people(0, minList-1))
	twice := writeCSV(t, "email,age_band,age_band", []string{"x@example.org,1,2"})
	ok := client.UploadSpec{Collab: "c1", Input: list, IDColumn: "email", Kind: crypto.KindEmail,
		Columns: []string{"age_band"}, State: state, RowsPerPart: 100}
	reqs.reset()

	for _, tc := range []struct {
		name string
		edit func(*client.UploadSpec)
		want error
		text string // in the error
	}{
		{"a typo in --columns", func(s *client.UploadSpec) { s.Columns = []string{"age_bnd"} }, client.ErrUnknownColumn, `"age_bnd"`},
		{"a typo in --id-column", func(s *client.UploadSpec) { s.IDColumn = "mail" }, client.ErrUnknownColumn, `"mail"`},
		{"a column named twice", func(s *client.UploadSpec) { s.Columns = []string{"age_band", "age_band"} }, client.ErrColumnRefused, "named twice"},
		{"the id column as an attribute", func(s *client.UploadSpec) { s.Columns = []string{"email"} }, client.ErrColumnRefused, "identifier column"},
		{"a never-output column", func(s *client.UploadSpec) { s.Columns = []string{"age_band", "phone"} }, client.ErrColumnRefused, "never-output"},
		{"a member's never-output column", func(s *client.UploadSpec) { s.Columns = []string{"spend"} }, client.ErrColumnRefused, "never-output"},
		{"a name the room does not take", func(s *client.UploadSpec) { s.Columns = []string{"Age Band"} }, client.ErrColumnRefused, "not a column name"},
		{"a header naming a column twice", func(s *client.UploadSpec) { s.Input = twice }, client.ErrColumnRefused, "more than once"},
		{"another kind", func(s *client.UploadSpec) { s.Kind = crypto.KindPhone }, nil, "matches email identifiers"},
		{"fewer rows than the minimum", func(s *client.UploadSpec) { s.Input = small }, client.ErrListTooSmall, "199 data rows; the collaboration requires at least 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := ok
			tc.edit(&spec)
			_, err := a.UploadCSV(context.Background(), spec)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("UploadCSV = %v, want %v with %q", err, tc.want, tc.text)
			}
			if strings.Contains(err.Error(), "person0") {
				t.Errorf("the error echoes an identifier: %v", err)
			}
			if w := reqs.writes(); len(w) > 0 {
				t.Fatalf("the room was asked %v before the refusal", w)
			}
			if exists(uploadFile(state, "c1")) {
				t.Fatal("progress was saved for a refused upload")
			}
		})
	}

	rep, err := a.UploadCSV(context.Background(), ok)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != minList+50 || rep.Resumed != 0 || reqs.count("POST /v1/collaborations/c1/uploads") != 1 {
		t.Fatalf("the corrected upload: %+v, %d uploads opened", rep, reqs.count("POST /v1/collaborations/c1/uploads"))
	}
	v, err := a.Collaboration(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if d := v.Datasets["alpha"]; d == nil || !slices.Equal(d.Columns, []string{"age_band"}) {
		t.Fatalf("dataset %+v", d)
	}
}

// TestUploadStartsOverWhenSavedProgressCannotGoOn: progress saved by an
// interrupted upload is resumed only by the same command on the same input;
// any other is told why it starts over (Notice), never meets a refusal
// from the room, and has the room delete the upload it leaves.
func TestUploadStartsOverWhenSavedProgressCannotGoOn(t *testing.T) {
	rm := startRoom(t)
	a := rm.partner("alpha", nil)
	b := rm.partner("bravo", nil)
	list := writeCSV(t, peopleHeader, people(0, 3*minList))
	two := []string{"age_band", "spend"}

	// Each case has a collaboration of its own, and these steps to leave
	// progress saved before the second command.
	type env struct {
		collab string
		base   client.UploadSpec
	}
	interrupt := func(t *testing.T, e env, edit func(*client.UploadSpec)) {
		t.Helper()
		spec := with(e.base, edit)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		spec.Progress = func(sent int64, _ float64) {
			if sent > 0 {
				cancel()
			}
		}
		if _, err := a.UploadCSV(ctx, spec); !errors.Is(err, context.Canceled) {
			t.Fatalf("the interrupted upload: %v", err)
		}
		if !exists(uploadFile(spec.State, e.collab)) {
			t.Fatal("no progress saved")
		}
	}
	editState := func(t *testing.T, e env, edit func(map[string]any)) {
		t.Helper()
		path := uploadFile(e.base.State, e.collab)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var st map[string]any
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		edit(st)
		b, _ = json.Marshal(st)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	same := func(*client.UploadSpec) {}
	for i, tc := range []struct {
		name   string
		first  func(t *testing.T, e env) // leaves progress saved
		second func(*client.UploadSpec)
		notice string // "" for a resumption
	}{
		{"the same command resumes", func(t *testing.T, e env) { interrupt(t, e, same) }, same, ""},
		{"other columns", func(t *testing.T, e env) { interrupt(t, e, same) },
			func(s *client.UploadSpec) { s.Columns = two }, "other attribute columns"},
		{"fewer columns", func(t *testing.T, e env) { interrupt(t, e, func(s *client.UploadSpec) { s.Columns = two }) },
			same, "other attribute columns"},
		{"no columns", func(t *testing.T, e env) { interrupt(t, e, same) },
			func(s *client.UploadSpec) { s.Columns = nil }, "other attribute columns"},
		{"another country code", func(t *testing.T, e env) { interrupt(t, e, same) },
			func(s *client.UploadSpec) { s.CountryCode = 44 }, "another country code"},
		{"another part size", func(t *testing.T, e env) { interrupt(t, e, same) },
			func(s *client.UploadSpec) { s.RowsPerPart = 150 }, "another part size"},
		{"an upload the room no longer has", func(t *testing.T, e env) {
			interrupt(t, e, same)
			editState(t, e, func(st map[string]any) { st["upload"] = "up-000000000000000000000000" })
		}, same, "the room no longer has it open"},
		{"progress saved by an older client", func(t *testing.T, e env) {
			interrupt(t, e, same)
			editState(t, e, func(st map[string]any) { delete(st, "columns"); delete(st, "id_column"); delete(st, "kind") })
		}, func(s *client.UploadSpec) { s.Columns = two }, "another identifier column"},
		{"parts under an earlier client's keying", func(t *testing.T, e env) {
			interrupt(t, e, same)
			editState(t, e, func(st map[string]any) { delete(st, "keys") })
		}, same, "under another key"},
		{"a room upload with other columns", func(t *testing.T, e env) {
			interrupt(t, e, func(s *client.UploadSpec) { s.Columns = two })
			editState(t, e, func(st map[string]any) { st["columns"] = []string{"age_band"} })
		}, same, "the room holds it with other columns"},
		{"parts the room refuses", func(t *testing.T, e env) {
			interrupt(t, e, same)
			// The saved upload now names one opened by hand that declared
			// fewer rows at its start: its last part will not fit.
			editState(t, e, func(st map[string]any) { st["upload"] = openByHand(t, rm.url, a, e.collab, 2*minList+50) })
		}, same, "the room refused a part as not fitting it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := env{collab: fmt.Sprintf("c%d", i)}
			state, _ := rm.collab(e.collab, api.ModeHashed, nil, a, b)
			e.base = client.UploadSpec{Collab: e.collab, Input: list, IDColumn: "email", Kind: crypto.KindEmail,
				Columns: []string{"age_band"}, State: state, RowsPerPart: 100}
			tc.first(t, e)
			var st struct{ Upload string }
			if b, err := os.ReadFile(uploadFile(e.base.State, e.collab)); err != nil || json.Unmarshal(b, &st) != nil {
				t.Fatalf("reading the saved progress: %v", err)
			}
			var mu sync.Mutex
			var notices []string
			spec := with(e.base, tc.second)
			spec.Notice = func(msg string) { mu.Lock(); notices = append(notices, msg); mu.Unlock() }
			rep, err := a.UploadCSV(context.Background(), spec)
			if err != nil {
				t.Fatalf("UploadCSV = %v (notices %q)", err, notices)
			}
			switch {
			case tc.notice == "" && (len(notices) > 0 || rep.Resumed == 0):
				t.Fatalf("not resumed: %+v, notices %q", rep, notices)
			case tc.notice != "" && (len(notices) != 1 || !strings.Contains(notices[0], tc.notice) || rep.Resumed != 0):
				t.Fatalf("report %+v, notices %q, want one saying %q", rep, notices, tc.notice)
			}
			v, err := a.Collaboration(context.Background(), e.collab)
			if err != nil {
				t.Fatal(err)
			}
			want := spec.Columns
			if want == nil {
				want = []string{}
			}
			if d := v.Datasets["alpha"]; d == nil || d.Digest != rep.Digest || d.Rows != 3*minList || !slices.Equal(d.Columns, want) {
				t.Fatalf("dataset %+v after %+v", d, rep)
			}
			if exists(uploadFile(state, e.collab)) {
				t.Fatal("progress is still saved after the commit")
			}
			if got := uploadStatus(t, rm.url, a, e.collab, st.Upload); tc.notice != "" && got != http.StatusNotFound || tc.notice == "" && got != http.StatusOK {
				t.Fatalf("the room answers %d for the earlier upload", got)
			}
		})
	}
}

func with(s client.UploadSpec, edit func(*client.UploadSpec)) client.UploadSpec {
	edit(&s)
	return s
}

// uploadStatus returns the status of the room's answer to a reading
// upload id of a's in collab: 404 once it is discarded.
func uploadStatus(t *testing.T, url string, a *client.Client, collab, id string) int {
	t.Helper()
	tok, err := api.SignRequestToken(a.Key().SigningKey(), a.Principal(), a.Room().ID, "read-"+collab+"-"+id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hr, _ := http.NewRequest("GET", url+"/v1/collaborations/"+collab+"/uploads/"+id, nil)
	hr.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// openByHand opens an upload of a's to collab, as a client would that
// declares the rows at the start: one attribute column, parts of 100 rows.
// It returns the upload's id.
func openByHand(t *testing.T, url string, a *client.Client, collab string, rows int64) string {
	t.Helper()
	req := api.StartUpload{Kind: "email", Profile: crypto.ProfilePAIRv1, Columns: []string{"age_band"}, Rows: rows, RowsPerPart: 100}
	for i := range api.CanaryIdentifiers("email") {
		tok := make([]byte, api.TokenSize)
		tok[0] = byte(i + 1)
		req.Canary = append(req.Canary, tok)
	}
	body, _ := json.Marshal(req)
	tok, err := api.SignRequestToken(a.Key().SigningKey(), a.Principal(), a.Room().ID, fmt.Sprintf("by-hand-%s", collab), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hr, _ := http.NewRequest("POST", url+"/v1/collaborations/"+collab+"/uploads", bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var u api.Upload
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&u) != nil {
		t.Fatalf("opening an upload by hand: %s", resp.Status)
	}
	return u.ID
}

// TestUploadSpreadsheetExport uploads a list as Excel's "CSV UTF-8" writes
// it: a byte-order mark, CRLF line ends, a quoted note over two lines. The
// rows skipped are named by their lines in the file, and progress ends with
// the whole input read and every row sent.
func TestUploadSpreadsheetExport(t *testing.T) {
	rm := startRoom(t)
	a := rm.partner("alpha", nil)
	b := rm.partner("bravo", nil)
	state, _ := rm.collab("c1", api.ModeBlinded, nil, a, b)
	rows := people(0, minList+20)
	rows[0] += `,"first line` + "\n" + `second line"` // lines 2 and 3
	rows[1] = "not-an-email,30,1,0,x"                 // line 4
	for i := 2; i < len(rows); i++ {
		rows[i] += ",x"
	}
	rows[9] = "also not an email,30,1,0,x" // line 12
	path := writeCSV(t, "\ufeffemail,age_band,spend,phone,note", rows)
	b2, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.ReplaceAll(b2, []byte("\n"), []byte("\r\n")), 0o600)

	var mu sync.Mutex
	var invalid []int
	var sent int64
	var read float64
	spec := client.UploadSpec{Collab: "c1", Input: path, IDColumn: "email", Kind: crypto.KindEmail,
		Columns: []string{"age_band", "note"}, State: state, RowsPerPart: 64,
		Invalid:  func(line int, _ string) { mu.Lock(); invalid = append(invalid, line); mu.Unlock() },
		Progress: func(s int64, r float64) { mu.Lock(); sent, read = s, r; mu.Unlock() }}
	rep, err := a.UploadCSV(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(invalid, []int{4, 12}) || rep.Skipped != 2 || rep.Rows != minList+18 {
		t.Fatalf("skipped lines %v, report %+v", invalid, rep)
	}
	if sent != rep.Rows || read != 1 {
		t.Fatalf("progress ended at %d rows sent, %.2f of the input read; want %d and 1", sent, read, rep.Rows)
	}
}

// interruptedUpload starts a room with a hashed collaboration c1 of alpha
// and bravo, in which alpha's upload of 600 rows was interrupted after its
// first part: its progress is saved in spec.State, which uploads the same
// list again.
func interruptedUpload(t *testing.T) (*room, *client.Client, client.UploadSpec) {
	t.Helper()
	rm := startRoom(t)
	a := rm.partner("alpha", nil)
	b := rm.partner("bravo", nil)
	state, _ := rm.collab("c1", api.ModeHashed, nil, a, b)
	spec := client.UploadSpec{Collab: "c1", Input: writeCSV(t, peopleHeader, people(0, 3*minList)), IDColumn: "email",
		Kind: crypto.KindEmail, Columns: []string{"age_band"}, State: state, RowsPerPart: 100}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	interrupted := spec
	interrupted.Progress = func(sent int64, _ float64) {
		if sent > 0 {
			cancel()
		}
	}
	if _, err := a.UploadCSV(ctx, interrupted); !errors.Is(err, context.Canceled) {
		t.Fatalf("the interrupted upload: %v", err)
	}
	return rm, a, spec
}

// TestDiscardSaved: an interrupted upload is discarded from the state
// directory: the room no longer has it, the progress saved goes, and the
// next upload starts afresh without a notice. With nothing saved,
// DiscardSaved says so.
func TestDiscardSaved(t *testing.T) {
	rm, a, spec := interruptedUpload(t)
	state := spec.State
	id, err := a.DiscardSaved(context.Background(), state, "c1")
	if err != nil || id == "" {
		t.Fatalf("DiscardSaved = %q, %v", id, err)
	}
	if got := uploadStatus(t, rm.url, a, "c1", id); got != http.StatusNotFound {
		t.Errorf("the room answers %d for the discarded upload", got)
	}
	if exists(uploadFile(state, "c1")) {
		t.Error("the progress of the discarded upload is still saved")
	}
	if _, err := a.DiscardSaved(context.Background(), state, "c1"); !errors.Is(err, client.ErrNoSavedUpload) {
		t.Errorf("DiscardSaved with nothing saved = %v", err)
	}
	var notices []string
	spec.Notice = func(msg string) { notices = append(notices, msg) }
	rep, err := a.UploadCSV(context.Background(), spec)
	if err != nil || rep.Resumed != 0 || len(notices) != 0 || rep.Upload == id {
		t.Fatalf("the next upload: %+v, %v, notices %q", rep, err, notices)
	}
}

// TestResumeKeepsProgressWhenRoomDoesNotSay: the read that resumes a saved
// upload fails with a problem that is not "not found" (a gateway's 502):
// the run stops with the progress kept, rather than discarding it and
// starting over, and the next run resumes it.
func TestResumeKeepsProgressWhenRoomDoesNotSay(t *testing.T) {
	rm, a, spec := interruptedUpload(t)
	state := spec.State
	saved, err := os.ReadFile(uploadFile(state, "c1"))
	if err != nil {
		t.Fatal(err)
	}
	gateway := newFaultProxy(t, rm.url, func(r *http.Request, _, _ int) fault {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/uploads/") {
			return fault{status: http.StatusBadGateway}
		}
		return fault{}
	})
	behind, err := client.New(context.Background(), gateway.srv.URL, a.Key(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var notices []string
	spec.Notice = func(msg string) { notices = append(notices, msg) }
	if _, err := behind.UploadCSV(context.Background(), spec); err == nil {
		t.Fatal("the run whose room did not say went on")
	}
	if now, _ := os.ReadFile(uploadFile(state, "c1")); !bytes.Equal(now, saved) || len(notices) != 0 {
		t.Fatalf("the saved progress became %s; notices %q", now, notices)
	}
	rep, err := a.UploadCSV(context.Background(), spec)
	if err != nil || rep.Resumed == 0 {
		t.Fatalf("the next run: %+v, %v", rep, err)
	}
}
