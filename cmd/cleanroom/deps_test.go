package main

import (
	"testing"

	"github.com/opencleanroom/cleanroom/internal/depcheck"
)

// TestNoBeam keeps Apache Beam and Privacy on Beam out of the cleanroom
// binary: they live in module github.com/opencleanroom/cleanroom/beam, a
// binary of their own the room runs as a separate process, so that this
// one builds as fast as it does.
func TestNoBeam(t *testing.T) {
	depcheck.Forbid(t, "github.com/apache/beam", "github.com/google/differential-privacy/privacy-on-beam", depcheck.Module+"beam")
}
