package matcher

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
)

// print is a token's fingerprint: a keyed pseudorandom function of it, 128
// bits. The matcher compares fingerprints, not tokens. Two different tokens
// are taken for one only if their fingerprints collide, which for n tokens
// has a probability below n²/2^129 plus the advantage of distinguishing
// AES from a random function: under 2^-60 for the most rows the sets may
// hold. A member cannot aim for a collision, nor crowd one partition or
// one run of table slots: the key is drawn for each run and never leaves
// it.
//
// The top bits of hi choose the partition and the ones below split an
// overfull partition; the low bits of lo pick the table slot and the
// middle ones the slot's tag.
type print struct{ hi, lo uint64 }

// printRow is an element of a join: a token's fingerprint and its row, 20
// bytes (where the token and its row take 36).
type printRow struct {
	key [16]byte // hi and lo, little-endian
	row uint32
}

func (e *printRow) print() print {
	return print{hi: binary.LittleEndian.Uint64(e.key[0:]), lo: binary.LittleEndian.Uint64(e.key[8:])}
}

func (p print) partition() uint8 { return uint8(p.hi >> (64 - partitionBits)) }

// printer computes fingerprints: AES-128 in CBC-MAC over the token's two
// blocks, a pseudorandom function on messages of one fixed length.
type printer struct {
	b  cipher.Block
	rk [11][16]byte // b's round keys, for macs16VAES
}

func newPrinter() *printer {
	var key [16]byte
	rand.Read(key[:]) // never fails (crypto/rand)
	return newPrinterKey(&key)
}

func newPrinterKey(key *[16]byte) *printer {
	b, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // unreachable: the key is 16 bytes
	}
	return &printer{b: b, rk: expandKey(key)}
}

// parts is readAll's convert for a count: the fingerprints alone.
func (f *printer) parts(in []Pair, out []print, part []uint8) {
	f.sums(in, out)
	for i := range out[:len(in)] {
		part[i] = out[i].partition()
	}
}

// rowParts is readAll's convert for a join: fingerprints and rows.
func (f *printer) rowParts(in []Pair, out []printRow, part []uint8) {
	var sums [64]print
	for len(in) > 0 {
		n := min(len(sums), len(in))
		f.sums(in[:n], sums[:n])
		for i, p := range sums[:n] {
			binary.LittleEndian.PutUint64(out[i].key[0:], p.hi)
			binary.LittleEndian.PutUint64(out[i].key[8:], p.lo)
			out[i].row = in[i].Row
			part[i] = p.partition()
		}
		in, out, part = in[n:], out[n:], part[n:]
	}
}

// sums sets out[i] to the fingerprint of in[i]'s token, sixteen at a time
// in macs16VAES where the CPU has it: there, a fingerprint takes about a
// fourteenth of crypto/aes's two calls (BenchmarkPrints).
func (f *printer) sums(in []Pair, out []print) {
	n := 0
	if useVAES {
		for ; n+16 <= len(in); n += 16 {
			macs16VAES(&f.rk, &in[n], &out[n])
		}
	}
	f.macs(in[n:], out[n:])
}

// macs is the portable path of sums, through crypto/aes. A token's two
// AES calls depend on each other, so a batch's first blocks are all
// encrypted before its second ones: the calls overlap.
func (f *printer) macs(in []Pair, out []print) {
	const batch = 8
	var x [batch][16]byte
	for len(in) > 0 {
		n := min(batch, len(in))
		for i := range n {
			f.b.Encrypt(x[i][:], in[i].Token[:16])
		}
		for i := range n {
			t := &in[i].Token
			binary.LittleEndian.PutUint64(x[i][0:], binary.LittleEndian.Uint64(x[i][0:])^binary.LittleEndian.Uint64(t[16:]))
			binary.LittleEndian.PutUint64(x[i][8:], binary.LittleEndian.Uint64(x[i][8:])^binary.LittleEndian.Uint64(t[24:]))
			f.b.Encrypt(x[i][:], x[i][:])
			out[i] = print{hi: binary.LittleEndian.Uint64(x[i][0:]), lo: binary.LittleEndian.Uint64(x[i][8:])}
		}
		in, out = in[n:], out[n:]
	}
}
