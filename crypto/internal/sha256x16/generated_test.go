package sha256x16

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestAssemblyGenerated: block_amd64.s is what gen_amd64.go writes, so the
// generator the code is reviewed by is the assembly that runs; a hand edit
// to the assembly, or a generator change not run, fails here.
func TestAssemblyGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		t.Skip("no go tool to run the generator")
	}
	gen, err := os.ReadFile("gen_amd64.go")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("block_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	// Outside the module: the generator needs only the standard library.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "gen_amd64.go"), gen, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goTool, "run", "gen_amd64.go")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("running the generator: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "block_amd64.s"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("block_amd64.s differs from what gen_amd64.go writes: run go generate")
	}
}
