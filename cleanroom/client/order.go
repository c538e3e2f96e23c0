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
	"os"
	"path/filepath"
	"slices"

	"github.com/opencleanroom/cleanroom/crypto"
)

// The order an upload's rows are sent in. A partner's export is often
// sorted (by email, by sign-up date), and the room's operator holds the
// parts and learns which of their rows matched: rows sent in the file's
// order would tell it where each matched person stands in that sort. The
// client sends them in an order of its own: the file's j-th data record
// goes at the rank of rowOrder.at(j) among the valid records, where at is
// AES under a key derived from the collaboration secret (which the room
// never holds) and the file's fingerprint. To the room it is a random
// permutation; it is the same on every run over the same file, so an
// interrupted upload resumes part for part; and the member's client
// computes it again to map an audience's upload rows back to its file
// (WriteAudience).

// rowOrder places an input's records in the upload's order.
type rowOrder struct{ b cipher.Block }

func newRowOrder(ks *crypto.Secret, fingerprint string) *rowOrder {
	m := hmac.New(sha256.New, ks.Bytes())
	m.Write([]byte("cleanroom.dev/v1/upload-order\x00" + fingerprint))
	b, err := aes.NewCipher(m.Sum(nil)[:16])
	if err != nil {
		panic(err) // a 16-byte key is always accepted
	}
	return &rowOrder{b}
}

// at is record j's place: records go in increasing (at(j), j). It is the
// first half of AES of j: a 64-bit pseudorandom value, so that two records
// tie about once in 3·10⁵ lists of 10M, and then go in file order.
func (o *rowOrder) at(j int64) uint64 {
	var blk [16]byte
	binary.BigEndian.PutUint64(blk[8:], uint64(j))
	o.b.Encrypt(blk[:], blk[:])
	return binary.BigEndian.Uint64(blk[:8])
}

// orderedRow is a record's place in the upload's order.
type orderedRow struct {
	at  uint64
	j   int64
	off int // where its entry's key starts in its group's bytes
}

func (a orderedRow) compare(b orderedRow) int {
	return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.j, b.j))
}

// spillGroupBytes is about how much of the input goes into one group of
// the spill, which is what the ordered pass holds in memory at a time.
const spillGroupBytes = 32 << 20

// spill holds an upload's valid records, each as its place, its match key
// and its encoded values, in files of the state directory (mode 0600),
// grouped by the top bits of their place; it is read back a group at a
// time, each sorted into the upload's order. Match keys are unkeyed
// digests of identifiers: the files are removed when the upload's run
// ends, and any left by a run that crashed when the next starts.
type spill struct {
	bits  uint
	files []*os.File
	w     []*bufio.Writer
	buf   []byte
}

// spillPattern names the spill files of an upload to collab.
func spillPattern(collab string) string { return collab + ".rows-*" }

// newSpill makes the spill of an input of size bytes in dir.
func newSpill(dir, collab string, size int64) (*spill, error) {
	old, _ := filepath.Glob(filepath.Join(dir, spillPattern(collab)))
	for _, f := range old {
		os.Remove(f)
	}
	s := &spill{}
	for s.bits < 12 && size > spillGroupBytes<<s.bits {
		s.bits++
	}
	for range 1 << s.bits {
		f, err := os.CreateTemp(dir, spillPattern(collab))
		if err != nil {
			s.remove()
			return nil, err
		}
		s.files = append(s.files, f)
		s.w = append(s.w, bufio.NewWriterSize(f, 64<<10))
	}
	return s, nil
}

// add writes a record's entry: its place, index, match key and values.
func (s *spill) add(at uint64, j int64, key *crypto.MatchKey, values []byte) error {
	b := binary.LittleEndian.AppendUint64(s.buf[:0], at)
	b = binary.LittleEndian.AppendUint64(b, uint64(j))
	b = append(b, key[:]...)
	b = binary.AppendUvarint(b, uint64(len(values)))
	b = append(b, values...)
	s.buf = b
	_, err := s.w[at>>(64-s.bits)%uint64(len(s.w))].Write(b)
	return err
}

// groups is how many groups the spill has; they are in the upload's order.
func (s *spill) groups() int { return len(s.files) }

// group reads group g back and returns its bytes and its records in the
// upload's order.
func (s *spill) group(g int) ([]byte, []orderedRow, error) {
	if err := s.w[g].Flush(); err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(s.files[g].Name())
	if err != nil {
		return nil, nil, err
	}
	var rows []orderedRow
	for off := 0; off < len(b); {
		if len(b)-off < 16+len(crypto.MatchKey{}) {
			return nil, nil, fmt.Errorf("client: the upload's spill file is cut short")
		}
		r := orderedRow{at: binary.LittleEndian.Uint64(b[off:]), j: int64(binary.LittleEndian.Uint64(b[off+8:])), off: off + 16}
		n, k := binary.Uvarint(b[r.off+len(crypto.MatchKey{}):])
		if k <= 0 || uint64(len(b)-r.off-len(crypto.MatchKey{})-k) < n {
			return nil, nil, fmt.Errorf("client: the upload's spill file is damaged")
		}
		rows = append(rows, r)
		off = r.off + len(crypto.MatchKey{}) + k + int(n)
	}
	slices.SortFunc(rows, orderedRow.compare)
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
