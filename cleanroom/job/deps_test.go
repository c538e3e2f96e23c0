package job

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/internal/depcheck"
)

// TestDeps keeps the job protocol light: an engine's binary imports it
// (and package columnar) without the room's storage, its policy engine or
// the room itself; and Beam stays out of this module.
func TestDeps(t *testing.T) {
	depcheck.Forbid(t, "github.com/dgraph-io/", "github.com/open-policy-agent/", depcheck.Module+"cleanroom/internal/",
		depcheck.Module+"policy", depcheck.Module+"audit", "github.com/apache/beam", "github.com/google/differential-privacy/privacy-on-beam")
	for _, pkg := range []string{".", "../columnar"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == depcheck.Module+"cleanroom" {
				t.Errorf("%s depends on the room", pkg)
			}
		}
	}
}
