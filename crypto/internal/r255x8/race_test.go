//go:build race

package r255x8

// The race detector slows this package's arithmetic about tenfold, and it
// has no goroutines to check; the full differential run is a step of
// .ci/run without it.
const raceEnabled = true
