package cleanroom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestPartRepairedBySendingAgain: a part whose stored file is damaged (a
// byte flipped, the file cut short, the file gone) before the upload is
// committed makes the commit refuse it; sending the same bytes again,
// which the room would otherwise keep as stored, replaces the damaged
// copy, and the upload then commits and matches. An intact part sent
// again keeps its file.
func TestPartRepairedBySendingAgain(t *testing.T) {
	damage := map[string]func(t *testing.T, file string){
		"flipped": func(t *testing.T, file string) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-1] ^= 1
			if err := os.WriteFile(file, b, 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"short": func(t *testing.T, file string) {
			if err := os.Truncate(file, 10); err != nil {
				t.Fatal(err)
			}
		},
		"missing": func(t *testing.T, file string) {
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, harm := range damage {
		t.Run(name, func(t *testing.T) {
			tr := startRoom(t)
			a := tr.partner("alpha", policy.RolePartner, "")
			b := tr.partner("bravo", policy.RolePartner, "")
			tr.collab("c1", api.ModeHashed, nil, a, b)
			files := tr.segmentFiles
			up := startRegionUpload(t, tr, 2000, 1000)
			bodies := [][]byte{
				binaryPart(t, 1000, 1, make([]byte, 32), "west", distinctTokens("0")),
				binaryPart(t, 1000, 1, make([]byte, 32), "west", distinctTokens("1")),
			}
			var digests []string
			put := func(part int) {
				t.Helper()
				resp, msg := rawRequestAs(t, tr, "alpha", "PUT", fmt.Sprintf("/v1/collaborations/c1/uploads/%s/parts/%d", up.ID, part), api.PartContentType, bodies[part])
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("part %d: %d %s", part, resp.StatusCode, msg)
				}
			}
			for part, body := range bodies {
				sum := sha256.Sum256(body)
				digests = append(digests, hex.EncodeToString(sum[:]))
				put(part)
			}
			before := files()
			for part := range bodies { // intact: kept as stored
				put(part)
			}
			if got := files(); !slices.Equal(got, before) || len(got) != len(bodies) {
				t.Fatalf("intact parts sent again: files %v, want %v", got, before)
			}
			// Files are named at random: this is one of the two parts'.
			file := before[0]
			harm(t, file)
			commit, _ := jsonMarshal(api.CommitUpload{Digest: api.DatasetDigest(digests), Rows: 2000})
			resp, msg := rawRequest(t, tr, "alpha", "POST", "/v1/collaborations/c1/uploads/"+up.ID+"/commit", commit)
			if resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("the commit of a damaged part: %d %s, want 500", resp.StatusCode, msg)
			}
			for part := range bodies {
				put(part)
			}
			if got := files(); len(got) != len(bodies) || slices.Contains(got, file) || !slices.Contains(got, before[1]) {
				t.Fatalf("files after the parts were sent again: %v (before %v, damaged %s): want the damaged one replaced, the other kept",
					got, before, filepath.Base(file))
			}
			resp, msg = rawRequest(t, tr, "alpha", "POST", "/v1/collaborations/c1/uploads/"+up.ID+"/commit", commit)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("the commit after the part was sent again: %d %s", resp.StatusCode, msg)
			}
		})
	}
}

// TestResumeAfterDamagedPart: an interrupted upload whose stored part is
// damaged before the next run resumes it: the commit is refused, and the
// client, which has every part at hand, starts the upload over once and
// commits it, rather than resuming into the same refusal on every run.
func TestResumeAfterDamagedPart(t *testing.T) {
	tr := startRoom(t)
	alpha := tr.partner("alpha", policy.RolePartner, "")
	bravo := tr.partner("bravo", policy.RolePartner, "")
	states := tr.collab("c1", api.ModeHashed, nil, alpha, bravo)
	spec := uploadSpec("c1", writeList(t, span(0, 3000)), states["alpha"])
	ctx, cancel := context.WithCancel(context.Background())
	spec.Progress = func(sent int64, _ float64) {
		if sent >= 1000 {
			cancel()
		}
	}
	if _, err := alpha.UploadCSV(ctx, spec); err == nil {
		t.Fatal("the interrupted upload succeeded")
	}
	stored := tr.segmentFiles()
	if len(stored) == 0 {
		t.Fatal("no part stored before the interruption")
	}
	for _, f := range stored {
		if err := os.Truncate(f, 10); err != nil {
			t.Fatal(err)
		}
	}
	spec.Progress = nil
	rep, err := alpha.UploadCSV(context.Background(), spec)
	if err != nil {
		t.Fatalf("the upload after its stored part was damaged: %v", err)
	}
	if rep.Resumed != 0 || rep.Rows != 3000 {
		t.Fatalf("report %+v: want every part sent again", rep)
	}
	v, err := alpha.Collaboration(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if d := v.Datasets["alpha"]; d == nil || d.Digest != rep.Digest || d.Rows != 3000 {
		t.Fatalf("dataset %+v after %+v", d, rep)
	}
}
