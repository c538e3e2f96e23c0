package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
	"golang.org/x/sync/errgroup"
)

// UploadSpec says what to upload.
type UploadSpec struct {
	Collab   string
	Input    string // a CSV file with a header row (a UTF-8 byte-order mark is skipped)
	IDColumn string
	Kind     crypto.Kind
	Columns  []string // attribute columns to send along
	// CountryCode is assumed for phone numbers without one (0: refuse them).
	CountryCode int
	RowsPerPart int // default 50,000
	State       StateDir
	// Progress, if set, is called as parts go with the rows the room has
	// and the share of the input read (0 to 1, or -1 if unknown; 1 once
	// the whole input is read); Invalid with the line number and reason of
	// every skipped row; Notice with what the upload decided on its own,
	// such as starting over when saved progress cannot go on.
	Progress func(sent int64, read float64)
	Invalid  func(line int, reason string)
	Notice   func(msg string)
}

// UploadReport says what an upload did.
type UploadReport struct {
	Upload  string `json:"upload"`
	Rows    int64  `json:"rows"`
	Skipped int64  `json:"skipped"`
	Parts   int    `json:"parts"`
	Resumed int    `json:"parts_resumed"` // parts the room already had
	Digest  string `json:"digest"`
	Mode    string `json:"mode"`
}

// tokenizer turns a part's match keys into tokens: HMAC tokens in hashed
// mode, PAIR encryptions with the partner's key in blinded mode.
type tokenizer func(ctx context.Context, dst [][32]byte, keys []crypto.MatchKey) error

func (c *Client) tokenizer(mode string, ks *crypto.Secret) tokenizer {
	if mode == api.ModeHashed {
		return func(ctx context.Context, dst [][32]byte, keys []crypto.MatchKey) error {
			toks := make([]crypto.Token, len(keys))
			if err := crypto.HashTokens(ctx, ks, toks, keys); err != nil {
				return err
			}
			for i, t := range toks {
				dst[i] = t
			}
			return nil
		}
	}
	bk := c.key.BlindingKey()
	return func(ctx context.Context, dst [][32]byte, keys []crypto.MatchKey) error {
		els := make([]crypto.Element, len(keys))
		if err := bk.EncryptBatch(ctx, ks, els, keys); err != nil {
			return err
		}
		for i, e := range els {
			dst[i] = e.Bytes()
		}
		return nil
	}
}

// UploadCSV normalizes, tokenizes (or encrypts) and uploads a CSV on this
// machine: identifiers never leave it, only tokens and the chosen attribute
// columns.
//
// Before the room opens an upload, the request is checked against the
// collaboration (kind, columns it never lets out) and the input's header,
// and the input's data rows are counted against the collaboration's minimum
// list size; nothing is encrypted or sent for an input that would be
// refused. Then the input is read once: one goroutine reads and normalizes
// rows into parts while others tokenize and send the parts before, and the
// row count is declared at the commit. If the upload is interrupted,
// running it again with the same input and flags resumes where the room
// left off; saved progress that cannot go on is discarded, with a Notice.
func (c *Client) UploadCSV(ctx context.Context, spec UploadSpec) (*UploadReport, error) {
	v, err := c.Collaboration(ctx, spec.Collab)
	if err != nil {
		return nil, err
	}
	if err := checkSpec(v, c.principal, spec); err != nil {
		return nil, err
	}
	if err := checkHeader(spec); err != nil {
		return nil, err
	}
	profile, err := crypto.LookupProfile(v.Profile, crypto.ProfileOptions{DefaultCountryCode: spec.CountryCode})
	if err != nil {
		return nil, err
	}
	ks, err := spec.State.LoadSecret(spec.Collab)
	if err != nil {
		return nil, err
	}
	scan, err := scanInput(ctx, spec.Input)
	if err != nil {
		return nil, err
	}
	if scan.rows == 0 {
		return nil, fmt.Errorf("%w (the file has a header and no rows)", ErrEmptyInput)
	}
	if k := v.Constraints; k != nil && scan.rows < k.MinListSize {
		return nil, fmt.Errorf("%w: the input has %d data rows; the collaboration requires at least %d distinct identifiers",
			ErrListTooSmall, scan.rows, k.MinListSize)
	}
	if spec.RowsPerPart <= 0 {
		spec.RowsPerPart = 50_000
	}
	spec.RowsPerPart = min(spec.RowsPerPart, api.MaxRowsPerPart)
	tokens := c.tokenizer(v.Mode, ks)
	canaryKeys := make([]crypto.MatchKey, 0, 4)
	for _, id := range api.CanaryIdentifiers(v.Kind) {
		k, err := profile.MatchKey(spec.Kind, id)
		if err != nil {
			return nil, fmt.Errorf("client: normalizing a canary identifier: %w", err)
		}
		canaryKeys = append(canaryKeys, k)
	}
	canary := make([][32]byte, len(canaryKeys))
	if err := tokens(ctx, canary, canaryKeys); err != nil {
		return nil, err
	}
	for fresh := false; ; fresh = true {
		st, resumed, fromState, err := c.resumeOrStart(ctx, spec, v, canary, scan.fingerprint, fresh)
		if err != nil {
			return nil, err
		}
		rep := &UploadReport{Upload: st.Upload, Mode: v.Mode}
		s := &partSender{c: c, spec: spec, st: st, tokens: tokens, read: -1}
		err = s.run(ctx, profile, resumed, rep)
		if err != nil && fromState && !fresh && misfit(err) {
			// A saved upload whose parts the room refuses as not fitting
			// it (made by an older client, or by hand): once, from scratch.
			spec.discardUpload("the room refused a part as not fitting it")
			continue
		}
		if err != nil {
			return nil, err
		}
		return c.commitUpload(ctx, spec, st, rep)
	}
}

// commitUpload makes the sent parts the member's dataset.
func (c *Client) commitUpload(ctx context.Context, spec UploadSpec, st *uploadState, rep *UploadReport) (*UploadReport, error) {
	if rep.Rows == 0 {
		os.Remove(spec.State.uploadFile(spec.Collab)) // nothing to resume
		return nil, ErrEmptyInput
	}
	digests := make([]string, rep.Parts)
	for p := range digests {
		digests[p] = st.Digests[p]
	}
	rep.Digest = api.DatasetDigest(digests)
	var ds api.Dataset
	path := fmt.Sprintf("/v1/collaborations/%s/uploads/%s/commit", esc(spec.Collab), esc(st.Upload))
	if err := c.do(ctx, "POST", path, api.CommitUpload{Digest: rep.Digest, Rows: rep.Rows}, &ds); err != nil {
		return nil, fmt.Errorf("committing the upload: %w", err)
	}
	os.Remove(spec.State.uploadFile(spec.Collab))
	return rep, nil
}

// partSender reads an upload's rows into parts and sends them.
type partSender struct {
	c      *Client
	spec   UploadSpec
	st     *uploadState
	tokens tokenizer

	mu   sync.Mutex // guards st.Digests, its file, sent and read
	sent int64      // rows the room has, resumed parts included
	read float64    // share of the input read, or -1 if its size is unknown
}

// batch is one part on its way: its match keys and encoded values, then its
// tokens and body.
type batch struct {
	n    int
	keys []crypto.MatchKey
	part api.Part
	toks [][32]byte
	body []byte
}

// senders is how many parts are tokenized and sent at once, while the
// reader fills the next: two keep the room and the tokenizer busy while the
// other waits on the network.
const senders = 2

func (s *partSender) run(ctx context.Context, profile crypto.Profile, resumed map[int]bool, rep *UploadReport) error {
	// Parts the room has and whose digests this partner kept: decided before
	// the senders start writing st.Digests.
	have := map[int]bool{}
	for p := range s.st.Digests {
		have[p] = resumed[p]
	}
	free := make(chan *batch, senders+1)
	for range cap(free) {
		free <- &batch{part: api.Part{Columns: len(s.spec.Columns)}}
	}
	todo := make(chan *batch)
	// The senders' first error cancels ctx: the reader stops at its next
	// part, and that error is what the upload returns.
	g, ctx := errgroup.WithContext(ctx)
	for range senders {
		g.Go(func() error {
			for b := range todo {
				if err := s.send(ctx, b); err != nil {
					return err
				}
				free <- b
			}
			return nil
		})
	}
	var size int64
	if fi, err := os.Stat(s.spec.Input); err == nil {
		size = fi.Size()
	}
	part := 0
	b := <-free
	flush := func() error {
		defer func() { part++ }()
		rep.Rows += int64(b.part.Rows)
		if have[part] {
			rep.Resumed++
			s.progress(int64(b.part.Rows), -1)
			b.keys = b.keys[:0]
			b.part.Reset()
			return nil
		}
		b.n = part
		select {
		case todo <- b:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		select {
		case b = <-free:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		b.keys = b.keys[:0]
		b.part.Reset()
		return nil
	}
	err := csvRows(s.spec.Input, s.spec.IDColumn, s.spec.Columns, profile, s.spec.Kind, func(line int, key crypto.MatchKey, kerr error, a []string, offset int64) error {
		if kerr != nil {
			rep.Skipped++
			if s.spec.Invalid != nil {
				var ie *crypto.IdentifierError
				reason := "invalid identifier"
				if errors.As(kerr, &ie) {
					reason = ie.Error()
				}
				s.spec.Invalid(line, reason)
			}
			return nil
		}
		if err := b.part.AppendValues(a); err != nil {
			return lineError(line, err)
		}
		b.keys = append(b.keys, key)
		if b.part.Rows == s.st.RowsPerPart {
			if size > 0 {
				s.progress(0, float64(offset)/float64(size))
			}
			return flush()
		}
		return nil
	})
	if err == nil {
		s.progress(0, 1) // the whole input is read
	}
	if err == nil && b.part.Rows > 0 {
		err = flush()
	}
	close(todo)
	if gerr := g.Wait(); gerr != nil {
		err = gerr
	}
	rep.Parts = part
	return err
}

// send tokenizes one part and stores it in the room.
func (s *partSender) send(ctx context.Context, b *batch) error {
	b.toks = slices.Grow(b.toks[:0], len(b.keys))[:len(b.keys)]
	if err := s.tokens(ctx, b.toks, b.keys); err != nil {
		return err
	}
	for _, t := range b.toks {
		b.part.AppendToken(t)
	}
	var err error
	if b.body, err = b.part.AppendBinary(b.body[:0]); err != nil {
		return err
	}
	sum := sha256.Sum256(b.body)
	digest := hex.EncodeToString(sum[:])
	var rc api.PartReceipt
	path := fmt.Sprintf("/v1/collaborations/%s/uploads/%s/parts/%d", esc(s.spec.Collab), esc(s.st.Upload), b.n)
	if err := s.c.call(ctx, "PUT", path, bytes.NewReader(b.body), api.PartContentType, &rc, true); err != nil {
		return fmt.Errorf("sending part %d: %w", b.n, err)
	}
	if rc.Digest != digest {
		return fmt.Errorf("client: the room stored part %d with another digest", b.n)
	}
	s.mu.Lock()
	s.st.Digests[b.n] = digest
	err = s.spec.State.saveUpload(s.spec.Collab, s.st)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.progress(int64(b.part.Rows), -1)
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
