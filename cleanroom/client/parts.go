package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// partSender reads an upload's rows into parts and sends them.
type partSender struct {
	c      *Client
	spec   UploadSpec
	st     *uploadState
	tokens tokenizer
	order  *rowOrder
	// bounded are the upload's numeric columns, whose values the reader
	// counts (UploadReport.NotNumbers, Clamped).
	bounded []boundedColumn

	mu      sync.Mutex // guards st.Digests, its file, saved, unsaved, sent and read
	saved   time.Time  // when st was last saved
	unsaved bool       // st holds digests its file does not
	sent    int64      // rows the room has, resumed parts included
	read    float64    // share of the input read, or -1 if its size is unknown
}

// saveEvery is how often the saved progress is brought up to date while
// parts are acknowledged, and once more when the run ends. A part the room
// has whose digest the file lacks is sent again by the next run (the room
// keeps the same bytes as they are), so a crash costs at most this much
// sending again, where saving every part would write the whole file once a
// part: an upload of small parts would write it quadratically often.
const saveEvery = time.Second

// batch is one part on its way: its match keys and encoded values, then
// its tokens, and its body made of those, uncopied.
type batch struct {
	n    int
	keys []crypto.MatchKey
	part api.Part
	toks []crypto.Token
	body partBody
}

// newBatch returns a batch with room for a part of rows rows and columns
// attribute values, so that filling it grows only its values, once: a
// batch goes round from the reader to a sender and back for the whole
// upload.
func newBatch(rows, columns int) *batch {
	return &batch{
		keys: make([]crypto.MatchKey, 0, rows),
		part: api.Part{Columns: columns},
		toks: make([]crypto.Token, rows),
	}
}

// senders is how many parts are tokenized and sent at once, while the
// reader fills the next. A part's receipt waits for the room's synced
// commit, and the room commits the parts that arrive during one commit
// together in the next: with four in flight a commit of the hashed 10M
// demo's two uploads carries 2.1 parts on average, against 1.4 with two,
// and the upload takes 0.4 s less in the median of eleven pairs of runs
// (from 1.1 s less to 0.6 s more); six gain nothing over four. Each sender
// holds a part's batch.
const senders = 4

// run reads the input into parts in the upload's order, which senders
// goroutines tokenize and send while the next is filled, and counts them in
// rep.
//
// A part that fails stops the reading, and the parts not yet taken are not
// sent; those in flight finish. The error returned is the lowest failed
// part's, whatever the order the senders failed in: the room's refusal of
// a part that does not fit a saved upload (misfit) is then the one the
// caller sees, not the refusal of a later part the same misfit caused.
func (s *partSender) run(ctx context.Context, profile crypto.Profile, resumed map[int]bool, rep *UploadReport) error {
	r := s.newPartReader(profile, resumed, rep)
	readCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var (
		mu     sync.Mutex
		failed = -1 // the lowest part that failed
		first  error
	)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for b := range r.todo {
				if readCtx.Err() == nil {
					if err := s.send(ctx, b); err != nil {
						mu.Lock()
						if failed < 0 || b.n < failed {
							failed, first = b.n, err
						}
						mu.Unlock()
						stop(err)
					}
				}
				r.free <- b
			}
		})
	}
	err := r.readAll(readCtx)
	close(r.todo)
	wg.Wait()
	if first != nil {
		err = first
	}
	s.mu.Lock()
	if serr := s.save(); err == nil {
		err = serr
	}
	s.mu.Unlock()
	rep.Parts = r.part
	return err
}

// partReader is the reading side of a partSender. It reads the input
// into a spill (its valid records' places in the upload's order, match keys
// and values), then reads the spill back a group at a time in that order,
// fills one batch at a time with rows, hands each full one to the senders,
// and takes a free one back.
type partReader struct {
	s     *partSender
	rep   *UploadReport
	have  map[int]bool // parts the room has and whose digests this partner kept
	free  chan *batch  // batches the senders are done with
	todo  chan *batch  // full batches for the senders
	b     *batch       // the batch being filled
	part  int          // its part number
	size  int64        // the input's size, 0 if unknown
	kb    *crypto.KeyBatch
	held  []int    // where the values end, in vals, of each record whose key kb holds
	vals  api.Part // their values, encoded
	spill *spill
}

// spillChunk is how many valid records are read before their keys are
// computed and they go to the spill.
const spillChunk = 4096

func (s *partSender) newPartReader(profile crypto.Profile, resumed map[int]bool, rep *UploadReport) *partReader {
	// Decided before the senders start writing st.Digests.
	have := map[int]bool{}
	for p := range s.st.Digests {
		have[p] = resumed[p]
	}
	r := &partReader{s: s, rep: rep, have: have, free: make(chan *batch, senders+1), todo: make(chan *batch),
		kb: profile.NewKeyBatch(spillChunk), vals: api.Part{Columns: len(s.spec.Columns)}}
	for range cap(r.free) {
		r.free <- newBatch(min(s.st.RowsPerPart, api.MaxRowsPerPart), len(s.spec.Columns))
	}
	r.b = <-r.free
	if fi, err := os.Stat(s.spec.Input); err == nil {
		r.size = fi.Size()
	}
	return r
}

// readAll reads the input's rows into the spill, then into parts in the
// upload's order, and hands them on, the last one (not full) included.
func (r *partReader) readAll(ctx context.Context) error {
	spec := r.s.spec
	sp, err := newSpill(string(spec.State), spec.Collab, r.size)
	if err != nil {
		return fmt.Errorf("client: making room for the upload's rows in the state directory: %w", err)
	}
	defer sp.remove()
	r.spill = sp
	err = csvRows(spec.Input, spec.IDColumn, spec.Columns, func(line int, id string, a []string, offset int64) error {
		return r.row(ctx, line, id, a, offset)
	})
	if err == nil {
		err = r.spillHeld()
	}
	if err != nil {
		return err
	}
	reportBounded(r.rep, r.s.bounded)
	r.s.progress(0, 1) // the whole input is read
	for g := range sp.groups() {
		b, rows, err := sp.group(g)
		if err != nil {
			return err
		}
		for _, o := range rows {
			key, vals := entry(b, o.n)
			r.b.keys = append(r.b.keys, key)
			r.b.part.Values = append(r.b.part.Values, vals...)
			if r.b.part.Rows++; r.b.part.Rows == r.s.st.RowsPerPart {
				if err := r.flush(ctx); err != nil {
					return err
				}
			}
		}
	}
	if r.b.part.Rows > 0 {
		return r.flush(ctx)
	}
	return nil
}

// row reads a record: it counts it skipped if its identifier is invalid,
// and holds it for the spill otherwise.
func (r *partReader) row(ctx context.Context, line int, id string, a []string, offset int64) error {
	if kerr := r.kb.Add(r.s.spec.Kind, id); kerr != nil {
		r.rep.Skipped++
		if r.s.spec.Invalid != nil {
			var ie *crypto.IdentifierError
			reason := "invalid identifier"
			if errors.As(kerr, &ie) {
				reason = ie.Error()
			}
			r.s.spec.Invalid(line, reason)
		}
		return nil
	}
	if err := r.vals.AppendValues(a); err != nil {
		// The upload stops: its key goes unsent.
		var ve *api.ValueError
		if errors.As(err, &ve) && ve.Attr < len(r.s.spec.Columns) {
			return &valueError{line: line, column: r.s.spec.Columns[ve.Attr], tooLong: ve.TooLong}
		}
		return lineError(line, err)
	}
	for i := range r.s.bounded {
		b := &r.s.bounded[i]
		b.count(a[b.i])
	}
	r.held = append(r.held, len(r.vals.Values))
	if len(r.held) < spillChunk {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	if r.size > 0 {
		r.s.progress(0, float64(offset)/float64(r.size))
	}
	return r.spillHeld()
}

// spillHeld writes the held records to the spill, with their keys.
func (r *partReader) spillHeld() error {
	keys := r.kb.Keys()
	start := 0
	for i, end := range r.held {
		if err := r.spill.add(r.s.order.at(&keys[i]), &keys[i], r.vals.Values[start:end]); err != nil {
			return fmt.Errorf("client: writing the upload's rows to the state directory: %w", err)
		}
		start = end
	}
	r.held = r.held[:0]
	r.kb.Reset()
	r.vals.Reset()
	return nil
}

// flush hands the batch to the senders, unless the room has its part
// already, and takes a free one for the next part.
func (r *partReader) flush(ctx context.Context) error {
	defer func() { r.part++ }()
	r.rep.Rows += int64(r.b.part.Rows)
	if r.have[r.part] {
		r.rep.Resumed++
		r.s.progress(int64(r.b.part.Rows), -1)
		r.b.keys = r.b.keys[:0]
		r.b.part.Reset()
		return nil
	}
	r.b.n = r.part
	select {
	case r.todo <- r.b:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	select {
	case r.b = <-r.free:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	r.b.keys = r.b.keys[:0]
	r.b.part.Reset()
	return nil
}

// send tokenizes one part and stores it in the room, trying again as
// c.retries allows: the room stores a part sent again in place of the
// first.
func (s *partSender) send(ctx context.Context, b *batch) error {
	keys := b.keys
	if len(keys) != b.part.Rows {
		return fmt.Errorf("client: part %d has %d match keys for %d rows", b.n, len(keys), b.part.Rows)
	}
	b.toks = slices.Grow(b.toks[:0], len(keys))[:len(keys)]
	if err := s.tokens(ctx, b.toks, keys); err != nil {
		return err
	}
	b.body.setPart(b.part.Columns, b.toks, b.part.Values)
	digest := b.body.digest()
	var rc api.PartReceipt
	path := fmt.Sprintf("/v1/collaborations/%s/uploads/%s/parts/%d", esc(s.spec.Collab), esc(s.st.Upload), b.n)
	err := s.c.retries.run(ctx, func() error {
		return s.c.call(ctx, "PUT", path, &b.body, api.PartContentType, &rc, true)
	})
	// The batch goes back to the reader once sent: not before net/http has
	// let go of its buffers.
	b.body.wait()
	if err != nil {
		return fmt.Errorf("sending part %d: %w", b.n, err)
	}
	if rc.Digest != digest {
		return fmt.Errorf("client: the room stored part %d with another digest", b.n)
	}
	return s.acknowledged(b, digest)
}

// acknowledged records a part the room acknowledged, in the state (saved
// at most every saveEvery) and in the progress.
func (s *partSender) acknowledged(b *batch, digest string) error {
	s.mu.Lock()
	s.st.Digests[b.n] = digest
	s.unsaved = true
	var err error
	if time.Since(s.saved) >= saveEvery {
		err = s.save()
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.progress(int64(b.part.Rows), -1)
	return nil
}

// save writes the state's file, if it lacks digests. s.mu is held.
func (s *partSender) save() error {
	if !s.unsaved {
		return nil
	}
	if err := s.spec.State.saveUpload(s.spec.Collab, s.st); err != nil {
		return err
	}
	s.saved, s.unsaved = time.Now(), false
	return nil
}

// progress counts rows the room has and, if read is not negative, records
// the share of the input read; then it tells spec.Progress.
func (s *partSender) progress(rows int64, read float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent += rows
	if read >= 0 {
		s.read = read
	}
	if s.spec.Progress != nil {
		s.spec.Progress(s.sent, s.read)
	}
}
