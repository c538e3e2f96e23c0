package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// TestPartBody: the pieces a part is sent as are api.Part's encoding, byte
// for byte, whichever way they are read, and their digest is its SHA-256.
func TestPartBody(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rows    int
		columns int
	}{
		{"no columns", 3, 0},
		{"one row", 1, 2},
		{"a varint of two bytes", 200, 1},
		{"a full part", api.MaxRowsPerPart, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			part := api.Part{Columns: tc.columns}
			toks := make([]crypto.Token, tc.rows)
			vals := make([]string, tc.columns)
			for i := range toks {
				toks[i][0], toks[i][31] = byte(i), byte(i>>8)
				for c := range vals {
					vals[c] = string(rune('a' + (i+c)%26))
				}
				if err := part.AppendValues(vals); err != nil {
					t.Fatal(err)
				}
				part.AppendToken(toks[i])
			}
			want, err := part.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			var b partBody
			b.setPart(tc.columns, toks, part.Values)
			if got := b.reader().Len(); got != len(want) {
				t.Fatalf("Len = %d, want %d", got, len(want))
			}
			var w bytes.Buffer
			if _, err := b.reader().WriteTo(&w); err != nil || !bytes.Equal(w.Bytes(), want) {
				t.Fatalf("WriteTo wrote %d bytes (%v), not the part's %d", w.Len(), err, len(want))
			}
			if err := iotest.TestReader(b.reader(), want); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(io.LimitReader(b.reader(), 1<<30))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("Read gave %d bytes (%v), not the part's %d", len(got), err, len(want))
			}
			sum := sha256.Sum256(want)
			if d := b.digest(); d != hex.EncodeToString(sum[:]) {
				t.Fatal("the digest is not the SHA-256 of the part's encoding")
			}
		})
	}
}

// BenchmarkPartBody: a full part of 50,000 rows (two short values each) made
// ready to send, its digest and its bytes written out, from the pieces the
// sender holds (impl=pieces) and copied into one body first (impl=copy), in
// the same run.
func BenchmarkPartBody(b *testing.B) {
	const rows = 50_000
	part := api.Part{Columns: 2}
	toks := make([]crypto.Token, rows)
	for i := range toks {
		toks[i][0] = byte(i)
		if err := part.AppendValues([]string{"25-34", "120.19"}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("impl=pieces", func(b *testing.B) {
		var body partBody
		b.ReportAllocs()
		for b.Loop() {
			body.setPart(part.Columns, toks, part.Values)
			body.digest()
			body.reader().WriteTo(io.Discard)
		}
	})
	b.Run("impl=copy", func(b *testing.B) {
		p := api.Part{Columns: part.Columns, Values: part.Values, Rows: part.Rows, Tokens: make([]byte, 0, rows*api.TokenSize)}
		var body []byte
		b.ReportAllocs()
		for b.Loop() {
			p.Tokens = p.Tokens[:0]
			for _, t := range toks {
				p.AppendToken(t)
			}
			body, _ = p.AppendBinary(body[:0])
			sum := sha256.Sum256(body)
			hex.EncodeToString(sum[:])
			bytes.NewReader(body).WriteTo(io.Discard)
		}
	})
}

// TestPartBodyWaitsForTransport: the part's buffers are the batch's, which
// the next part reuses, so the sender waits until net/http has closed every
// reader of the part it was given, and that happens even when the room
// answers before it has read the body.
func TestPartBodyWaitsForTransport(t *testing.T) {
	toks := make([]crypto.Token, api.MaxRowsPerPart)
	var b partBody
	b.setPart(0, toks, nil)

	r := b.reader()
	waited := make(chan struct{})
	go func() { b.wait(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("wait returned while a reader of the part was open")
	case <-time.After(50 * time.Millisecond):
	}
	r.Close()
	r.Close() // a second Close is harmless
	<-waited

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}") // answered without reading the body
	}))
	defer srv.Close()
	c := &Client{base: srv.URL, http: srv.Client(), now: time.Now}
	for range 3 {
		if err := c.call(t.Context(), "PUT", "/part", &b, api.PartContentType, nil, false); err != nil {
			t.Logf("call: %v", err) // the transport may fail the write; the readers must be closed either way
		}
		done := make(chan struct{})
		go func() { b.wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("net/http did not close the part's reader")
		}
	}
}

// BenchmarkAcknowledged: recording a part the room acknowledged, in an
// upload that has parts acknowledged already (an upload of 10M rows in
// parts of 1,000 has 10,000): the progress is saved every saveEvery, not
// written whole for every part.
func BenchmarkAcknowledged(b *testing.B) {
	for _, parts := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("parts=%d", parts), func(b *testing.B) {
			st := &uploadState{Upload: "up", Digests: map[int]string{}}
			for p := range parts {
				st.Digests[p] = strings.Repeat("a", 64)
			}
			s := &partSender{spec: UploadSpec{Collab: "c1", State: StateDir(b.TempDir())}, st: st, read: -1}
			bt := &batch{part: api.Part{Rows: 1000}}
			n := parts
			for b.Loop() {
				bt.n = n
				n++
				if err := s.acknowledged(bt, st.Digests[0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
