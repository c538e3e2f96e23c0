package client

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"sync"
	"unsafe"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// partBody is a binary part (api.Part's encoding) as the pieces the sender
// already holds: the header, the tokens as the tokenizer wrote them, and
// the values as the reader encoded them. A part is several megabytes, so
// neither its digest nor its request copies it into one buffer first.
type partBody struct {
	head   [2 * binary.MaxVarintLen64]byte
	pieces [3][]byte
	// open counts the readers handed to net/http and not yet closed. The
	// transport may still be writing a request's body after its response
	// (one the room answered before reading it all), and closes the body
	// only once done with it; the pieces are the batch's buffers, which
	// the next part reuses.
	open sync.WaitGroup
}

// setPart makes b the encoding of a part of columns columns whose tokens
// are toks and whose values, already encoded, are values.
func (b *partBody) setPart(columns int, toks []crypto.Token, values []byte) {
	head := binary.AppendUvarint(b.head[:0], uint64(len(toks)))
	head = binary.AppendUvarint(head, uint64(columns))
	b.pieces = [3][]byte{head, tokenBytes(toks), values}
}

// tokenBytes is toks as the bytes a part holds them in, without a copy:
// a Token is an array of bytes, so a slice of them is contiguous.
func tokenBytes(toks []crypto.Token) []byte {
	if len(toks) == 0 {
		return nil
	}
	return unsafe.Slice(&toks[0][0], len(toks)*api.TokenSize)
}

// digest is the SHA-256 of the part, in hex: the digest the room computes
// of the bytes it receives.
func (b *partBody) digest() string {
	h := sha256.New()
	for _, p := range b.pieces {
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// reader returns a new reader of the part's bytes, for one try of sending
// it. The part's buffers are not to be reused until it is closed (wait).
func (b *partBody) reader() *partBodyReader {
	b.open.Add(1)
	return &partBodyReader{pieces: b.pieces, done: b.open.Done}
}

// wait returns once every reader of the part has been closed: net/http
// closes a request's body, even on errors, once it no longer reads it.
func (b *partBody) wait() { b.open.Wait() }

// partBodyReader reads a partBody once. Its Len gives the request its
// Content-Length, and WriteTo hands each piece to the connection whole.
type partBodyReader struct {
	pieces [3][]byte
	i      int // the piece being read
	done   func()
	closed sync.Once
}

// Close tells the part that this reader no longer reads its buffers.
func (r *partBodyReader) Close() error {
	r.closed.Do(r.done)
	return nil
}

// Len is the number of bytes not yet read.
func (r *partBodyReader) Len() int {
	n := 0
	for _, p := range r.pieces[r.i:] {
		n += len(p)
	}
	return n
}

func (r *partBodyReader) Read(p []byte) (int, error) {
	for r.i < len(r.pieces) {
		if len(r.pieces[r.i]) == 0 {
			r.i++
			continue
		}
		n := copy(p, r.pieces[r.i])
		r.pieces[r.i] = r.pieces[r.i][n:]
		return n, nil
	}
	return 0, io.EOF
}

func (r *partBodyReader) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for ; r.i < len(r.pieces); r.i++ {
		m, err := w.Write(r.pieces[r.i])
		n += int64(m)
		r.pieces[r.i] = r.pieces[r.i][m:]
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
