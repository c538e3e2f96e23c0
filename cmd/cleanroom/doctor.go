package main

import (
	"errors"
	"fmt"

	"github.com/opencleanroom/cleanroom/cleanroom"
)

func runDoctor(e *env, args []string) error {
	fs := newFlags(e, "doctor", "--data DIR [--json]", `
Checks a stopped room's data directory, changing nothing: its identity, that
the database opens, every table against its checksums, the audit log entry
by entry against its signed checkpoints and anchor, every state record
(collaborations, ledgers, uploads, principals) against the log, each ledger
against the charges its log records, and every stored segment. It says what
is wrong and what to do; exit 0 only if every check passed. A database left
by a crash is checked through a recovered copy.`)
	data := fs.String("data", "", "the room's data directory (required)")
	asJSON := fs.Bool("json", false, "print the diagnosis as JSON")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *data == "" {
		return usagef("--data is required")
	}
	d, err := cleanroom.Diagnose(e.Context(), cleanroom.DataDir(*data))
	if err != nil {
		return err
	}
	if *asJSON {
		if err := printJSON(e, d); err != nil {
			return err
		}
	} else {
		if d.Recovered {
			fmt.Fprintln(e.stdout, "the room was not stopped cleanly; checked a recovered copy (the room recovers it when it starts)")
		}
		for _, f := range d.Findings {
			fmt.Fprintf(e.stdout, "%s: %s\n  what to do: %s\n", f.Check, f.Problem, f.Advice)
		}
		if d.Healthy() {
			fmt.Fprintf(e.stdout, "%s: healthy (%d checks: %v)\n", *data, len(d.Checks), d.Checks)
		}
	}
	if !d.Healthy() {
		return errors.New("the data directory is not healthy")
	}
	return nil
}
