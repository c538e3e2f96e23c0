package client

import (
	"bufio"
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"slices"

	"github.com/opencleanroom/cleanroom/crypto"
)

// The order an upload's rows are sent in. A partner's export is often
// sorted (by email, by sign-up date), and the room's operator holds the
// parts and learns which of their rows matched: rows sent in the file's
// order would tell it where each matched person stands in that sort. The
// client sends them in an order of its own: a valid record goes at the
// rank of rowOrder.at(its match key), AES under a key derived from the
// collaboration secret (which the room never holds) and the file's
// fingerprint, and records that tie (the same identifier listed again, or
// one tie in about 3·10⁵ lists of 10M) go in file order, so that the room
// keeps a repeated identifier's first record, as the file has it. To the
// room the order is a random permutation of the people; it is the same on
// every run over the same file, so an interrupted upload resumes part for
// part; and the member's client computes it again to map an audience's
// upload rows back to its file (WriteAudience).

// rowOrder places an input's records in the upload's order. It is one
// goroutine's.
type rowOrder struct {
	b   cipher.Block
	blk [aes.BlockSize]byte
}

func newRowOrder(ks *crypto.Secret, fingerprint string) *rowOrder {
	m := hmac.New(sha256.New, ks.Bytes())
	m.Write([]byte("cleanroom.dev/v1/upload-order\x00" + fingerprint))
	b, err := aes.NewCipher(m.Sum(nil)[:16])
	if err != nil {
		panic(err) // a 16-byte key is always accepted
	}
	return &rowOrder{b: b}
}

// at is the place of a record with match key k: records go in increasing
// places, and those that tie in file order. It is the first half of AES of
// the key's first half (a SHA-256 digest's: distinct keys differ there), a
// 64-bit pseudorandom value.
func (o *rowOrder) at(k *crypto.MatchKey) uint64 {
	o.b.Encrypt(o.blk[:], k[:aes.BlockSize])
	return binary.BigEndian.Uint64(o.blk[:8])
}

// orderedRow is a record's place in the upload's order, and n, which
// breaks ties in file order: the record's index in the file, or where its
// entry starts in a spill group (entries are written in file order).
type orderedRow struct {
	at uint64
	n  int
}

func (a orderedRow) less(b orderedRow) bool { return a.at < b.at || a.at == b.at && a.n < b.n }

// sortPlaces sorts rows by place, where every place has the same top skip
// bits. Places are uniformly random, so a radix sort on the bits below
// those (American flag sort, in place, eleven bits a level: each level's
// buckets are written at 2,048 fronts, which the caches hold) leaves each
// row among a handful of its own bucket after a level or two, and an
// insertion sort finishes: a few passes over the rows, against pdqsort's
// twenty-odd indirect comparisons a row.
func sortPlaces(rows []orderedRow, skip uint) {
	flagSort(rows, skip)
	// Each row is in its bucket, the buckets in order: a row moves within
	// its own.
	for i := 1; i < len(rows); i++ {
		for k := i; k > 0 && rows[k].less(rows[k-1]); k-- {
			rows[k], rows[k-1] = rows[k-1], rows[k]
		}
	}
}

// flagSort orders rows into buckets of at most flagLeaf rows, by the bits
// of their places below skip, recursively; rows that share all 64 (a tie
// in a large bucket) are sorted outright.
func flagSort(rows []orderedRow, skip uint) {
	const digit, flagLeaf = 11, 64
	if len(rows) <= flagLeaf {
		return
	}
	if skip >= 64 {
		slices.SortFunc(rows, func(a, b orderedRow) int { return cmp.Compare(a.n, b.n) })
		return
	}
	// About eight rows a bucket, eleven bits at the most.
	w := min(digit, uint(bits.Len(uint(len(rows))))-3, 64-skip)
	shift, mask := 64-skip-w, uint64(1)<<w-1
	var next, end [1<<digit + 1]int
	for _, r := range rows {
		next[(r.at>>shift)&mask+1]++
	}
	for b := 1; b <= 1<<w; b++ {
		next[b] += next[b-1]
	}
	copy(end[:], next[1:1<<w+1])
	for b := range 1 << w {
		for next[b] < end[b] {
			r := rows[next[b]]
			for d := int((r.at >> shift) & mask); d != b; d = int((r.at >> shift) & mask) {
				rows[next[d]], r = r, rows[next[d]]
				next[d]++
			}
			rows[next[b]] = r
			next[b]++
		}
	}
	start := 0
	for b := range 1 << w {
		flagSort(rows[start:end[b]], skip+w)
		start = end[b]
	}
}

// spillGroupBytes is about how much of the input goes into one group of
// the spill, which is what the ordered pass holds in memory at a time: a
// group's places (16 bytes a record) then fit in a core's cache while
// they are sorted, which takes a third of the time they take at 32 MiB.
// maxSpillBits bounds the files an upload has open at once.
const (
	spillGroupBytes = 4 << 20
	maxSpillBits    = 9
)

// spill holds an upload's valid records, each as its place, its match key
// and its encoded values (a record's entry), in files of the state directory (mode 0600),
// grouped by the top bits of their place; it is read back a group at a
// time, each sorted into the upload's order. Match keys are unkeyed
// digests of identifiers: the files are removed when the upload's run
// ends, and any left by a run that crashed when the next starts.
type spill struct {
	bits  uint
	files []*os.File
	w     []*bufio.Writer
	data  []byte       // the group read back
	rows  []orderedRow // its records
}

// spillPattern names the spill files of an upload to collab.
func spillPattern(collab string) string { return collab + ".rows-*" }

// removeSpills removes the spill files of uploads to collab in dir: a run
// that was killed leaves its own, which hold the match keys of its list.
func removeSpills(dir, collab string) { removeGroupFiles(dir, spillPattern(collab)) }

// removeGroupFiles removes the files of dir that pattern matches.
func removeGroupFiles(dir, pattern string) {
	old, _ := filepath.Glob(filepath.Join(dir, pattern))
	for _, f := range old {
		os.Remove(f)
	}
}

// createGroupFiles creates n files in dir named by pattern (mode 0600),
// each with a writer of size bytes; on an error it removes those it made.
func createGroupFiles(dir, pattern string, n, size int) ([]*os.File, []*bufio.Writer, error) {
	files := make([]*os.File, 0, n)
	w := make([]*bufio.Writer, 0, n)
	for range n {
		f, err := os.CreateTemp(dir, pattern)
		if err != nil {
			for _, f := range files {
				f.Close()
				os.Remove(f.Name())
			}
			return nil, nil, err
		}
		files = append(files, f)
		w = append(w, bufio.NewWriterSize(f, size))
	}
	return files, w, nil
}

// newSpill makes the spill of an input of size bytes in dir.
func newSpill(dir, collab string, size int64) (*spill, error) {
	removeSpills(dir, collab)
	s := &spill{}
	for s.bits < maxSpillBits && size > spillGroupBytes<<s.bits {
		s.bits++
	}
	var err error
	if s.files, s.w, err = createGroupFiles(dir, spillPattern(collab), 1<<s.bits, 64<<10); err != nil {
		return nil, err
	}
	return s, nil
}

// add writes a record's entry: its place, match key and values. Records
// are added in file order.
func (s *spill) add(at uint64, key *crypto.MatchKey, values []byte) error {
	w := s.w[at>>(64-s.bits)%uint64(len(s.w))]
	if w.Available() < 8+len(key)+binary.MaxVarintLen64+len(values) {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	// Into the writer's buffer, which a record fits unless its values are
	// longer than the buffer: then Write copies them.
	b := binary.LittleEndian.AppendUint64(w.AvailableBuffer(), at)
	b = append(b, key[:]...)
	b = binary.AppendUvarint(b, uint64(len(values)))
	b = append(b, values...)
	_, err := w.Write(b)
	return err
}

// groups is how many groups the spill has; they are in the upload's order.
func (s *spill) groups() int { return len(s.files) }

// group reads group g back and returns its bytes and its records in the
// upload's order, each with n where its entry's key starts. Both are the
// spill's until the next call.
func (s *spill) group(g int) ([]byte, []orderedRow, error) {
	if err := s.w[g].Flush(); err != nil {
		return nil, nil, err
	}
	f := s.files[g]
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, nil, err
	}
	const keyLen = len(crypto.MatchKey{})
	if int64(cap(s.data)) < size {
		s.data = make([]byte, size)
	}
	s.data = s.data[:size]
	if _, err := f.ReadAt(s.data, 0); err != nil {
		return nil, nil, err
	}
	if most := int(size) / (8 + keyLen + 1); cap(s.rows) < most {
		s.rows = make([]orderedRow, 0, most)
	}
	b, rows := s.data, s.rows[:0]
	for off := 0; off < len(b); {
		if len(b)-off < 8+keyLen {
			return nil, nil, fmt.Errorf("client: the upload's spill file is cut short")
		}
		r := orderedRow{at: binary.LittleEndian.Uint64(b[off:]), n: off + 8}
		n, k := binary.Uvarint(b[r.n+keyLen:])
		if k <= 0 || uint64(len(b)-r.n-keyLen-k) < n {
			return nil, nil, fmt.Errorf("client: the upload's spill file is damaged")
		}
		rows = append(rows, r)
		off = r.n + keyLen + k + int(n)
	}
	sortPlaces(rows, s.bits)
	s.rows = rows
	return b, rows, nil
}

// entry returns the match key and values of the record at off in a
// group's bytes.
func entry(b []byte, off int) (key crypto.MatchKey, values []byte) {
	copy(key[:], b[off:])
	off += len(key)
	n, k := binary.Uvarint(b[off:])
	return key, b[off+k : off+k+int(n)]
}

// remove closes and deletes the spill's files.
func (s *spill) remove() {
	for _, f := range s.files {
		f.Close()
		os.Remove(f.Name())
	}
}
