package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/opencleanroom/cleanroom/crypto"
)

const pairUsage = `Usage:
  cleanroom pair keygen [--out FILE] [--force]
  cleanroom pair encrypt --salt-file F --key-file F < match-keys > blinded
  cleanroom pair reencrypt --key-file F < blinded > blinded
  cleanroom pair decrypt --key-file F < blinded > blinded

PAIR-compatible commutative encryption on ristretto255 (IAB Tech Lab PAIR,
SHA-256 + ristretto255). Lines in, lines out, in order. The salt file holds
the collaboration secret as 64 hex characters; the key file holds the
partner's scalar in standard base64. Both must be readable by their owner
only. Any invalid input line stops the command with exit status 1: a blinded
value that does not decode was damaged or forged, and skipping it would shift
every following row.
`

// pairBatch is how many lines are read before a batch goes to all cores.
const pairBatch = 8192

func runPair(e *env, args []string) error {
	return runSubcommand(e, "pair", pairUsage, args, []subcommand{
		{"keygen", runPairKeygen},
		{"encrypt", runPairEncrypt},
		{"reencrypt", func(e *env, args []string) error { return runPairMul(e, "reencrypt", args) }},
		{"decrypt", func(e *env, args []string) error { return runPairMul(e, "decrypt", args) }},
	})
}

func runPairKeygen(e *env, args []string) error {
	fs := newFlags(e, "pair keygen", "[--out FILE] [--force]", `
Makes a new PAIR scalar and writes it, in standard base64, to FILE with mode
0600, or to stdout without --out.`)
	out := fs.String("out", "", "file to write the key to (default: stdout)")
	force := fs.Bool("force", false, "replace an existing file")
	if err := fs.parse(args); err != nil {
		return err
	}
	k, err := crypto.GenerateBlindingKey(nil)
	if err != nil {
		return err
	}
	text := []byte(k.Base64() + "\n")
	if *out == "" {
		_, err := e.stdout.Write(text)
		return err
	}
	return writeSecret(*out, text, *force)
}

func writeSecret(path string, data []byte, force bool) error {
	err := crypto.WriteSecretFile(path, data, force)
	if errors.Is(err, fs.ErrExist) {
		return withHint(err, "pass --force to replace it, or choose another --out")
	}
	return err
}

func runPairEncrypt(e *env, args []string) error {
	fs := newFlags(e, "pair encrypt", "--salt-file F --key-file F < match-keys > blinded", `
Reads match keys (64 hex characters, as written by cleanroom normalize), one
per line, and writes k·P for each, in standard base64, one per line.`)
	saltFile := fs.String("salt-file", "", "file holding the collaboration secret, 64 hex characters (required)")
	keyFile := fs.String("key-file", "", "file holding this partner's scalar, standard base64 (required)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *saltFile == "" || *keyFile == "" {
		return usagef("--salt-file and --key-file are required")
	}
	ks, err := readSalt(*saltFile)
	if err != nil {
		return err
	}
	k, err := readScalar(*keyFile)
	if err != nil {
		return err
	}
	keys := make([]crypto.MatchKey, 0, pairBatch)
	out := make([]crypto.Element, pairBatch)
	return pairLoop(e, func(line []byte) error {
		mk, err := crypto.ParseMatchKey(string(line))
		if err != nil {
			return errors.New("not a match key (want 64 hex characters)")
		}
		keys = append(keys, mk)
		return nil
	}, func(ctx context.Context) ([]crypto.Element, error) {
		n := len(keys)
		err := k.EncryptBatch(ctx, ks, out[:n], keys)
		keys = keys[:0]
		return out[:n], err
	})
}

func runPairMul(e *env, op string, args []string) error {
	about := "Reads blinded values (standard base64), one per line, and writes k·C for each:\nanother partner's values encrypted again with this partner's key."
	if op == "decrypt" {
		about = "Reads blinded values (standard base64), one per line, and writes k⁻¹·C for each:\nthe values with this partner's layer of encryption removed."
	}
	fs := newFlags(e, "pair "+op, "--key-file F < blinded > blinded", about)
	keyFile := fs.String("key-file", "", "file holding this partner's scalar, standard base64 (required)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *keyFile == "" {
		return usagef("--key-file is required")
	}
	k, err := readScalar(*keyFile)
	if err != nil {
		return err
	}
	batch := k.ReencryptBatch
	if op == "decrypt" {
		batch = k.DecryptBatch
	}
	in := make([]crypto.Element, 0, pairBatch)
	return pairLoop(e, func(line []byte) error {
		el, err := crypto.ParseElement(line)
		if err != nil {
			return err
		}
		in = append(in, el)
		return nil
	}, func(ctx context.Context) ([]crypto.Element, error) {
		err := batch(ctx, in, in)
		res := in
		in = in[:0]
		return res, err
	})
}

// pairLoop feeds input lines to add, and every pairBatch lines (and at the
// end) runs flush and writes what it returns, so order is kept and all
// cores work on each batch.
func pairLoop(e *env, add func([]byte) error, flush func(context.Context) ([]crypto.Element, error)) error {
	ctx := e.Context()
	in := newLines(e.stdin)
	w := bufio.NewWriterSize(e.stdout, 64<<10)
	var (
		buf     []byte
		pending int
		first   = 1 // line number of the first pending line
	)
	emit := func() error {
		res, err := flush(ctx)
		if err != nil {
			return fmt.Errorf("lines %d-%d: %w", first, first+pending-1, err)
		}
		for _, el := range res {
			buf = append(el.AppendText(buf[:0]), '\n')
			w.Write(buf)
		}
		first += pending
		pending = 0
		return nil
	}
	for {
		line, ok := in.next()
		if !ok {
			break
		}
		if err := add(line); err != nil {
			w.Flush()
			return fmt.Errorf("line %d: %w", in.n, err)
		}
		if pending++; pending == pairBatch {
			if err := emit(); err != nil {
				return err
			}
		}
	}
	if err := in.err(); err != nil {
		w.Flush()
		return err
	}
	if err := emit(); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

func readSalt(path string) (*crypto.Secret, error) {
	b, err := readSecret(path)
	if err != nil {
		return nil, err
	}
	ks, err := crypto.ParseSecret(string(b))
	if err != nil {
		return nil, withHint(fmt.Errorf("%s: %w", path, err), "the salt file holds the collaboration secret as 64 hex characters")
	}
	return ks, nil
}

func readScalar(path string) (*crypto.BlindingKey, error) {
	b, err := readSecret(path)
	if err != nil {
		return nil, err
	}
	k, err := crypto.ParseBlindingKey(string(b))
	if err != nil {
		return nil, withHint(fmt.Errorf("%s: %w", path, err), "make a key file with: cleanroom pair keygen --out FILE")
	}
	return k, nil
}

func readSecret(path string) ([]byte, error) {
	b, err := crypto.ReadSecretFile(path)
	switch {
	case errors.Is(err, crypto.ErrInsecurePermissions):
		return nil, withHint(err, "run: chmod 600 "+path)
	case errors.Is(err, os.ErrNotExist):
		return nil, withHint(err, "check the path")
	}
	return b, err
}
