package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadmeByHand runs the README's "Running a room by hand" block, as a
// user would paste it into a shell, with this build of cleanroom on the
// PATH. The one change is the room's port, a free one instead of 8080, so
// that the test never meets another server. It must end in a query that
// answers, so the README cannot drift from the product.
func TestReadmeByHand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a whole collaboration: not in -short")
	}
	sh, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed; the README's block is a bash script")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- by-hand script: start -->\n```sh\n")
	if ok {
		block, _, ok = strings.Cut(block, "```\n<!-- by-hand script: end -->")
	}
	if !ok {
		t.Fatal("README.md has no by-hand script block between its markers")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().String()
	ln.Close()
	script := strings.ReplaceAll(block, "127.0.0.1:8080", port)

	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "cleanroom"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sh, "-eu", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	// Its own process group, so that the room it starts in the background
	// is stopped with it whatever happens.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		t.Fatalf("the README's block failed: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), tail(stderr.String(), 4000))
	}
	out := stdout.String()
	for _, want := range []string{
		"accepted alliance (settings digest",
		"match run 1: match rate coursely",
		"coursely.age_band  count  avg(pulsefit.revenue)",
		"declared groups under k=50 withheld",
		"epsilon spent 0.6 of 10",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the README's block printed no %q:\n%s", want, out)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
