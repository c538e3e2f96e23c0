package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs one command line in-process and returns its exit code, stdout
// and stderr.
func cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(&env{ctx: context.Background(), stdin: strings.NewReader(""), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

// TestPartnerVerbs drives a whole collaboration through the CLI against a
// room on loopback, and checks the usual mistakes get a clear message with a
// hint.
func TestPartnerVerbs(t *testing.T) {
	dir := t.TempDir()
	if code, out, errs := cli("init", "--data", filepath.Join(dir, "room")); code != 0 || !strings.Contains(out, "operator key") {
		t.Fatalf("init: %d %s %s", code, out, errs)
	}
	_, room, _ := serveDataDir(t, filepath.Join(dir, "room"), nil)
	opKey := filepath.Join(dir, "room", "operator.key")
	path := func(name string) string { return filepath.Join(dir, name) }

	must := func(want string, args ...string) string {
		t.Helper()
		code, out, errs := cli(args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("cleanroom %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
		}
		return out
	}
	fails := func(hint string, args ...string) {
		t.Helper()
		code, _, errs := cli(args...)
		if code != 1 || !strings.Contains(errs, "hint: "+hint) {
			t.Fatalf("cleanroom %s: exit %d, stderr %q, want a hint %q", strings.Join(args, " "), code, errs, hint)
		}
		if strings.Contains(errs, "person0") {
			t.Errorf("an error echoes an identifier: %s", errs)
		}
	}
	for _, p := range []string{"coursely", "pulsefit", "stranger"} {
		code, out, errs := cli("keygen", "--name", p, "--out", path(p+".key"))
		if code != 0 {
			t.Fatalf("keygen: %s", errs)
		}
		os.WriteFile(path(p+".jwks"), []byte(out), 0o644)
	}
	for _, p := range []string{"coursely", "pulsefit"} {
		must("registered partner "+p, "partner", "add", "--room", room, "--key", opKey, "--id", p, "--keys", path(p+".jwks"))
	}
	as := func(p string, args ...string) []string {
		return append(args, "--room", room, "--key", path(p+".key"))
	}
	os.WriteFile(path("typo.json"), []byte(`{"min_group_sise": 10}`), 0o644)
	code, _, errs := cli(as("coursely", "collab", "create", "--id", "alliance", "--members", "coursely,pulsefit", "--kind", "email", "--settings", path("typo.json"))...)
	if code != 1 || !strings.Contains(errs, `unknown key "min_group_sise"`) {
		t.Fatalf("a settings typo: exit %d, %s", code, errs)
	}
	os.WriteFile(path("settings.json"), []byte(`{"allowed_dimensions":["coursely.age_band"],"domains":{"coursely.age_band":["20","30","40","50"]}}`), 0o644)
	out := must("collaboration alliance created", as("coursely", "collab", "create", "--id", "alliance", "--members", "coursely,pulsefit", "--kind", "email", "--settings", path("settings.json"))...)
	_, rest, ok := strings.Cut(out, "--settings-digest ")
	if !ok || len(rest) < 64 {
		t.Fatalf("collab create printed no digest:\n%s", out)
	}
	digest := rest[:64]
	code, _, errs = cli(as("pulsefit", "collab", "accept", "--id", "alliance")...)
	if code != 2 || !strings.Contains(errs, "accept with --settings-digest "+digest) || !strings.Contains(errs, `"coursely.age_band"`) {
		t.Fatalf("accept without a terminal or digest: exit %d, %s", code, errs)
	}
	fails("review the settings above", as("pulsefit", "collab", "accept", "--id", "alliance", "--settings-digest", strings.Repeat("0", 64))...)
	os.WriteFile(path("other.json"), []byte(`{"allowed_dimensions":["coursely.age_band"],"noise_off":true}`), 0o644)
	fails("compare them with the settings above", as("pulsefit", "collab", "accept", "--collab", "alliance", "--settings", path("other.json"))...)
	_, stranger, _ := cli("fingerprint", "--keys", path("stranger.jwks"))
	fails("compare the fingerprint", as("pulsefit", "collab", "accept", "--collab", "alliance", "--settings", path("settings.json"), "--pin", "coursely="+strings.TrimSpace(stranger))...)
	out = must("accepted alliance (settings digest "+digest, as("pulsefit", "collab", "accept", "--collab", "alliance", "--settings", path("settings.json"))...)

	writeCSV := func(name string, from, to int) string {
		var b strings.Builder
		b.WriteString("email,age_band\n")
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "person%05d@example.com,%d\n", i, 20+i%4*10)
		}
		os.WriteFile(path(name), []byte(b.String()), 0o644)
		return path(name)
	}
	a, b := writeCSV("a.csv", 0, 1500), writeCSV("b.csv", 500, 2000)
	os.WriteFile(path("empty.csv"), nil, 0o644)

	// The usual mistakes.
	fails("is this the key the operator registered", "status", "--room", room, "--key", path("stranger.key"), "--collab", "alliance")
	fails("check --room", "status", "--room", "http://127.0.0.1:1", "--key", path("coursely.key"), "--collab", "alliance")
	fails("name columns exactly as in the CSV's header", as("coursely", "upload", "--collab", "alliance", "--input", a, "--id-column", "mail")...)
	fails("check --input and --id-column", as("coursely", "upload", "--collab", "alliance", "--input", path("empty.csv"), "--id-column", "email")...)
	fails("check the collaboration id", as("coursely", "status", "--collab", "nope")...)
	fails("pass the key file cleanroom keygen wrote", "status", "--room", room, "--key", path("coursely.jwks"), "--collab", "alliance")

	must("uploaded 1500 rows", as("coursely", "upload", "--collab", "alliance", "--input", a, "--id-column", "email", "--columns", "age_band")...)
	must("uploaded 1500 rows", as("pulsefit", "upload", "--collab", "alliance", "--input", b, "--id-column", "email")...)
	must("re-encrypted 1880 elements", as("coursely", "sync", "--collab", "alliance")...)
	must("every set is ready to match", as("pulsefit", "sync", "--collab", "alliance", "--wait")...)
	must("match run 1: match rate coursely", as("pulsefit", "match", "--collab", "alliance")...)
	out = must("from a noisy count, epsilon 0.1", as("coursely", "status", "--collab", "alliance")...)
	if !strings.Contains(out, "settings (digest "+digest) {
		t.Errorf("status shows no settings digest:\n%s", out)
	}
	os.WriteFile(path("q.json"), []byte(`{"version":"cleanroom.dev/query/v1","metrics":["count"],"group_by":["coursely.age_band"],"epsilon":0.5}`), 0o644)
	out = must("coursely.age_band  count", as("coursely", "query", "--collab", "alliance", "--spec", path("q.json"))...)
	if strings.Count(out, "\n") < 5 {
		t.Errorf("query printed too few groups:\n%s", out)
	}
	out = must("coursely.age_band,count\n", as("coursely", "query", "--collab", "alliance", "--spec", path("q.json"), "--csv")...)
	if strings.Count(out, "\n") != 5 {
		t.Errorf("CSV: want a header and 4 groups:\n%s", out)
	}
	fails("e.g.", as("coursely", "query", "--collab", "alliance", "--spec", path("settings.json"))...)
	must("epsilon spent 1.1 of 10", as("pulsefit", "budget", "--collab", "alliance")...)
	must("revoked alliance", as("pulsefit", "collab", "revoke", "--id", "alliance")...)
	fails("the collaboration's policy refused it", as("coursely", "query", "--collab", "alliance", "--spec", path("q.json"))...)
}
