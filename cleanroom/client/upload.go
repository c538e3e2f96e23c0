package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// Errors of reading the input, each with what to do in its text.
var (
	ErrEmptyInput    = errors.New("client: the input has no rows with a valid identifier")
	ErrUnknownColumn = errors.New("client: a column named on the command line is not in the input's header")
)

// UploadSpec says what to upload.
type UploadSpec struct {
	Collab   string
	Input    string // a CSV file with a header row
	IDColumn string
	Kind     crypto.Kind
	Columns  []string // attribute columns to send along
	// CountryCode is assumed for phone numbers without one (0: refuse them).
	CountryCode int
	RowsPerPart int // default 50,000
	State       StateDir
	// Progress, if set, is called as parts go with the rows the room has
	// and the share of the input read (0 to 1, or -1 if unknown); Invalid
	// with the line number and reason of every skipped row.
	Progress func(sent int64, read float64)
	Invalid  func(line int, reason string)
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

// uploadState is what the partner keeps while an upload is under way.
type uploadState struct {
	Upload      string         `json:"upload"`
	Input       string         `json:"input"` // its inputFingerprint
	RowsPerPart int            `json:"rows_per_part"`
	Digests     map[int]string `json:"digests"`
}

func (d StateDir) uploadFile(collab string) string {
	return filepath.Join(string(d), collab+".upload.json")
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

// csvRows reads the input, calling fn with each row's line number, match key
// (or an error), attribute values and the input's offset after the row.
func csvRows(path, idColumn string, columns []string, profile crypto.Profile, kind crypto.Kind,
	fn func(line int, key crypto.MatchKey, err error, attrs []string, offset int64) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := newCSVReader(f)
	header, err := r.Read()
	if err == io.EOF {
		return fmt.Errorf("%w (the file is empty)", ErrEmptyInput)
	}
	if err != nil {
		return fmt.Errorf("client: reading the CSV header: %w", err)
	}
	header = slices.Clone(header)
	idx := func(name string) int { return slices.Index(header, name) }
	id := idx(idColumn)
	if id < 0 {
		return fmt.Errorf("%w: %q (the header has: %s)", ErrUnknownColumn, idColumn, strings.Join(header, ", "))
	}
	cols := make([]int, len(columns))
	for i, name := range columns {
		if cols[i] = idx(name); cols[i] < 0 {
			return fmt.Errorf("%w: %q (the header has: %s)", ErrUnknownColumn, name, strings.Join(header, ", "))
		}
	}
	attrs := make([]string, len(cols))
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return fmt.Errorf("client: the CSV is malformed at line %d: %v", pe.Line, pe.Err)
			}
			return err
		}
		key, kerr := profile.MatchKey(kind, rec[id])
		for i, c := range cols {
			attrs[i] = rec[c]
		}
		if err := fn(line, key, kerr, attrs, r.InputOffset()); err != nil {
			return err
		}
	}
}

// inputFingerprint identifies the input file, so that a later run resumes
// an upload only from the same bytes. It guards against a partner editing
// or replacing the file between runs, not against an adversary on the
// partner's own machine, so a CRC-32C and the size serve: the CRC runs at
// memory speed, where a SHA-256 cost a tenth of the client's time on a
// 10M-row upload.
func inputFingerprint(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	n, err := io.Copy(h, f)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("crc32c:%08x:%d", h.Sum32(), n), nil
}

// UploadCSV normalizes, tokenizes (or encrypts) and uploads a CSV on this
// machine: identifiers never leave it, only tokens and the chosen attribute
// columns. The input is read once: one goroutine reads and normalizes rows
// into parts while others tokenize and send the parts before, and the row
// count is declared at the commit. If the upload is interrupted, running it
// again with the same input resumes where the room left off.
func (c *Client) UploadCSV(ctx context.Context, spec UploadSpec) (*UploadReport, error) {
	v, err := c.Collaboration(ctx, spec.Collab)
	if err != nil {
		return nil, err
	}
	if string(spec.Kind) != v.Kind {
		return nil, fmt.Errorf("client: the collaboration matches %s identifiers, not %s", v.Kind, spec.Kind)
	}
	profile, err := crypto.LookupProfile(v.Profile, crypto.ProfileOptions{DefaultCountryCode: spec.CountryCode})
	if err != nil {
		return nil, err
	}
	ks, err := spec.State.LoadSecret(spec.Collab)
	if err != nil {
		return nil, err
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
	st, resumed, err := c.resumeOrStart(ctx, spec, v, canary)
	if err != nil {
		return nil, err
	}
	rep := &UploadReport{Upload: st.Upload, Mode: v.Mode}
	s := &partSender{c: c, spec: spec, st: st, tokens: tokens, read: -1}
	if err := s.run(ctx, profile, resumed, rep); err != nil {
		return nil, err
	}
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
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	free := make(chan *batch, senders+1)
	for range cap(free) {
		free <- &batch{part: api.Part{Columns: len(s.spec.Columns)}}
	}
	todo := make(chan *batch)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for b := range todo {
				if err := s.send(ctx, b); err != nil {
					cancel(err)
				}
				free <- b
			}
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
			return fmt.Errorf("client: line %d: %w", line, err)
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
	if err == nil && b.part.Rows > 0 {
		err = flush()
	}
	close(todo)
	wg.Wait()
	if cause := context.Cause(ctx); err == nil && cause != nil {
		err = cause
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

// resumeOrStart continues the upload recorded in the state directory if it
// is of the same input and still open in the room, or starts a new one.
func (c *Client) resumeOrStart(ctx context.Context, spec UploadSpec, v *api.Collaboration, canary [][32]byte) (*uploadState, map[int]bool, error) {
	input, err := inputFingerprint(spec.Input)
	if err != nil {
		return nil, nil, err
	}
	var st uploadState
	if b, err := os.ReadFile(spec.State.uploadFile(spec.Collab)); err == nil && json.Unmarshal(b, &st) == nil && st.Input == input {
		var u api.Upload
		path := fmt.Sprintf("/v1/collaborations/%s/uploads/%s", esc(spec.Collab), esc(st.Upload))
		if err := c.do(ctx, "GET", path, nil, &u); err == nil && !u.Committed && u.RowsPerPart == st.RowsPerPart {
			have := map[int]bool{}
			for _, p := range u.Received {
				have[p] = true
			}
			return &st, have, nil
		}
	}
	// The rows are declared at the commit: the input is read once.
	req := api.StartUpload{Kind: v.Kind, Profile: v.Profile, Columns: spec.Columns, RowsPerPart: spec.RowsPerPart}
	if req.Columns == nil {
		req.Columns = []string{}
	}
	for _, t := range canary {
		req.Canary = append(req.Canary, t[:])
	}
	var u api.Upload
	if err := c.do(ctx, "POST", "/v1/collaborations/"+esc(spec.Collab)+"/uploads", req, &u); err != nil {
		return nil, nil, err
	}
	st = uploadState{Upload: u.ID, Input: input, RowsPerPart: spec.RowsPerPart, Digests: map[int]string{}}
	return &st, map[int]bool{}, spec.State.saveUpload(spec.Collab, &st)
}

func (d StateDir) saveUpload(collab string, st *uploadState) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return err
	}
	b, _ := json.Marshal(st)
	tmp := d.uploadFile(collab) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, d.uploadFile(collab))
}
