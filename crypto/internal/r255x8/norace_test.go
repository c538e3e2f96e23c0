//go:build !race

package r255x8

const raceEnabled = false
