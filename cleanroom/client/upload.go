package client

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
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
	// State holds, for each room, the collaboration's secret, the upload's progress, and,
	// while the upload reads its input, the input's valid rows (about as
	// many bytes as the input), in files removed when it ends.
	State StateDir
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
	// NotNumbers counts, by column, the values uploaded in a column with
	// bounds (a numeric column) that are blank or not numbers: the room
	// counts each as the bound nearest zero in sums, averages, ROI and
	// k-means. Clamped counts those outside the column's bounds, which
	// count as the nearer bound. Neither holds a column without such
	// values.
	NotNumbers map[string]int64 `json:"not_numbers,omitempty"`
	Clamped    map[string]int64 `json:"clamped,omitempty"`
}

// boundedColumn is an uploaded column the collaboration declares bounds
// for ("member.column" in its settings): i is its place among the
// upload's columns.
type boundedColumn struct {
	i      int
	name   string
	lo, hi float64
	nan    int64 // values that are not numbers
	out    int64 // values outside [lo, hi]
}

// boundedColumns returns the upload's columns that v bounds for member.
func boundedColumns(v *api.Collaboration, member string, columns []string) []boundedColumn {
	var terms struct {
		Bounds map[string][2]float64 `json:"bounds"`
	}
	if json.Unmarshal(v.Settings, &terms) != nil {
		return nil // the room decoded them strictly; no counts is all this costs
	}
	var out []boundedColumn
	for i, col := range columns {
		if b, ok := terms.Bounds[member+"."+col]; ok {
			out = append(out, boundedColumn{i: i, name: col, lo: b[0], hi: b[1]})
		}
	}
	return out
}

// count counts a value of the column.
func (b *boundedColumn) count(v string) {
	switch x := analytics.ParseNumberString(v); {
	case x != x:
		b.nan++
	case x < b.lo || x > b.hi:
		b.out++
	}
}

// reportBounded sets rep's counts of the columns.
func reportBounded(rep *UploadReport, cols []boundedColumn) {
	for _, b := range cols {
		if b.nan > 0 {
			if rep.NotNumbers == nil {
				rep.NotNumbers = map[string]int64{}
			}
			rep.NotNumbers[b.name] = b.nan
		}
		if b.out > 0 {
			if rep.Clamped == nil {
				rep.Clamped = map[string]int64{}
			}
			rep.Clamped[b.name] = b.out
		}
	}
}

// tokenizer turns a part's match keys into the 32 bytes each row sends:
// HMAC tokens in hashed mode, PAIR encryptions with the partner's key in
// blinded mode. It writes into dst, which the caller reuses from part to
// part: a part's tokens take no allocation of their own in hashed mode.
type tokenizer func(ctx context.Context, dst []crypto.Token, keys []crypto.MatchKey) error

func (c *Client) tokenizer(collab, mode string, ks *crypto.Secret) tokenizer {
	if mode == api.ModeHashed {
		return func(ctx context.Context, dst []crypto.Token, keys []crypto.MatchKey) error {
			return crypto.HashTokens(ctx, ks, dst, keys)
		}
	}
	bk := c.BlindingKey(collab)
	return func(ctx context.Context, dst []crypto.Token, keys []crypto.MatchKey) error {
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
// refused. Then the input is read once into files of the state directory
// (about the input's size; removed when the run ends), and read back in an
// order of the client's own (order.go): one goroutine fills parts while
// others tokenize and send the parts before, and the row count is declared
// at the commit. If the upload is interrupted,
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
	if spec.State, err = c.roomState(spec.State, v); err != nil {
		return nil, err
	}
	saved, err := spec.State.saved(spec.Collab)
	if err != nil {
		return nil, err
	}
	ks := saved.secret
	scan, err := scanList(ctx, spec.Input, v.Constraints)
	if err != nil {
		return nil, err
	}
	if spec.RowsPerPart <= 0 {
		spec.RowsPerPart = 50_000
	}
	spec.RowsPerPart = min(spec.RowsPerPart, api.MaxRowsPerPart)
	tokens := c.tokenizer(v.ID, v.Mode, ks)
	canary, err := canaryTokens(ctx, v, spec.Kind, profile, tokens)
	if err != nil {
		return nil, err
	}
	return c.sendUpload(ctx, spec, v, profile, tokens, newRowOrder(ks, scan.fingerprint), canary, scan.fingerprint)
}

// scanList reads the input once, for its fingerprint and its rows, and
// refuses an input with fewer rows than the collaboration's minimum list
// size k.
func scanList(ctx context.Context, input string, k *api.Constraints) (inputScan, error) {
	upTo := int64(1)
	if k != nil {
		upTo = max(upTo, k.MinListSize)
	}
	scan, err := scanInput(ctx, input, upTo)
	if err != nil {
		return inputScan{}, err
	}
	if scan.rows == 0 {
		return inputScan{}, fmt.Errorf("%w (the file has a header and no rows)", ErrEmptyInput)
	}
	if k != nil && scan.rows < k.MinListSize {
		return inputScan{}, fmt.Errorf("%w: the input has %d data rows; the collaboration requires at least %d distinct identifiers",
			ErrListTooSmall, scan.rows, k.MinListSize)
	}
	return scan, nil
}

// canaryTokens are the tokens of the collaboration's canary identifiers,
// which the room compares across members before a match.
func canaryTokens(ctx context.Context, v *api.Collaboration, kind crypto.Kind, profile crypto.Profile, tokens tokenizer) ([][32]byte, error) {
	keys := make([]crypto.MatchKey, 0, 4)
	for _, id := range api.CanaryIdentifiers(v.Kind) {
		k, err := profile.MatchKey(kind, id)
		if err != nil {
			return nil, fmt.Errorf("client: normalizing a canary identifier: %w", err)
		}
		keys = append(keys, k)
	}
	toks := make([]crypto.Token, len(keys))
	if err := tokens(ctx, toks, keys); err != nil {
		return nil, err
	}
	canary := make([][32]byte, len(toks))
	for i, t := range toks {
		canary[i] = t
	}
	return canary, nil
}

// sendUpload resumes the saved upload of the input, or starts one, sends
// its parts and commits it.
func (c *Client) sendUpload(ctx context.Context, spec UploadSpec, v *api.Collaboration, profile crypto.Profile, tokens tokenizer, order *rowOrder, canary [][32]byte, input string) (*UploadReport, error) {
	for fresh := false; ; fresh = true {
		st, resumed, fromState, err := c.resumeOrStart(ctx, spec, v, canary, input, fresh)
		if err != nil {
			return nil, err
		}
		rep := &UploadReport{Upload: st.Upload, Mode: v.Mode}
		s := &partSender{c: c, spec: spec, st: st, tokens: tokens, order: order, read: -1,
			bounded: boundedColumns(v, c.principal, spec.Columns)}
		err = s.run(ctx, profile, resumed, rep)
		if err != nil && fromState && !fresh && misfit(err) {
			// A saved upload whose parts the room refuses as not fitting
			// it (made by an older client, or by hand): once, from scratch.
			if err := c.discardOpen(ctx, spec, st, "the room refused a part as not fitting it"); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		rep, err = c.commitUpload(ctx, spec, st, rep)
		if err != nil && len(resumed) > 0 && !fresh && (damagedInRoom(err) || digestMismatch(err)) {
			// A part sent by an earlier run failed the room's integrity
			// check, or its saved digest is not the room's: this run has
			// every part at hand, so once, from scratch.
			if err := c.discardOpen(ctx, spec, st, "the room found a part it had stored damaged, or another than the saved progress says"); err != nil {
				return nil, err
			}
			continue
		}
		return rep, err
	}
}

// commitUpload makes the sent parts the member's dataset.
func (c *Client) commitUpload(ctx context.Context, spec UploadSpec, st *uploadState, rep *UploadReport) (*UploadReport, error) {
	if rep.Rows == 0 {
		os.Remove(spec.State.uploadFile(spec.Collab)) // nothing to resume
		switch out, err := c.discardInRoom(ctx, spec.Collab, st.Upload); {
		case err != nil:
			spec.notice("the room did not say whether it deleted the empty upload (%v); it deletes it a week after it started", err)
		case out == uploadKeptOpen:
			spec.notice("the room keeps the empty upload until a week after it started (it does not discard uploads)")
		}
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
	if err := spec.State.saveCommitted(spec.Collab, st); err != nil {
		return nil, fmt.Errorf("client: the upload is committed, but recording it here failed (an activation cannot map its audience back): %w", err)
	}
	os.Remove(spec.State.uploadFile(spec.Collab))
	return rep, nil
}
