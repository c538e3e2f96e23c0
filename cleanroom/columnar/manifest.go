package columnar

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Format names this layout's version in every manifest.
const Format = "cleanroom-columnar/1"

// ManifestName is the manifest's file name in an export's directory.
const ManifestName = "manifest.json"

// MaxShards bounds the shards of an export: a member's writer holds one
// open file per shard.
const MaxShards = 1024

// ErrCorrupt means an export's file does not follow the format or does not
// match its manifest (size or digest): it was damaged or altered. Export
// again.
var ErrCorrupt = errors.New("columnar: export file is corrupt")

// Manifest describes an export.
type Manifest struct {
	Format  string   `json:"format"`
	Shards  int      `json:"shards"`
	Members []Member `json:"members"`
}

// Member is one member's dataset in an export.
type Member struct {
	Name    string   `json:"name"`
	Rows    int64    `json:"rows"`
	Columns []string `json:"columns"`
	// Pairs and Cols are the member's files, one per shard.
	Pairs []File `json:"pairs"`
	Cols  []File `json:"cols"`
}

// File is one file of an export: its path relative to the export's
// directory (always with forward slashes), size and SHA-256.
type File struct {
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Column returns the index of a column of the member, or -1.
func (m *Member) Column(name string) int {
	for i, c := range m.Columns {
		if c == name {
			return i
		}
	}
	return -1
}

// Member returns the member named name, or nil.
func (m *Manifest) Member(name string) *Member {
	for i := range m.Members {
		if m.Members[i].Name == name {
			return &m.Members[i]
		}
	}
	return nil
}

// ParseManifest decodes and checks a manifest.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", ErrCorrupt, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%w: manifest format %q, want %q", ErrCorrupt, m.Format, Format)
	}
	if m.Shards < 1 || m.Shards > MaxShards || len(m.Members) < 2 {
		return nil, fmt.Errorf("%w: manifest: %d shards, %d members", ErrCorrupt, m.Shards, len(m.Members))
	}
	for _, mem := range m.Members {
		if len(mem.Pairs) != m.Shards || len(mem.Cols) != m.Shards || mem.Rows < 0 || len(mem.Columns) > 0xffff {
			return nil, fmt.Errorf("%w: manifest: member files do not match the shards", ErrCorrupt)
		}
		for _, f := range append(mem.Pairs[:len(mem.Pairs):len(mem.Pairs)], mem.Cols...) {
			if !localPath(f.Path) {
				return nil, fmt.Errorf("%w: manifest: a file path leaves the export", ErrCorrupt)
			}
		}
	}
	return &m, nil
}

// ReadManifest reads dir's manifest.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, err
	}
	return ParseManifest(b)
}

// localPath reports whether p names a file inside the export.
func localPath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && !strings.Contains(p, "\\") && filepath.IsLocal(filepath.FromSlash(p))
}

// Verified wraps r, the contents of f, so that reading it to its end fails
// with ErrCorrupt unless it had f's size and digest. A reader that stops
// early (an error of its own) checks nothing.
func Verified(r io.Reader, f File) io.Reader {
	return &verified{r: r, f: f, h: sha256.New()}
}

type verified struct {
	r io.Reader
	f File
	h hash.Hash
	n int64
}

func (v *verified) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.f.Bytes {
		return n, fmt.Errorf("%w: %s is longer than its manifest says", ErrCorrupt, v.f.Path)
	}
	if err == io.EOF && (v.n != v.f.Bytes || hex.EncodeToString(v.h.Sum(nil)) != v.f.SHA256) {
		return n, fmt.Errorf("%w: %s does not match its manifest", ErrCorrupt, v.f.Path)
	}
	return n, err
}

// Open opens file f of the export in dir for reading, Verified.
func Open(dir string, f File) (io.ReadCloser, error) {
	file, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.Path)))
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{Verified(file, f), file}, nil
}
