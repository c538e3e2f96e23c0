package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"strings"
	"testing"
)

// activationRoom is a hashed collaboration between coursely and pulsefit
// whose settings let coursely activate, both lists uploaded and matched.
// coursely holds people [0, 3000), with a line of no identifier; pulsefit
// [600, 3600), converting when their age band is 20. It returns coursely's
// list and what collab accept said.
func activationRoom(t *testing.T) (r *cliRoom, courselyList, acceptErrs string) {
	r = startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	settings := r.path("settings.json")
	os.WriteFile(settings, []byte(`{"allowed_dimensions":["coursely.age_band","pulsefit.converted"],"domains":{"coursely.age_band":["20","30","40","50"]},
		"activation":{"members":["coursely"]}}`), 0o644)
	r.must(r.as("coursely", "collab", "create", "--collab", "alliance", "--members", "coursely,pulsefit", "--kind", "email", "--mode", "hashed", "--settings", settings)...)
	_, acceptErrs = r.must(r.as("pulsefit", "collab", "accept", "--collab", "alliance", "--settings", settings)...)
	var c, p strings.Builder
	c.WriteString("email,age_band,spend\n")
	for i := range 3000 {
		if i == 10 {
			c.WriteString(",20,1\n")
		}
		fmt.Fprintf(&c, "person%05d@example.com,%d,%d\n", i, 20+i%4*10, i%300)
	}
	p.WriteString("email,converted\n")
	for i := 600; i < 3600; i++ {
		fmt.Fprintf(&p, "person%05d@example.com,%d\n", i, map[bool]int{true: 1}[i%4 == 0])
	}
	courselyList, pulsefitList := r.path("coursely.csv"), r.path("pulsefit.csv")
	os.WriteFile(courselyList, []byte(c.String()), 0o644)
	os.WriteFile(pulsefitList, []byte(p.String()), 0o644)
	r.must(r.as("coursely", "upload", "--collab", "alliance", "--input", courselyList, "--id-column", "email", "--columns", "age_band,spend")...)
	r.must(r.as("pulsefit", "upload", "--collab", "alliance", "--input", pulsefitList, "--id-column", "email", "--columns", "converted")...)
	r.must(r.as("coursely", "match", "--collab", "alliance")...)
	return r, courselyList, acceptErrs
}

// TestModelAndActivateVerbs: a brand trains a model over the room, scores
// its own list with it offline, and activates a consented segment, writing
// exactly its own rows of the matched people in it; the settings it
// accepted say ACTIVATION in capitals.
func TestModelAndActivateVerbs(t *testing.T) {
	r, courselyList, acceptErrs := activationRoom(t)
	if !strings.Contains(acceptErrs, "ACTIVATION: coursely may receive audiences") {
		t.Fatalf("accept does not flag activation:\n%s", acceptErrs)
	}

	spec := r.path("model.json")
	os.WriteFile(spec, []byte(`{"version":"cleanroom.dev/model-spec/v1","label":{"column":"pulsefit.converted"},"features":["coursely.age_band"],"epsilon":0.5}`), 0o644)
	out, _ := r.must(r.as("coursely", "model", "train", "--collab", "alliance", "--spec", spec, "--out", r.path("lookalike.json"))...)
	if !strings.Contains(out, "predicting pulsefit.converted from 1 features (epsilon 0.5;") {
		t.Fatalf("model train:\n%s", out)
	}
	out, _ = r.must("model", "apply", "--model", r.path("lookalike.json"), "--input", courselyList, "--out", r.path("scores.csv"))
	if !strings.Contains(out, "scored 3001 rows") {
		t.Fatalf("model apply:\n%s", out)
	}
	scores := readCSV(t, r.path("scores.csv"))
	// The age band 20 converts; the others never do.
	if scores[0][3] != "score" || scores[1][1] != "20" || scores[2][1] != "30" || !(atof(scores[1][3]) > 0.7 && atof(scores[2][3]) < 0.3) {
		t.Fatalf("scores %v %v %v", scores[0], scores[1], scores[2])
	}

	seg := r.path("segment.json")
	os.WriteFile(seg, []byte(`{"version":"cleanroom.dev/segment/v1","filters":[{"column":"coursely.age_band","op":"in","values":["20","30"]}]}`), 0o644)
	out, _ = r.must(r.as("coursely", "activate", "--collab", "alliance", "--segment", seg, "--input", courselyList, "--id-column", "email",
		"--out", r.path("audience.csv"))...)
	got := readCSV(t, r.path("audience.csv"))
	var want [][]string
	want = append(want, []string{"email", "age_band", "spend"})
	for i := 600; i < 3000; i++ {
		if i%4 < 2 {
			want = append(want, []string{fmt.Sprintf("person%05d@example.com", i), fmt.Sprint(20 + i%4*10), fmt.Sprint(i % 300)})
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || !strings.Contains(out, "wrote "+r.path("audience.csv")+": 1200 of your customers") {
		t.Fatalf("activate wrote %d rows, want %d:\n%s", len(got)-1, len(want)-1, out)
	}
	code, _, errs := cli(r.as("pulsefit", "activate", "--collab", "alliance", "--segment", seg, "--input", r.path("pulsefit.csv"), "--id-column", "email",
		"--out", r.path("theirs.csv"))...)
	if code != 1 || !strings.Contains(errs, "do not let pulsefit receive audiences") {
		t.Fatalf("pulsefit's activation: exit %d\n%s", code, errs)
	}
	if _, err := os.Stat(r.path("theirs.csv")); err == nil {
		t.Fatal("a refused activation left a file")
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func atof(s string) float64 {
	var x float64
	fmt.Sscan(s, &x)
	return x
}
