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
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

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
	Input    string // a CSV file with a header row; read twice (count, then send)
	IDColumn string
	Kind     crypto.Kind
	Columns  []string // attribute columns to send along
	// CountryCode is assumed for phone numbers without one (0: refuse them).
	CountryCode int
	RowsPerPart int // default 50,000
	State       StateDir
	// Progress, if set, is called after every part with rows sent and the
	// total; Invalid with the line number and reason of every skipped row.
	Progress func(done, total int64)
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
	Input       string         `json:"input_sha256"`
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
// (or an error) and attribute values.
func csvRows(path, idColumn string, columns []string, profile crypto.Profile, kind crypto.Kind,
	fn func(line int, key crypto.MatchKey, err error, attrs []string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = true
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
		if err := fn(line, key, kerr, attrs); err != nil {
			return err
		}
	}
}

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// UploadCSV normalizes, tokenizes (or encrypts) and uploads a CSV on this
// machine: identifiers never leave it, only tokens and the chosen attribute
// columns. Parts go one at a time; if the upload is interrupted, running it
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

	// Pass 1: count the rows with a valid identifier.
	var rows, skipped int64
	err = csvRows(spec.Input, spec.IDColumn, spec.Columns, profile, spec.Kind, func(line int, _ crypto.MatchKey, kerr error, _ []string) error {
		if kerr != nil {
			skipped++
			if spec.Invalid != nil {
				var ie *crypto.IdentifierError
				reason := "invalid identifier"
				if errors.As(kerr, &ie) {
					reason = ie.Error()
				}
				spec.Invalid(line, reason)
			}
			return nil
		}
		rows++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rows == 0 {
		return nil, ErrEmptyInput
	}
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

	st, resumed, err := c.resumeOrStart(ctx, spec, v, rows, canary)
	if err != nil {
		return nil, err
	}
	rep := &UploadReport{Upload: st.Upload, Rows: rows, Skipped: skipped, Mode: v.Mode}
	rep.Parts = int((rows + int64(st.RowsPerPart) - 1) / int64(st.RowsPerPart))

	// Pass 2: send the parts the room does not have.
	keys := make([]crypto.MatchKey, 0, st.RowsPerPart)
	attrs := make([][]string, 0, st.RowsPerPart)
	toks := make([][32]byte, st.RowsPerPart)
	part := 0
	var sent int64
	flush := func() error {
		defer func() { keys, attrs = keys[:0], attrs[:0]; part++ }()
		sent += int64(len(keys))
		if _, ok := st.Digests[part]; ok && resumed[part] {
			rep.Resumed++
			return nil
		}
		if err := tokens(ctx, toks[:len(keys)], keys); err != nil {
			return err
		}
		var body bytes.Buffer
		pw := api.NewPartWriter(&body)
		for i := range keys {
			if err := pw.Write(&api.Row{Token: toks[i], Attrs: attrs[i]}); err != nil {
				return err
			}
		}
		digest, err := pw.Close()
		if err != nil {
			return err
		}
		var rc api.PartReceipt
		path := fmt.Sprintf("/v1/collaborations/%s/uploads/%s/parts/%d", esc(spec.Collab), esc(st.Upload), part)
		if err := c.call(ctx, "PUT", path, &body, "application/x-ndjson+gzip", &rc, true); err != nil {
			return fmt.Errorf("sending part %d: %w", part, err)
		}
		if rc.Digest != digest {
			return fmt.Errorf("client: the room stored part %d with another digest", part)
		}
		st.Digests[part] = digest
		if err := spec.State.saveUpload(spec.Collab, st); err != nil {
			return err
		}
		if spec.Progress != nil {
			spec.Progress(sent, rows)
		}
		return nil
	}
	err = csvRows(spec.Input, spec.IDColumn, spec.Columns, profile, spec.Kind, func(_ int, key crypto.MatchKey, kerr error, a []string) error {
		if kerr != nil {
			return nil
		}
		keys = append(keys, key)
		attrs = append(attrs, slices.Clone(a))
		if len(keys) == st.RowsPerPart {
			return flush()
		}
		return nil
	})
	if err == nil && len(keys) > 0 {
		err = flush()
	}
	if err != nil {
		return nil, err
	}
	digests := make([]string, rep.Parts)
	for p := range digests {
		digests[p] = st.Digests[p]
	}
	rep.Digest = api.DatasetDigest(digests)
	var ds api.Dataset
	path := fmt.Sprintf("/v1/collaborations/%s/uploads/%s/commit", esc(spec.Collab), esc(st.Upload))
	if err := c.do(ctx, "POST", path, api.CommitUpload{Digest: rep.Digest}, &ds); err != nil {
		return nil, fmt.Errorf("committing the upload: %w", err)
	}
	os.Remove(spec.State.uploadFile(spec.Collab))
	return rep, nil
}

// resumeOrStart continues the upload recorded in the state directory if it
// is of the same input and still open in the room, or starts a new one.
func (c *Client) resumeOrStart(ctx context.Context, spec UploadSpec, v *api.Collaboration, rows int64, canary [][32]byte) (*uploadState, map[int]bool, error) {
	input, err := fileDigest(spec.Input)
	if err != nil {
		return nil, nil, err
	}
	var st uploadState
	if b, err := os.ReadFile(spec.State.uploadFile(spec.Collab)); err == nil && json.Unmarshal(b, &st) == nil && st.Input == input {
		var u api.Upload
		path := fmt.Sprintf("/v1/collaborations/%s/uploads/%s", esc(spec.Collab), esc(st.Upload))
		if err := c.do(ctx, "GET", path, nil, &u); err == nil && !u.Committed && u.Rows == rows {
			have := map[int]bool{}
			for _, p := range u.Received {
				have[p] = true
			}
			return &st, have, nil
		}
	}
	req := api.StartUpload{Kind: v.Kind, Profile: v.Profile, Columns: spec.Columns, Rows: rows, RowsPerPart: spec.RowsPerPart}
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
