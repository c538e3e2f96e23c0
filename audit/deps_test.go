package audit

import (
	"testing"

	"github.com/opencleanroom/cleanroom/internal/depcheck"
)

// TestDependencies keeps the audit log a leaf of the module, free of OPA.
func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, append(depcheck.Leaves, "github.com/open-policy-agent")...)
}
