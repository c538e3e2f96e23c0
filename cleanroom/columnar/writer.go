package columnar

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"io"
	"os"
	"path/filepath"
)

// blockRows is how many rows a writer gathers per shard before it writes a
// block: large enough that a block's headers cost nothing, small enough
// that a thousand shards' buffers stay in tens of megabytes.
const blockRows = 4096

// Writer writes an export into a directory, one member at a time: all of
// a member's pairs (in any order), then its values (by ascending row).
type Writer struct {
	dir    string
	shards int
	seed   maphash.Seed
	m      Manifest
}

// Create starts an export in dir, which must not exist yet, with the given
// number of shards.
func Create(dir string, shards int) (*Writer, error) {
	if shards < 1 || shards > MaxShards {
		return nil, fmt.Errorf("columnar: %d shards (1 to %d)", shards, MaxShards)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	return &Writer{dir: dir, shards: shards, seed: maphash.MakeSeed(), m: Manifest{Format: Format, Shards: shards}}, nil
}

// Shards returns a shard count for lists of the given total rows: about a
// million rows per member and shard (a worker joins a shard of every
// member in memory), a power of two, at least 1.
func Shards(rows int64) int {
	s := 1
	for int64(s)*(1<<20) < rows && s < MaxShards {
		s <<= 1
	}
	return s
}

// MemberWriter writes one member's dataset.
type MemberWriter struct {
	w       *Writer
	mem     Member
	shardOf []uint16 // per row: its token's shard; noShard before its pair
	files   []*fileWriter
	vals    []colBlock
	next    int64 // the next row Values expects, at least
	pairs   int64
}

const noShard = 0xffff

// Member starts member index len(previous members), named name, with rows
// rows (0 to rows-1) and the named columns. The previous member must be
// closed.
func (w *Writer) Member(name string, rows int64, columns []string) (*MemberWriter, error) {
	if rows < 0 || rows > 1<<32-1 || len(columns) > 0xffff {
		return nil, fmt.Errorf("columnar: %d rows, %d columns", rows, len(columns))
	}
	idx := len(w.m.Members)
	if err := os.Mkdir(filepath.Join(w.dir, fmt.Sprint(idx)), 0o700); err != nil {
		return nil, err
	}
	mw := &MemberWriter{w: w, mem: Member{Name: name, Rows: rows, Columns: append([]string{}, columns...)}, shardOf: make([]uint16, rows)}
	for i := range mw.shardOf {
		mw.shardOf[i] = noShard
	}
	files := make([]*fileWriter, w.shards)
	for s := range files {
		f, err := mw.create(fmt.Sprintf("%d/pairs-%04d.bin", idx, s), pairsMagic)
		if err != nil {
			mw.abort(files)
			return nil, err
		}
		files[s] = f
	}
	mw.files = files
	return mw, nil
}

// Pair adds a token (TokenSize bytes) and its row.
func (mw *MemberWriter) Pair(token []byte, row uint32) error {
	if len(token) != TokenSize || int64(row) >= mw.mem.Rows || mw.shardOf[row] != noShard || mw.vals != nil {
		return errors.New("columnar: a pair out of place (wrong size, row out of range or repeated, or after values)")
	}
	s := int(maphash.Bytes(mw.w.seed, token) % uint64(mw.w.shards))
	mw.shardOf[row] = uint16(s)
	mw.pairs++
	f := mw.files[s]
	f.tokens = append(f.tokens, token...)
	f.rows = append(f.rows, row)
	if len(f.rows) == blockRows {
		return f.flushPairs()
	}
	return nil
}

// Values adds row's values, one per column, after every pair; rows come in
// ascending order.
func (mw *MemberWriter) Values(row uint32, values [][]byte) error {
	if mw.vals == nil {
		if err := mw.startValues(); err != nil {
			return err
		}
	}
	if int64(row) < mw.next || int64(row) >= mw.mem.Rows || len(values) != len(mw.mem.Columns) {
		return errors.New("columnar: values out of place (rows must ascend, one value per column)")
	}
	mw.next = int64(row) + 1
	s := mw.shardOf[row]
	if s == noShard {
		return errors.New("columnar: values for a row without a token")
	}
	b := &mw.vals[s]
	b.rows = append(b.rows, row)
	for j, v := range values {
		b.data[j] = append(b.data[j], v...)
		b.ends[j] = append(b.ends[j], uint32(len(b.data[j])))
		b.bytes += len(v)
	}
	if len(b.rows) == blockRows || b.bytes > 1<<28 {
		return mw.files[s].flushCols(b)
	}
	return nil
}

// startValues closes the pairs files and opens the cols files.
func (mw *MemberWriter) startValues() error {
	if mw.pairs != mw.mem.Rows {
		return fmt.Errorf("columnar: %d pairs for %d rows", mw.pairs, mw.mem.Rows)
	}
	for _, f := range mw.files {
		if err := f.flushPairs(); err != nil {
			return err
		}
		file, err := f.close()
		if err != nil {
			return err
		}
		mw.mem.Pairs = append(mw.mem.Pairs, file)
	}
	idx := len(mw.w.m.Members)
	mw.vals = make([]colBlock, mw.w.shards)
	for s := range mw.files {
		f, err := mw.create(fmt.Sprintf("%d/cols-%04d.bin", idx, s), colsMagic)
		if err != nil {
			return err
		}
		mw.files[s] = f
		if err := f.write(binary.LittleEndian.AppendUint16(nil, uint16(len(mw.mem.Columns)))); err != nil {
			return err
		}
		mw.vals[s] = colBlock{data: make([][]byte, len(mw.mem.Columns)), ends: make([][]uint32, len(mw.mem.Columns))}
	}
	return nil
}

// Close finishes the member: every row must have had its values.
func (mw *MemberWriter) Close() error {
	if mw.vals == nil {
		if err := mw.startValues(); err != nil {
			return err
		}
	}
	if mw.next != mw.mem.Rows && mw.mem.Rows > 0 {
		return fmt.Errorf("columnar: values end at row %d of %d", mw.next, mw.mem.Rows)
	}
	for s, f := range mw.files {
		if err := f.flushCols(&mw.vals[s]); err != nil {
			return err
		}
		file, err := f.close()
		if err != nil {
			return err
		}
		mw.mem.Cols = append(mw.mem.Cols, file)
	}
	mw.w.m.Members = append(mw.w.m.Members, mw.mem)
	return nil
}

func (mw *MemberWriter) abort(files []*fileWriter) {
	for _, f := range files {
		if f != nil {
			f.f.Close()
		}
	}
}

// Close writes the manifest, which marks the export complete.
func (w *Writer) Close() error {
	b, err := json.MarshalIndent(&w.m, "", " ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(w.dir, ManifestName+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(w.dir, ManifestName))
}

// fileWriter writes one file, hashing what it writes, and holds the pairs
// block it is gathering.
type fileWriter struct {
	path   string
	f      *os.File
	bw     *bufio.Writer
	h      hash.Hash
	n      int64
	tokens []byte
	rows   []uint32
	buf    []byte
}

// colBlock is the values block a shard's cols file is gathering.
type colBlock struct {
	rows  []uint32
	ends  [][]uint32
	data  [][]byte
	bytes int // in data
}

func (mw *MemberWriter) create(rel, magic string) (*fileWriter, error) {
	f, err := os.OpenFile(filepath.Join(mw.w.dir, filepath.FromSlash(rel)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	fw := &fileWriter{path: rel, f: f, h: sha256.New()}
	fw.bw = bufio.NewWriterSize(io.MultiWriter(f, fw.h), 256<<10)
	return fw, fw.write([]byte(magic))
}

func (f *fileWriter) write(b []byte) error {
	n, err := f.bw.Write(b)
	f.n += int64(n)
	return err
}

func (f *fileWriter) flushPairs() error {
	if len(f.rows) == 0 {
		return nil
	}
	f.buf = binary.LittleEndian.AppendUint32(f.buf[:0], uint32(len(f.rows)))
	f.buf = append(f.buf, f.tokens...)
	f.buf = appendU32s(f.buf, f.rows)
	f.tokens, f.rows = f.tokens[:0], f.rows[:0]
	return f.write(f.buf)
}

func (f *fileWriter) flushCols(b *colBlock) error {
	if len(b.rows) == 0 {
		return nil
	}
	f.buf = binary.LittleEndian.AppendUint32(f.buf[:0], uint32(len(b.rows)))
	f.buf = appendU32s(f.buf, b.rows)
	for j := range b.data {
		f.buf = binary.LittleEndian.AppendUint32(f.buf, uint32(len(b.data[j])))
		f.buf = appendU32s(f.buf, b.ends[j])
		f.buf = append(f.buf, b.data[j]...)
		b.ends[j], b.data[j] = b.ends[j][:0], b.data[j][:0]
	}
	b.rows, b.bytes = b.rows[:0], 0
	return f.write(f.buf)
}

func (f *fileWriter) close() (File, error) {
	// Not synced: an export is a cache the room can make again, and a
	// file torn by a crash fails its digest when it is read.
	err := f.bw.Flush()
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	return File{Path: f.path, Bytes: f.n, SHA256: hex.EncodeToString(f.h.Sum(nil))}, err
}

func appendU32s(b []byte, v []uint32) []byte {
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	return b
}
