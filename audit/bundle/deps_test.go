package bundle

import (
	"testing"

	"github.com/opencleanroom/cleanroom/internal/depcheck"
)

// TestDependencies keeps the verifier free of storage and policy: a
// partner-side program that checks a bundle links neither Badger nor OPA.
func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, append(depcheck.Leaves, "github.com/dgraph-io/", "github.com/open-policy-agent/")...)
}
