package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"

	"github.com/opencleanroom/cleanroom/crypto"
)

// PAIR encryption of a partner's list, on its own cluster: the list is a
// directory of text files (split however the partner likes, e.g. split
// -l), one value a line; each file is one element of the pipeline, read,
// encrypted eight lanes at a time on all of a worker's cores (crypto's
// EncryptBatch and ReencryptBatch) and written, line for line in the same
// order, to a file of the same name in the output directory. Lines are
// what cleanroom pair encrypt and reencrypt read and write: match keys (64
// hex characters) in, standard base64 elements out.
//
// The secrets stay files on the workers (KeyFile, SaltFile: paths, read in
// Setup): the pipeline's description, which a runner's job service
// receives, holds their paths, never their contents.

// PAIR operations.
const (
	OpEncrypt   = "encrypt"   // match keys → k·H(salt, key)
	OpReencrypt = "reencrypt" // elements → k·element
)

func init() {
	register.DoFn3x1[context.Context, string, func(int64), error](&pairFileFn{})
	register.Emitter1[int64]()
}

// pairBatch is how many lines go to the eight-lane batch at a time.
const pairBatch = 8192

type pairFileFn struct {
	Op       string
	KeyFile  string
	SaltFile string // OpEncrypt
	Out      string // the output directory or URL

	key  *crypto.BlindingKey
	salt *crypto.Secret
}

func (f *pairFileFn) Setup() error {
	b, err := crypto.ReadSecretFile(f.KeyFile)
	if err != nil {
		return fmt.Errorf("pipeline: the key file: %w", err)
	}
	if f.key, err = crypto.ParseBlindingKey(string(b)); err != nil {
		return fmt.Errorf("pipeline: the key file: %w", err)
	}
	if f.Op == OpEncrypt {
		if b, err = crypto.ReadSecretFile(f.SaltFile); err != nil {
			return fmt.Errorf("pipeline: the salt file: %w", err)
		}
		if f.salt, err = crypto.ParseSecret(strings.TrimSpace(string(b))); err != nil {
			return fmt.Errorf("pipeline: the salt file: %w", err)
		}
	}
	return nil
}

// ProcessElement encrypts one file and emits its number of lines.
func (f *pairFileFn) ProcessElement(ctx context.Context, name string, emit func(int64)) error {
	in, err := openRead(ctx, name)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := openWrite(ctx, join(f.Out, path.Base(name)))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 1<<20)
	n, err := f.file(ctx, in, w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pipeline: %s: %w", path.Base(name), err)
	}
	emit(n)
	return nil
}

// file encrypts the lines of in to w, a batch at a time; an invalid line
// stops it (skipping it would shift every following row).
func (f *pairFileFn) file(ctx context.Context, in interface{ Read([]byte) (int, error) }, w *bufio.Writer) (int64, error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var (
		keys  = make([]crypto.MatchKey, 0, pairBatch)
		elems = make([]crypto.Element, 0, pairBatch)
		out   = make([]crypto.Element, pairBatch)
		line  int64
		text  []byte
	)
	flush := func() error {
		var res []crypto.Element
		switch f.Op {
		case OpEncrypt:
			res = out[:len(keys)]
			if err := f.key.EncryptBatch(ctx, f.salt, res, keys); err != nil {
				return err
			}
			keys = keys[:0]
		default:
			res = elems
			if err := f.key.ReencryptBatch(ctx, res, res); err != nil {
				return err
			}
			elems = elems[:0]
		}
		for _, e := range res {
			text = append(e.AppendText(text[:0]), '\n')
			if _, err := w.Write(text); err != nil {
				return err
			}
		}
		return nil
	}
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		switch f.Op {
		case OpEncrypt:
			k, err := crypto.ParseMatchKey(string(b))
			if err != nil {
				return line, fmt.Errorf("line %d: not a match key (want 64 hex characters)", line)
			}
			keys = append(keys, k)
		default:
			e, err := crypto.ParseElement(b)
			if err != nil {
				return line, fmt.Errorf("line %d: %w", line, err)
			}
			elems = append(elems, e)
		}
		if len(keys)+len(elems) == pairBatch {
			if err := flush(); err != nil {
				return line, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return line, err
	}
	return line, flush()
}

// PAIR adds to s the pipeline that runs op on every file of the list in
// dir (a directory or URL), writing the results to out, and returns the
// total number of lines.
func PAIR(ctx context.Context, s beam.Scope, op, keyFile, saltFile, dir, out string) (beam.PCollection, error) {
	if op != OpEncrypt && op != OpReencrypt {
		return beam.PCollection{}, fmt.Errorf("pipeline: unknown PAIR operation %q", op)
	}
	files, err := listFiles(ctx, dir)
	if err != nil {
		return beam.PCollection{}, err
	}
	if len(files) == 0 {
		return beam.PCollection{}, errors.New("pipeline: the input directory has no files")
	}
	fn := &pairFileFn{Op: op, KeyFile: keyFile, SaltFile: saltFile, Out: out}
	lines := beam.ParDo(s.Scope("pair-"+op), fn, beam.Reshuffle(s, beam.CreateList(s, files)))
	return stats.Sum(s, lines), nil
}

// listFiles lists the files of a directory or URL, in name order.
func listFiles(ctx context.Context, dir string) ([]string, error) {
	glob := join(dir, "*")
	fs, err := filesystem.New(ctx, glob)
	if err != nil {
		return nil, err
	}
	defer fs.Close()
	files, err := fs.List(ctx, glob)
	sort.Strings(files)
	return files, err
}
