package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestConsoleVerbMistakes: the console refuses an address off loopback and
// a role the room does not have, each with a hint.
func TestConsoleVerbMistakes(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := cli("init", "--data", filepath.Join(dir, "room")); code != 0 {
		t.Fatalf("init: %s", errs)
	}
	_, room, _ := serveDataDir(t, filepath.Join(dir, "room"), nil)
	key := filepath.Join(dir, "ana.key")
	if code, _, errs := cli("keygen", "--name", "ana", "--out", key); code != 0 {
		t.Fatalf("keygen: %s", errs)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--room", room, "--key", key, "--addr", "0.0.0.0:0"}, 1, "hint: use --addr 127.0.0.1:PORT"},
		{[]string{"--room", room, "--key", key, "--addr", "127.0.0.1:0", "--role", "operator"}, 1, "hint: --role is partner, analyst, auditor or room-auditor"},
		{[]string{"--key", key}, 2, "--room and --key are required"},
	} {
		code, _, errs := cli(append([]string{"console"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("cleanroom console %s: exit %d, stderr %q; want %d and %q", strings.Join(tc.args, " "), code, errs, tc.code, tc.want)
		}
	}
}
