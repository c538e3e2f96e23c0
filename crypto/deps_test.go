package crypto

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps this package a leaf: partners build it into their
// own tools, so it must not pull in the room (cleanroom, policy, matcher,
// audit) or its heavy dependencies (OPA, Badger).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/opencleanroom/cleanroom/"
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(dep, module) && dep != module+"crypto":
			t.Errorf("crypto imports %s", dep)
		case strings.Contains(dep, "open-policy-agent"), strings.Contains(dep, "dgraph-io/badger"):
			t.Errorf("crypto depends on %s", dep)
		}
	}
}
