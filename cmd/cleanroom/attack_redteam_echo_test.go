package main

// An upload of a file that lacks its header row: its first line is a
// person, and a field two edits from --id-column is that person's value.
// The CLI's error names the field by its place, never by its text.

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

func TestAttackRedteamEchoCLIHeaderlessSuggestion(t *testing.T) {
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	r.collab("alliance", api.ModeHashed)
	var b strings.Builder
	// No header: the first line is a person, whose mailbox provider is
	// one edit from "email".
	b.WriteString("jane.doe@example.com,gmail,34\n")
	for i := range cliMinList + 20 {
		fmt.Fprintf(&b, "ok%05d@example.com,yahoo,%d\n", i, 20+i%40)
	}
	in := r.path("headerless.csv")
	if err := os.WriteFile(in, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli(r.as("coursely", "upload", "--collab", "alliance", "--input", in, "--id-column", "email", "--columns", "provider,age")...)
	t.Logf("exit %d: %s", code, strings.TrimSpace(errs))
	if strings.Contains(out+errs, `"gmail"`) {
		t.Errorf("LEAK: the CLI printed the first row's value \"gmail\":\n%s", errs)
	}
}
