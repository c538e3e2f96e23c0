package cleanroom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestRowsDeclaredAtCommit: an upload that did not declare its rows at the
// start declares them at the commit, and the room holds the parts to them:
// every part but the last full, none beyond the last.
func TestRowsDeclaredAtCommit(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	tr.collab("c1", api.ModeHashed, nil, a, b)
	up := startRegionUpload(t, tr, 0, 1000)
	if up.Rows != 0 || up.Parts != 0 {
		t.Fatalf("undeclared upload: %+v", up)
	}
	digests := map[int]string{}
	put := func(part, rows int) {
		t.Helper()
		body := binaryPart(t, rows, 1, []byte(strings.Repeat(string(rune('a'+part)), 32)), "west", distinctTokens(fmt.Sprint(part)))
		resp, msg := rawRequestAs(t, tr, "alpha", "PUT", fmt.Sprintf("/v1/collaborations/c1/uploads/%s/parts/%d", up.ID, part), api.PartContentType, body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("part %d: %d %s", part, resp.StatusCode, msg)
		}
		sum := sha256.Sum256(body)
		digests[part] = hex.EncodeToString(sum[:])
	}
	commit := func(rows int64, parts int) (*http.Response, string) {
		t.Helper()
		ds := make([]string, parts)
		for p := range ds {
			ds[p] = digests[p]
		}
		body, _ := jsonMarshal(api.CommitUpload{Digest: api.DatasetDigest(ds), Rows: rows})
		resp, msg := rawRequest(t, tr, "alpha", "POST", "/v1/collaborations/c1/uploads/"+up.ID+"/commit", body)
		return resp, string(msg)
	}
	put(2, 300)
	put(0, 1000)
	put(1, 500)
	for _, tc := range []struct {
		name   string
		rows   int64
		parts  int
		status int
		detail string
	}{
		{"no rows", 0, 3, http.StatusBadRequest, "declares the upload's rows"},
		{"a part beyond the rows", 1500, 2, http.StatusConflict, "part 2 has 300 rows"},
		{"a short part before the last", 2300, 3, http.StatusConflict, "part 1 has 500 rows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, msg := commit(tc.rows, tc.parts)
			if resp.StatusCode != tc.status || !strings.Contains(msg, tc.detail) {
				t.Fatalf("commit: %d %s, want %d %q", resp.StatusCode, msg, tc.status, tc.detail)
			}
		})
	}
	if v, _ := a.Collaboration(context.Background(), "c1"); len(v.Datasets) != 0 {
		t.Fatalf("a refused commit left a dataset: %v", v.Datasets)
	}
	put(1, 1000) // sending a part again replaces it
	if resp, msg := commit(2300, 3); resp.StatusCode != http.StatusOK {
		t.Fatalf("commit: %d %s", resp.StatusCode, msg)
	}
	v, err := a.Collaboration(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if d := v.Datasets["alpha"]; d == nil || d.Rows != 2300 {
		t.Fatalf("dataset: %+v, want 2,300 rows", d)
	}
	// A declared upload keeps its count: a commit may repeat it, not change it.
	up = startRegionUpload(t, tr, 1000, 1000)
	put(0, 1000)
	if resp, msg := commit(999, 1); resp.StatusCode != http.StatusConflict || !strings.Contains(msg, "declared 1000 rows at its start") {
		t.Fatalf("changing the declared rows: %d %s", resp.StatusCode, msg)
	}
}

// TestResumeOnlySameInput: an interrupted upload resumes from the parts the
// room holds when the input is unchanged, and starts over when the file was
// edited in between, even to the same size.
func TestResumeOnlySameInput(t *testing.T) {
	for _, edit := range []bool{false, true} {
		t.Run(fmt.Sprintf("edited=%v", edit), func(t *testing.T) {
			tr := startRoom(t)
			alpha := tr.partner("alpha", policy.RolePartner, "")
			bravo := tr.partner("bravo", policy.RolePartner, "")
			states := tr.collab("c1", api.ModeHashed, nil, alpha, bravo)
			list := writeList(t, span(0, 3000))
			spec := uploadSpec("c1", list, states["alpha"])
			ctx, cancel := context.WithCancel(context.Background())
			spec.Progress = func(sent int64, _ float64) {
				if sent >= 1000 {
					cancel()
				}
			}
			if _, err := alpha.UploadCSV(ctx, spec); err == nil {
				t.Fatal("the interrupted upload succeeded")
			}
			if edit {
				b, err := os.ReadFile(list)
				if err != nil {
					t.Fatal(err)
				}
				// Another person in the first row, in as many bytes.
				i := bytes.Index(b, []byte("person")) + len("person")
				b[i] = '9'
				if err := os.WriteFile(list, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			spec.Progress = nil
			rep, err := alpha.UploadCSV(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			if resumed := rep.Resumed > 0; resumed == edit || rep.Rows != 3000 {
				t.Fatalf("edited %v: %+v", edit, rep)
			}
			v, err := alpha.Collaboration(context.Background(), "c1")
			if err != nil {
				t.Fatal(err)
			}
			if d := v.Datasets["alpha"]; d == nil || d.Digest != rep.Digest {
				t.Fatalf("dataset %+v after %+v", d, rep)
			}
		})
	}
}

// TestPartFilesFollowTheirKeys: an upload part is stored in a file of its
// own, and the files follow the keys that name them: the same part sent
// again keeps its file, a part replaced loses its old one, a part refused
// leaves none, a replaced dataset's go with it, and a file no key names
// (a crash between the file and its commit) goes when the room opens.
func TestPartFilesFollowTheirKeys(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	states := tr.collab("c1", api.ModeHashed, nil, a, b)
	files := tr.segmentFiles
	up := startRegionUpload(t, tr, 2000, 1000)
	digests := map[int]string{}
	put := func(part int, value string, want int) {
		t.Helper()
		body := binaryPart(t, 1000, 1, make([]byte, 32), value, distinctTokens(fmt.Sprint(part)))
		resp, msg := rawRequestAs(t, tr, "alpha", "PUT", fmt.Sprintf("/v1/collaborations/c1/uploads/%s/parts/%d", up.ID, part), api.PartContentType, body)
		if resp.StatusCode != want {
			t.Fatalf("part %d: %d %s, want %d", part, resp.StatusCode, msg, want)
		}
		if want == http.StatusOK {
			sum := sha256.Sum256(body)
			digests[part] = hex.EncodeToString(sum[:])
		}
	}
	put(0, "west", http.StatusOK)
	put(1, "west", http.StatusOK)
	first := files()
	if len(first) != 2 {
		t.Fatalf("%d files for 2 parts", len(first))
	}
	put(1, "west", http.StatusOK) // the same bytes again
	if got := files(); !slices.Equal(got, first) {
		t.Fatalf("the same part again: files %v, want %v", got, first)
	}
	put(1, "east", http.StatusOK) // other bytes replace the part
	if got := files(); len(got) != 2 || slices.Equal(got, first) {
		t.Fatalf("a replaced part: files %v (before %v): want its old file gone and a new one", got, first)
	}
	body, _ := jsonMarshal(api.CommitUpload{Digest: api.DatasetDigest([]string{digests[0], digests[1]}), Rows: 2000})
	if resp, msg := rawRequest(t, tr, "alpha", "POST", "/v1/collaborations/c1/uploads/"+up.ID+"/commit", body); resp.StatusCode != http.StatusOK {
		t.Fatalf("commit: %d %s", resp.StatusCode, msg)
	}
	committed := files()
	put(0, "north", http.StatusConflict) // refused: the upload is committed
	if got := files(); !slices.Equal(got, committed) {
		t.Fatalf("a refused part left a file: %v, want %v", got, committed)
	}
	// A new list replaces the dataset: its parts' files replace the old.
	if _, err := a.UploadCSV(context.Background(), uploadSpec("c1", writeList(t, span(0, 1500)), states["alpha"])); err != nil {
		t.Fatal(err)
	}
	now := files()
	for _, f := range committed {
		if slices.Contains(now, f) {
			t.Fatalf("the replaced dataset's file %s stayed", filepath.Base(f))
		}
	}
	if len(now) == 0 {
		t.Fatal("the new dataset has no files")
	}
	// An unnamed file, as a crash between a part's file and its commit
	// leaves, goes when the room opens; the named ones stay and read.
	orphan := filepath.Join(tr.dir.Segments(), strings.Repeat("0", 32)+".seg")
	if err := os.WriteFile(orphan, []byte("crc1...."), 0o600); err != nil {
		t.Fatal(err)
	}
	tr.restart()
	if got := files(); !slices.Equal(got, now) {
		t.Fatalf("after a restart: files %v, want %v", got, now)
	}
	b, err := reconnect(tr, "bravo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.UploadCSV(context.Background(), uploadSpec("c1", writeList(t, span(500, 2000)), states["bravo"])); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Match(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	if n := tr.matched("c1"); n != 1000 {
		t.Fatalf("matched %d, want 1000", n)
	}
}

// segmentFiles lists the room's segment files, sorted.
func (tr *testRoom) segmentFiles() []string {
	tr.t.Helper()
	m, err := filepath.Glob(filepath.Join(tr.dir.Segments(), "*.seg"))
	if err != nil {
		tr.t.Fatal(err)
	}
	slices.Sort(m)
	return m
}
