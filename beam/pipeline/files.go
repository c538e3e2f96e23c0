package pipeline

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	// Local files; gs:// and s3:// with the runners that import those.
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local"

	"github.com/opencleanroom/cleanroom/cleanroom/columnar"
)

// Files are read and written through Beam's filesystems, so that an export
// or a partner's list can be a local directory (shared with the workers)
// or an object store URL, as the runner allows.

// join joins a directory (local or URL) and a slash-separated relative path.
func join(dir, rel string) string {
	if strings.Contains(dir, "://") {
		return strings.TrimSuffix(dir, "/") + "/" + rel
	}
	return path.Join(dir, rel)
}

// openRead opens a file for reading.
func openRead(ctx context.Context, name string) (io.ReadCloser, error) {
	fs, err := filesystem.New(ctx, name)
	if err != nil {
		return nil, err
	}
	r, err := fs.OpenRead(ctx, name)
	if err != nil {
		fs.Close()
		return nil, err
	}
	return closers{r, r, fs}, nil
}

// openWrite creates (or replaces) a file.
func openWrite(ctx context.Context, name string) (io.WriteCloser, error) {
	fs, err := filesystem.New(ctx, name)
	if err != nil {
		return nil, err
	}
	w, err := fs.OpenWrite(ctx, name)
	if err != nil {
		fs.Close()
		return nil, err
	}
	return writeClosers{w, w, fs}, nil
}

type closers struct {
	io.Reader
	a, b io.Closer
}

func (c closers) Close() error {
	err := c.a.Close()
	if berr := c.b.Close(); err == nil {
		err = berr
	}
	return err
}

type writeClosers struct {
	io.Writer
	a, b io.Closer
}

func (c writeClosers) Close() error {
	err := c.a.Close()
	if berr := c.b.Close(); err == nil {
		err = berr
	}
	return err
}

// readManifest reads an export's manifest.
func readManifest(ctx context.Context, dir string) (*columnar.Manifest, error) {
	r, err := openRead(ctx, join(dir, columnar.ManifestName))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return nil, err
	}
	return columnar.ParseManifest(b)
}

// openVerified opens an export's file, checked against its manifest entry
// as it is read to its end.
func openVerified(ctx context.Context, dir string, f columnar.File) (io.ReadCloser, error) {
	r, err := openRead(ctx, join(dir, f.Path))
	if err != nil {
		return nil, fmt.Errorf("pipeline: opening an export file: %w", err)
	}
	return closers{columnar.Verified(r, f), r, nopCloser{}}, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// drain reads r to its end (so that Verified checks it) and closes it.
func drain(r io.ReadCloser) error {
	_, err := io.Copy(io.Discard, r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	return err
}
