//go:build !race

package cleanroom

// atkRace reports whether the test binary runs under the race detector,
// whose shadow memory a process memory limit cannot accommodate, and
// whose cost on every memory access distorts what a timing attack measures.
const atkRace = false
