// Package depcheck guards the boundaries between this module's packages in
// tests: crypto, matcher, policy and audit never import cleanroom or each
// other, and heavy dependencies (OPA, Badger) stay in the one package that
// needs them.
package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

// Module is this module's import path prefix.
const Module = "github.com/opencleanroom/cleanroom/"

// Forbid fails t if the package in the current directory depends, directly
// or not, on an import path that starts with any of forbidden. Paths that
// start with Module are this module's packages; the package itself, its own
// sub-packages and the module's internal/ packages are always allowed.
func Forbid(t *testing.T, forbidden ...string) {
	t.Helper()
	self, err := exec.Command("go", "list", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	me := strings.TrimSpace(string(self))
	for _, dep := range strings.Fields(string(out)) {
		if dep == me || strings.HasPrefix(dep, me+"/") || strings.HasPrefix(dep, Module+"internal/") {
			continue
		}
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("%s depends on %s", me, dep)
			}
		}
	}
}

// Leaves lists this module's packages that no leaf package may import.
var Leaves = []string{Module + "cleanroom", Module + "crypto", Module + "matcher", Module + "policy", Module + "audit", Module + "cmd"}
