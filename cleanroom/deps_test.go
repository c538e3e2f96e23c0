package cleanroom

import (
	"os/exec"
	"strings"
	"testing"
)

// TestWireAndClientStayLight keeps the partner's side free of the room's
// storage and policy engine: cleanroom/api, cleanroom/client, the console
// and cleanroom/model (which a member applies on its own machine) import
// neither Badger, nor OPA, nor the room itself (the console's tests run a
// room; the console does not).
func TestWireAndClientStayLight(t *testing.T) {
	for _, pkg := range []string{"./api", "./client", "./console", "./model"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/dgraph-io/") || strings.HasPrefix(dep, "github.com/open-policy-agent/") ||
				dep == "github.com/opencleanroom/cleanroom/cleanroom" || strings.HasPrefix(dep, "github.com/opencleanroom/cleanroom/matcher") {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
