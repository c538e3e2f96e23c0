package openapitest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedClientIsCurrent runs the go:generate line of doc.go (the
// pinned generator, from the module proxy or the module cache) in a scratch
// directory and checks that it writes exactly the committed client.gen.go:
// the client cannot drift from the document.
func TestGeneratedClientIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the pinned generator (go run pkg@version); not in -short")
	}
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for line := range strings.Lines(string(src)) {
		if cmd, ok := strings.CutPrefix(strings.TrimSpace(line), "//go:generate "); ok {
			args = strings.Fields(cmd)
		}
	}
	if len(args) < 4 || args[0] != "go" || args[1] != "run" || !strings.Contains(args[2], "@v") {
		t.Fatalf("doc.go has no pinned go:generate line: %q", args)
	}
	dir := t.TempDir()
	cfg, err := os.ReadFile("oapi-codegen.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oapi-codegen.yaml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := filepath.Abs(filepath.Join("..", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The same command, with the document named by its absolute path and
	// the output written to the scratch directory.
	for i, a := range args {
		if a == "../openapi.yaml" {
			args[i] = spec
		}
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "client.gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("client.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("client.gen.go is not what the generator writes from openapi.yaml: run go generate ./cleanroom/api/openapitest and commit the result")
	}
}
