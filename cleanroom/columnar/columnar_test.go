package columnar

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// token is row i's token; rows i and i+dup share one when dup > 0.
func token(i int) []byte {
	h := sha256.Sum256(binary.LittleEndian.AppendUint64(nil, uint64(i)))
	return h[:]
}

type rec struct {
	token []byte
	vals  []string
}

// writeExport writes members' datasets (rows in order; pairs in reverse
// order, as a relayed layer arrives in no particular one).
func writeExport(t *testing.T, dir string, shards int, members map[string][]rec, order []string, cols map[string][]string) *Manifest {
	t.Helper()
	w, err := Create(dir, shards)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range order {
		recs := members[name]
		mw, err := w.Member(name, int64(len(recs)), cols[name])
		if err != nil {
			t.Fatal(err)
		}
		for i := len(recs) - 1; i >= 0; i-- {
			if err := mw.Pair(recs[i].token, uint32(i)); err != nil {
				t.Fatal(err)
			}
		}
		for i, r := range recs {
			vals := make([][]byte, len(r.vals))
			for j, v := range r.vals {
				vals[j] = []byte(v)
			}
			if err := mw.Values(uint32(i), vals); err != nil {
				t.Fatal(err)
			}
		}
		if err := mw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readBack reads a member's export back: each row's token and values, and
// the shard each was in.
func readBack(t *testing.T, dir string, m *Manifest, mem *Member) (tokens map[uint32][]byte, vals map[uint32][]string, shardOf map[uint32]int) {
	t.Helper()
	tokens, vals, shardOf = map[uint32][]byte{}, map[uint32][]string{}, map[uint32]int{}
	for s := range m.Shards {
		r, err := Open(dir, mem.Pairs[s])
		if err != nil {
			t.Fatal(err)
		}
		err = ReadPairs(r, func(tok []byte, rows []uint32) error {
			for i, row := range rows {
				if _, dup := tokens[row]; dup {
					return fmt.Errorf("row %d twice", row)
				}
				tokens[row] = bytes.Clone(tok[i*TokenSize : (i+1)*TokenSize])
				shardOf[row] = s
			}
			return nil
		})
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		r, err = Open(dir, mem.Cols[s])
		if err != nil {
			t.Fatal(err)
		}
		err = ReadCols(r, len(mem.Columns), nil, func(rows []uint32, cols []*Column) error {
			for i, row := range rows {
				if shardOf[row] != s {
					return fmt.Errorf("row %d: values in shard %d, token in %d", row, s, shardOf[row])
				}
				for _, c := range cols {
					vals[row] = append(vals[row], string(c.Value(i)))
				}
			}
			return nil
		})
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return tokens, vals, shardOf
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shards int
		rows   int
	}{
		{"one shard", 1, 10},
		{"many shards, several blocks", 16, 3 * blockRows * 16 / 2},
		{"more shards than rows", 64, 5},
		{"empty list", 4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			members := map[string][]rec{}
			for _, name := range []string{"a", "b"} {
				for i := range tc.rows {
					tok := token(i)
					if i%7 == 3 {
						tok = token(i - 1) // a duplicate identifier
					}
					members[name] = append(members[name], rec{tok, []string{fmt.Sprint(i % 5), "", name + fmt.Sprint(i)}})
				}
			}
			cols := map[string][]string{"a": {"band", "empty", "id"}, "b": {"band", "empty", "id"}}
			dir := filepath.Join(t.TempDir(), "export")
			m := writeExport(t, dir, tc.shards, members, []string{"a", "b"}, cols)
			if m.Shards != tc.shards || len(m.Members) != 2 || m.Members[1].Name != "b" || m.Members[0].Rows != int64(tc.rows) {
				t.Fatalf("manifest %+v", m)
			}
			for _, mem := range m.Members {
				tokens, vals, shardOf := readBack(t, dir, m, &mem)
				if len(tokens) != tc.rows || len(vals) != tc.rows {
					t.Fatalf("%s: read %d tokens, %d values of %d rows", mem.Name, len(tokens), len(vals), tc.rows)
				}
				byToken := map[string]int{}
				for i, r := range members[mem.Name] {
					if !bytes.Equal(tokens[uint32(i)], r.token) || fmt.Sprint(vals[uint32(i)]) != fmt.Sprint(r.vals) {
						t.Fatalf("%s row %d differs", mem.Name, i)
					}
					if s, ok := byToken[string(r.token)]; ok && s != shardOf[uint32(i)] {
						t.Fatalf("one token in two shards")
					}
					byToken[string(r.token)] = shardOf[uint32(i)]
				}
			}
			// Both members' copies of a token are in the same shard.
			_, _, sa := readBack(t, dir, m, &m.Members[0])
			_, _, sb := readBack(t, dir, m, &m.Members[1])
			for row, s := range sa {
				if sb[row] != s {
					t.Fatalf("row %d: shard %d for a, %d for b", row, s, sb[row])
				}
			}
		})
	}
}

func TestShardsSpread(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "export")
	var recs []rec
	for i := range 64 * 1000 {
		recs = append(recs, rec{token: token(i)})
	}
	m := writeExport(t, dir, 64, map[string][]rec{"a": recs, "b": recs[:10]}, []string{"a", "b"}, nil)
	for s, f := range m.Members[0].Pairs {
		rows := (f.Bytes - 8) / (TokenSize + 4)
		if rows < 800 || rows > 1200 {
			t.Errorf("shard %d holds about %d of 1000 expected rows", s, rows)
		}
	}
}

func TestWriterRefuses(t *testing.T) {
	w, err := Create(filepath.Join(t.TempDir(), "x"), 2)
	if err != nil {
		t.Fatal(err)
	}
	mw, err := w.Member("a", 2, []string{"c"})
	if err != nil {
		t.Fatal(err)
	}
	if err := mw.Pair(token(0)[:31], 0); err == nil {
		t.Error("a short token was taken")
	}
	if err := mw.Pair(token(0), 2); err == nil {
		t.Error("a row out of range was taken")
	}
	if err := mw.Pair(token(0), 0); err != nil {
		t.Fatal(err)
	}
	if err := mw.Pair(token(1), 0); err == nil {
		t.Error("a row's second pair was taken")
	}
	if err := mw.Values(0, [][]byte{nil}); err == nil {
		t.Error("values were taken before every row had its pair")
	}
	if _, err := Create(filepath.Join(t.TempDir(), "y"), MaxShards+1); err == nil {
		t.Error("too many shards were taken")
	}
}

func TestCorruptionDetected(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "export")
	recs := []rec{{token(1), []string{"x"}}, {token(2), []string{"y"}}}
	m := writeExport(t, dir, 1, map[string][]rec{"a": recs, "b": recs}, []string{"a", "b"}, map[string][]string{"a": {"c"}, "b": {"c"}})
	f := m.Members[0].Cols[0]
	path := filepath.Join(dir, f.Path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1 // the last value's byte: the format still parses
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir, f)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = ReadCols(r, 1, nil, func([]uint32, []*Column) error { return nil })
	if err == nil {
		// ReadCols stops at the last block; the digest is checked at EOF.
		_, err = io.Copy(io.Discard, r)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a changed byte read as %v", err)
	}
}

func TestParseManifestRefuses(t *testing.T) {
	good := `{"format":"cleanroom-columnar/1","shards":1,"members":[{"name":"a","rows":0,"columns":[],"pairs":[{"path":"0/pairs-0000.bin"}],"cols":[{"path":"0/cols-0000.bin"}]},{"name":"b","rows":0,"columns":[],"pairs":[{"path":"1/pairs-0000.bin"}],"cols":[{"path":"1/cols-0000.bin"}]}]}`
	if _, err := ParseManifest([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"format":     `{"format":"other","shards":1}`,
		"no members": `{"format":"cleanroom-columnar/1","shards":1,"members":[]}`,
		"escape":     `{"format":"cleanroom-columnar/1","shards":1,"members":[{"name":"a","pairs":[{"path":"../x"}],"cols":[{"path":"c"}]},{"name":"b","pairs":[{"path":"p"}],"cols":[{"path":"c"}]}]}`,
		"absolute":   `{"format":"cleanroom-columnar/1","shards":1,"members":[{"name":"a","pairs":[{"path":"/etc/x"}],"cols":[{"path":"c"}]},{"name":"b","pairs":[{"path":"p"}],"cols":[{"path":"c"}]}]}`,
		"shards":     `{"format":"cleanroom-columnar/1","shards":2,"members":[{"name":"a","pairs":[{"path":"p"}],"cols":[{"path":"c"}]},{"name":"b","pairs":[{"path":"p"}],"cols":[{"path":"c"}]}]}`,
	} {
		if _, err := ParseManifest([]byte(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestShardsFor(t *testing.T) {
	for _, tc := range []struct {
		rows int64
		want int
	}{{0, 1}, {1 << 20, 1}, {1<<20 + 1, 2}, {10_000_000, 16}, {500_000_000, 512}, {1 << 40, MaxShards}} {
		if got := Shards(tc.rows); got != tc.want {
			t.Errorf("Shards(%d) = %d, want %d", tc.rows, got, tc.want)
		}
	}
}

func FuzzReadPairs(f *testing.F) {
	f.Add([]byte(pairsMagic))
	f.Add(append([]byte(pairsMagic), 1, 0, 0, 0))
	f.Add(append(append([]byte(pairsMagic), 1, 0, 0, 0), make([]byte, 36)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		err := ReadPairs(bytes.NewReader(b), func(tokens []byte, rows []uint32) error {
			if len(tokens) != TokenSize*len(rows) {
				t.Fatalf("%d token bytes for %d rows", len(tokens), len(rows))
			}
			n += len(rows)
			return nil
		})
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

func FuzzReadCols(f *testing.F) {
	f.Add([]byte(colsMagic+"\x01\x00"), 1)
	f.Add(append([]byte(colsMagic+"\x01\x00"), 1, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'x'), 1)
	f.Add(append([]byte(colsMagic+"\x02\x00"), 1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'x'), 2)
	f.Fuzz(func(t *testing.T, b []byte, c int) {
		if c < 0 || c > 4 {
			return
		}
		for _, want := range [][]bool{nil, make([]bool, c)} {
			err := ReadCols(bytes.NewReader(b), c, want, func(rows []uint32, cols []*Column) error {
				for _, col := range cols {
					if col == nil {
						continue
					}
					for i := range rows {
						_ = col.Value(i)
					}
				}
				return nil
			})
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error %v", err)
			}
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"format":"cleanroom-columnar/1","shards":1,"members":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		for _, mem := range m.Members {
			for _, f := range append(mem.Pairs, mem.Cols...) {
				if !filepath.IsLocal(f.Path) {
					t.Fatalf("path %q accepted", f.Path)
				}
			}
		}
	})
}
