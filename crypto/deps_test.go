package crypto

import (
	"testing"

	"github.com/opencleanroom/cleanroom/internal/depcheck"
)

// TestDependencies keeps this package a leaf: partners build it into their
// own tools, so it must not pull in the room or its heavy dependencies.
func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, append(depcheck.Leaves, "github.com/open-policy-agent", "github.com/dgraph-io/badger")...)
}
