// Command cleanroom is the one binary of the cleanroom data clean room: the
// partner's local tools (normalize, pair, keygen) today, and the room
// itself as later verbs arrive.
//
// Every verb takes -h. Data goes to stdout, progress and diagnostics to
// stderr; diagnostics name line numbers, never identifiers or tokens. Every
// verb stops at SIGINT (Ctrl-C) or SIGTERM: a second one ends the process at
// once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `cleanroom: a privacy-preserving data clean room

Usage:
  cleanroom demo [--rows N] [--mode blinded|hashed] [--json]   a complete two-brand clean room on loopback
  cleanroom version                                            the version and VCS revision (also --version)

The room (operator):
  cleanroom init --data DIR
  cleanroom serve --data DIR [--addr 127.0.0.1:8080]
  cleanroom doctor --data DIR                        checks a stopped room's data directory
  cleanroom partner add --room URL --key OPERATOR_KEY --id ID --keys PUBLIC_JWKS [--role ROLE]

A partner (every verb takes --room URL --key KEY):
  cleanroom collab create --collab ID --members a,b --kind email [--mode blinded|hashed] [--settings FILE]
  cleanroom collab accept --collab ID --settings FILE | --settings-digest HEX
  cleanroom collab revoke --collab ID
  cleanroom policy propose --collab ID --file MODULE.rego | approve --collab ID --hash H
  cleanroom upload --collab ID --input FILE.csv --id-column COL --kind KIND [--columns a,b]
  cleanroom sync --collab ID [--wait [--timeout 30m]]
  cleanroom match|status|budget --collab ID
  cleanroom query --collab ID --spec FILE
  cleanroom model train --collab ID --spec FILE --out MODEL.json
  cleanroom activate --collab ID --segment FILE --input LIST.csv --id-column COL --out AUDIENCE.csv

On a partner's machine, offline:
  cleanroom normalize --kind email|phone|maid|custom [--profile pair-v1] < ids > match-keys
  cleanroom pair keygen [--out FILE]
  cleanroom pair encrypt --salt-file F --key-file F < match-keys > blinded
  cleanroom pair reencrypt --key-file F < blinded > blinded
  cleanroom pair decrypt --key-file F < blinded > blinded
  cleanroom keygen --name NAME --out FILE
  cleanroom fingerprint --key KEY | --keys PUBLIC_JWKS   what members pin with --pin NAME=FINGERPRINT
  cleanroom model apply --model MODEL.json --input LIST.csv --out SCORES.csv

In a browser (a local console that signs requests with your key):
  cleanroom console --room URL --key KEY [--role partner|analyst|auditor|room-auditor] [--addr 127.0.0.1:8686]

An auditor:
  cleanroom audit export --room URL --key KEY --out FILE   what the room lets this auditor see
  cleanroom audit export --data DIR --out FILE             a stopped room's whole log
  cleanroom audit verify FILE --key KEY [--since CHECKPOINT_FILE] [--json]

Run "cleanroom VERB -h" for a verb's flags.
`

// env is what a verb may touch: no globals, so tests run verbs in-process.
type env struct {
	// ctx ends when the command is interrupted (SIGINT, SIGTERM): every
	// verb does its work under it (Context).
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
}

// Context is the command's context (a background one if none was set).
func (e *env) Context() context.Context {
	if e.ctx == nil {
		return context.Background()
	}
	return e.ctx
}

type verb func(e *env, args []string) error

func verbs() map[string]verb {
	return map[string]verb{
		"normalize":   runNormalize,
		"pair":        runPair,
		"keygen":      runKeygen,
		"fingerprint": runFingerprint,
		"console":     runConsole,
		"audit":       runAudit,
		"init":        runInit,
		"serve":       runServe,
		"doctor":      runDoctor,
		"partner":     runPartner,
		"collab":      runCollab,
		"upload":      runUpload,
		"sync":        runSync,
		"match":       runMatch,
		"status":      runStatus,
		"query":       runQuery,
		"budget":      runBudget,
		"demo":        runDemo,
		"policy":      runPolicy,
		"model":       runModel,
		"activate":    runActivate,
		"version":     runVersion,
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal ends the process at once
	}()
	code := run(&env{ctx: ctx, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

// exitInterrupted is the exit status of a command stopped by a signal, as
// shells report one stopped by SIGINT.
const exitInterrupted = 130

// run executes one command line and returns the process exit code: 0 on
// success, 1 on failure, 2 on a usage error, 130 if interrupted.
func run(e *env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(e.stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args[0] = "version"
	}
	v, ok := verbs()[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "cleanroom: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	err := v(e, args[1:])
	var h hintError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(e.stderr, "cleanroom %s: %v\n", args[0], err)
		return 2
	case e.Context().Err() != nil && !errors.As(err, &h):
		// Stopped by a signal, in the middle of something that has no
		// more to say than that.
		fmt.Fprintf(e.stderr, "cleanroom %s: interrupted (%v)\n", args[0], context.Cause(e.Context()))
		return exitInterrupted
	}
	fmt.Fprintf(e.stderr, "cleanroom %s: %v\n", args[0], err)
	if errors.As(err, &h) {
		fmt.Fprintf(e.stderr, "  hint: %s\n", h.hint)
	}
	if e.Context().Err() != nil {
		return exitInterrupted
	}
	return 1
}

// subcommand is one verb of a verb with subcommands (pair, audit).
type subcommand struct {
	name string
	run  verb
}

// runSubcommand runs the subcommand args[0] of verb; with none, or -h, it
// prints the verb's usage.
func runSubcommand(e *env, verb, usage string, args []string, subs []subcommand) error {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	list := strings.Join(names, ", ")
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(e.stderr, usage)
		if len(args) == 0 {
			return usagef("%s needs a subcommand: %s", verb, list)
		}
		return nil
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(e, args[1:])
		}
	}
	return usagef("unknown %s subcommand %q (%s)", verb, args[0], list)
}

// usageError is a mistake in the command line itself (exit status 2).
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// hintError carries a suggestion of what to do next, printed under the
// error, in the manner of age's errorWithHint.
type hintError struct {
	err  error
	hint string
}

func (h hintError) Error() string { return h.err.Error() }
func (h hintError) Unwrap() error { return h.err }

func withHint(err error, hint string) error { return hintError{err, hint} }

// verbFlags is a verb's flag set. The flag package's own printing is
// silenced so that a bad flag is reported once, in our format, and -h prints
// the synopsis, a description and the flags to stderr.
type verbFlags struct {
	*flag.FlagSet
	e                     *env
	name, synopsis, about string
}

func newFlags(e *env, name, synopsis, about string) *verbFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &verbFlags{fs, e, name, synopsis, strings.TrimSpace(about)}
}

// collabFlag defines --collab, the collaboration a verb acts on, and --id
// as its alias (the name collab verbs used).
func (f *verbFlags) collabFlag() *string {
	var id string
	f.StringVar(&id, "collab", "", "the collaboration (required)")
	f.StringVar(&id, "id", "", "the same as --collab")
	return &id
}

// parse parses args and refuses stray positional arguments.
func (f *verbFlags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(f.e.stderr, "Usage: cleanroom %s %s\n\n%s\n\nFlags:\n", f.name, f.synopsis, f.about)
			f.SetOutput(f.e.stderr)
			f.PrintDefaults()
			return err
		}
		return usagef("%v (see cleanroom %s -h)", err, f.name)
	}
	if f.NArg() > 0 {
		return usagef("unexpected argument %q (see cleanroom %s -h)", f.Arg(0), f.name)
	}
	return nil
}
