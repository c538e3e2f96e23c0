//go:build race

package cleanroom

// atkRace reports whether the test binary runs under the race detector,
// whose shadow memory a process memory limit cannot accommodate.
const atkRace = true
