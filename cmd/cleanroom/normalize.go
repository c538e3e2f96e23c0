package main

import (
	"bufio"
	"fmt"

	"github.com/opencleanroom/cleanroom/crypto"
)

// maxReported caps the per-line diagnostics, so a wrong file does not bury
// the terminal; the summary still counts every skipped line.
const maxReported = 20

func runNormalize(e *env, args []string) error {
	fs := newFlags(e, "normalize", "--kind KIND [--profile P] [--country-code N] [--strict] < ids > keys", `
Reads identifiers, one per line, on stdin and writes their match keys (the
lowercase hex SHA-256 of the normalized identifier) on stdout, in the same
order. A line that is not a valid identifier is reported on stderr by its line
number, never its value, and skipped. Input that is already a SHA-256 (64 hex
characters or 44 characters of base64) passes through.`)
	kind := fs.String("kind", "", "identifier kind: email, phone, maid or custom (required)")
	profile := fs.String("profile", crypto.ProfilePAIRv1, "normalization profile: pair-v1 or gmail-v1")
	cc := fs.Int("country-code", 0, "country calling code assumed for phone numbers written without one (1 for the US, 44 for the UK)")
	strict := fs.Bool("strict", false, "stop with exit status 1 at the first invalid line instead of skipping it")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *kind == "" {
		return usagef("--kind is required (email, phone, maid or custom)")
	}
	k, err := crypto.ParseKind(*kind)
	if err != nil {
		return usageError{err.Error()}
	}
	p, err := crypto.LookupProfile(*profile, crypto.ProfileOptions{DefaultCountryCode: *cc})
	if err != nil {
		return usageError{err.Error()}
	}

	in := newLines(e.stdin)
	out := bufio.NewWriterSize(e.stdout, 64<<10)
	var (
		buf           []byte
		keys, skipped int
	)
	for {
		line, ok := in.next()
		if !ok {
			break
		}
		mk, err := p.MatchKey(k, string(line))
		if err != nil {
			if *strict {
				out.Flush()
				return fmt.Errorf("line %d: %w", in.n, err)
			}
			if skipped++; skipped <= maxReported {
				fmt.Fprintf(e.stderr, "cleanroom normalize: line %d: %v (skipped)\n", in.n, err)
			}
			continue
		}
		buf = append(mk.AppendHex(buf[:0]), '\n')
		out.Write(buf)
		keys++
	}
	if err := in.err(); err != nil {
		out.Flush()
		return err
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if skipped > 0 {
		fmt.Fprintf(e.stderr, "cleanroom normalize: %d match keys written, %d invalid lines skipped\n", keys, skipped)
	}
	if keys == 0 && skipped > 0 {
		return withHint(fmt.Errorf("no valid %s identifier in the input", k),
			"check --kind, and --country-code for national phone numbers")
	}
	return nil
}
