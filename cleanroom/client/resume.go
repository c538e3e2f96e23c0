package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// uploadState is what the partner keeps while an upload is under way: the
// room's upload, what it was started from, and the digests of the parts the
// room acknowledged. A later run resumes it only if it would send the same
// parts: the same input bytes, identifier column, kind, country code,
// attribute columns and part size.
type uploadState struct {
	Upload      string         `json:"upload"`
	Input       string         `json:"input"` // inputScan.fingerprint
	IDColumn    string         `json:"id_column"`
	Kind        string         `json:"kind"`
	CountryCode int            `json:"country_code,omitempty"`
	Columns     []string       `json:"columns"`
	RowsPerPart int            `json:"rows_per_part"`
	Digests     map[int]string `json:"digests"`
	// Keys is the keying the parts were made with (uploadKeys): parts of
	// an earlier client's keying never join this one's in an upload.
	Keys int `json:"keys"`
}

// uploadKeys numbers the keying of an upload's tokens: 1, a blinded set
// under the collaboration's own key (Client.BlindingKey), a hashed one
// under the secret. A saved upload without it, 0, was blinded under the
// partner's scalar itself.
const uploadKeys = 1

func (d StateDir) uploadFile(collab string) string {
	return filepath.Join(string(d), collab+".upload.json")
}

func (d StateDir) saveUpload(collab string, st *uploadState) error {
	return d.writeJSON(d.uploadFile(collab), st)
}

// writeJSON replaces the state file path with v, whole.
func (d StateDir) writeJSON(path string, v any) error {
	if err := d.prepare(); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// committedUpload is what an audience's mapping needs of the member's
// latest committed upload to a collaboration: which upload it was, and
// the fingerprint of the file it was made from, whose bytes the upload's
// order follows.
type committedUpload struct {
	Upload string `json:"upload"`
	Input  string `json:"input"`
}

func (d StateDir) committedFile(collab string) string {
	return filepath.Join(string(d), collab+".uploaded.json")
}

func (d StateDir) saveCommitted(collab string, st *uploadState) error {
	return d.writeJSON(d.committedFile(collab), committedUpload{Upload: st.Upload, Input: st.Input})
}

func (d StateDir) loadCommitted(collab string) (*committedUpload, error) {
	if !crypto.ValidPartnerName(collab) {
		return nil, fmt.Errorf("client: %q is not a collaboration id", collab)
	}
	b, err := os.ReadFile(d.committedFile(collab))
	if err != nil {
		return nil, err
	}
	var u committedUpload
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, fmt.Errorf("client: %s is damaged: %w", d.committedFile(collab), err)
	}
	return &u, nil
}

// newUploadState is the state of a new upload of spec's input.
func newUploadState(spec UploadSpec, input string) *uploadState {
	return &uploadState{Input: input, IDColumn: spec.IDColumn, Kind: string(spec.Kind), CountryCode: spec.CountryCode,
		Columns: columnsOrEmpty(spec.Columns), RowsPerPart: spec.RowsPerPart, Digests: map[int]string{}, Keys: uploadKeys}
}

func columnsOrEmpty(cols []string) []string {
	if cols == nil {
		return []string{}
	}
	return cols
}

// differs says how saved, the state of an earlier run, differs from want,
// this run's, or "" if the earlier upload can go on.
func (saved *uploadState) differs(want *uploadState) string {
	switch {
	case saved.Upload == "" || saved.Digests == nil:
		return "it is incomplete"
	case saved.Input != want.Input:
		return "the input file changed since"
	case saved.IDColumn != want.IDColumn:
		return "it was of another identifier column"
	case saved.Kind != want.Kind:
		return "it was of another identifier kind"
	case saved.CountryCode != want.CountryCode:
		return "it was made with another country code"
	case !slices.Equal(columnsOrEmpty(saved.Columns), want.Columns):
		return "it was of other attribute columns"
	case saved.RowsPerPart != want.RowsPerPart:
		return "it was made with another part size"
	case saved.Keys != want.Keys:
		return "an earlier version of the client encrypted its parts under another key"
	}
	return ""
}

// notice tells spec.Notice, if set.
func (spec UploadSpec) notice(format string, a ...any) {
	if spec.Notice != nil {
		spec.Notice(fmt.Sprintf(format, a...))
	}
}

// discardUpload forgets the saved upload, telling the user why.
func (spec UploadSpec) discardUpload(why string) {
	os.Remove(spec.State.uploadFile(spec.Collab))
	spec.notice("the saved progress of an earlier upload is discarded (%s); starting over", why)
}

// discardOpen asks the room to discard the saved upload st
// (discardInRoom), which it would otherwise keep until a week after the
// upload started, then forgets it as discardUpload does, telling the user
// why. An upload the room committed (a run stopped before it heard so) is
// recorded as committed, as resume records it. Until the room has said
// what became of the upload, nothing is decided: an error keeps the saved
// progress, since the new upload's would replace it.
func (c *Client) discardOpen(ctx context.Context, spec UploadSpec, st *uploadState, why string) error {
	if st.Upload != "" {
		switch out, err := c.discardInRoom(ctx, spec.Collab, st.Upload); {
		case err != nil:
			return fmt.Errorf("client: the room did not say what became of the earlier upload, whose saved progress cannot go on (%s): %w", why, err)
		case out == uploadCommitted:
			if err := spec.State.saveCommitted(spec.Collab, st); err != nil {
				return err
			}
		case out == uploadKeptOpen:
			spec.notice("the room keeps the parts of that upload until a week after it started (it does not discard uploads)")
		}
	}
	spec.discardUpload(why)
	return nil
}

// DiscardUpload deletes an upload of this partner's that is not committed
// from the room: its parts and its record. The room refuses a committed
// upload (ProblemConflict) and answers ProblemNotFound for one it does not
// hold open.
func (c *Client) DiscardUpload(ctx context.Context, collab, upload string) error {
	return c.do(ctx, "DELETE", "/v1/collaborations/"+esc(collab)+"/uploads/"+esc(upload), nil, nil)
}

// What became of an upload the room was asked to discard.
type discardOutcome int

const (
	uploadGone      discardOutcome = iota // discarded, or not held by the room
	uploadCommitted                       // the member's list: refused
	uploadKeptOpen                        // refused, and still open (a room without the route)
)

// discardInRoom asks the room to discard upload (DiscardUpload) and says
// what became of it. A refusal is confirmed by reading the upload, since a
// 404 also comes from a room without the route, and a room that refuses
// with a 409 must show the upload committed before this client records it
// so. An error means the room did not say.
func (c *Client) discardInRoom(ctx context.Context, collab, upload string) (discardOutcome, error) {
	err := c.DiscardUpload(ctx, collab, upload)
	var p *api.Problem
	if err == nil {
		return uploadGone, nil
	}
	if !errors.As(err, &p) || p.Type != api.ProblemNotFound && p.Type != api.ProblemConflict {
		return 0, err
	}
	var u api.Upload
	switch rerr := c.do(ctx, "GET", "/v1/collaborations/"+esc(collab)+"/uploads/"+esc(upload), nil, &u); {
	case errors.As(rerr, &p) && p.Type == api.ProblemNotFound:
		return uploadGone, nil
	case rerr != nil:
		return 0, rerr
	case u.ID != upload:
		return 0, fmt.Errorf("client: asked for upload %s, the room answered with another", upload)
	case u.Committed:
		return uploadCommitted, nil
	default:
		return uploadKeptOpen, nil
	}
}

// ErrNoSavedUpload is DiscardSaved finding no upload in progress saved
// for the collaboration; ErrUploadCommitted is the room refusing to
// discard it because it committed it.
var (
	ErrNoSavedUpload   = errors.New("client: no upload in progress is saved for this collaboration")
	ErrUploadCommitted = errors.New("client: the room committed that upload already")
)

// DiscardSaved discards the upload to collab whose progress is saved in
// state: the room deletes the parts it received (DiscardUpload), and the
// saved progress goes. It returns the upload's id. If the room committed
// that upload already (a run stopped before it heard so), it is recorded
// here as committed, as the next upload would, and the error is
// ErrUploadCommitted.
func (c *Client) DiscardSaved(ctx context.Context, state StateDir, collab string) (string, error) {
	if !crypto.ValidPartnerName(collab) {
		return "", fmt.Errorf("client: %q is not a collaboration id", collab)
	}
	v, err := c.Collaboration(ctx, collab)
	if err != nil {
		return "", err
	}
	if state, err = c.roomState(state, v); err != nil {
		return "", err
	}
	// A run's spill lives only while the run does (the next one makes its
	// own): whatever happens to the upload, a killed run's goes.
	removeSpills(string(state), collab)
	b, err := os.ReadFile(state.uploadFile(collab))
	if errors.Is(err, os.ErrNotExist) {
		return "", ErrNoSavedUpload
	}
	if err != nil {
		return "", err
	}
	var st uploadState
	if err := json.Unmarshal(b, &st); err != nil || st.Upload == "" {
		// Nothing names an upload in the room: the week's sweep has it.
		return "", errors.Join(ErrNoSavedUpload, os.Remove(state.uploadFile(collab)))
	}
	switch out, err := c.discardInRoom(ctx, collab, st.Upload); {
	case err != nil:
		return "", err // nothing is decided: the progress stays
	case out == uploadCommitted:
		if err := state.saveCommitted(collab, &st); err != nil {
			return "", err
		}
		os.Remove(state.uploadFile(collab))
		return "", ErrUploadCommitted
	case out == uploadKeptOpen:
		return "", errors.New("client: the room keeps the upload open: it does not discard uploads (it deletes them a week after they started)")
	}
	if err := os.Remove(state.uploadFile(collab)); err != nil {
		return "", err
	}
	return st.Upload, nil
}

// resumeOrStart continues the upload recorded in the state directory if it
// is of the same input and settings and still open in the room, or starts a
// new one (always, with fresh). Saved progress that cannot go on is
// discarded, with a notice: never an error. resumed lists the parts the room
// has; fromState says the upload is the saved one.
func (c *Client) resumeOrStart(ctx context.Context, spec UploadSpec, v *api.Collaboration, canary [][32]byte, input string, fresh bool) (st *uploadState, resumed map[int]bool, fromState bool, err error) {
	want := newUploadState(spec, input)
	if !fresh {
		st, resumed, err = c.resume(ctx, spec, want)
		if err != nil || st != nil {
			return st, resumed, st != nil, err
		}
	}
	// The rows are declared at the commit: the input is read once.
	req := api.StartUpload{Kind: v.Kind, Profile: v.Profile, Columns: want.Columns, RowsPerPart: spec.RowsPerPart}
	for _, t := range canary {
		req.Canary = append(req.Canary, t[:])
	}
	var u api.Upload
	if err := c.do(ctx, "POST", "/v1/collaborations/"+esc(spec.Collab)+"/uploads", req, &u); err != nil {
		return nil, nil, false, err
	}
	want.Upload = u.ID
	return want, map[int]bool{}, false, spec.State.saveUpload(spec.Collab, want)
}

// resume returns the saved upload and the parts the room has, or nil if
// there is none that can go on (after discarding what there is).
func (c *Client) resume(ctx context.Context, spec UploadSpec, want *uploadState) (*uploadState, map[int]bool, error) {
	b, err := os.ReadFile(spec.State.uploadFile(spec.Collab))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var st uploadState
	if err := json.Unmarshal(b, &st); err != nil {
		spec.discardUpload("it is unreadable")
		return nil, nil, nil
	}
	if why := st.differs(want); why != "" {
		return nil, nil, c.discardOpen(ctx, spec, &st, why)
	}
	var u api.Upload
	path := fmt.Sprintf("/v1/collaborations/%s/uploads/%s", esc(spec.Collab), esc(st.Upload))
	if err := c.do(ctx, "GET", path, nil, &u); err != nil {
		var p *api.Problem
		if !errors.As(err, &p) || p.Type != api.ProblemNotFound {
			return nil, nil, err // the room did not say: nothing is decided
		}
		spec.discardUpload("the room no longer has it open")
		return nil, nil, nil
	}
	switch {
	case u.Committed:
		// Committed by a run that stopped before it heard so.
		if err := spec.State.saveCommitted(spec.Collab, &st); err != nil {
			return nil, nil, err
		}
		spec.discardUpload("the room committed it already")
		return nil, nil, nil
	case u.RowsPerPart != st.RowsPerPart || !slices.Equal(columnsOrEmpty(u.Columns), st.Columns):
		return nil, nil, c.discardOpen(ctx, spec, &st, "the room holds it with other columns")
	}
	have := map[int]bool{}
	for _, p := range u.Received {
		have[p] = true
	}
	st.Columns = want.Columns
	return &st, have, nil
}

// misfit reports whether err is the room refusing a part as not fitting its
// upload (its columns or rows), as it does a part of a saved upload that was
// started with other columns.
func misfit(err error) bool {
	var p *api.Problem
	return errors.As(err, &p) && p.Type == api.ProblemInvalidData
}

// digestMismatch reports whether err is the room refusing a commit whose
// digest is not that of the parts it holds.
func digestMismatch(err error) bool {
	var p *api.Problem
	return errors.As(err, &p) && p.Type == api.ProblemDigestMismatch
}

// damagedInRoom reports whether err is the room refusing to use data it
// stored because it failed its integrity check.
func damagedInRoom(err error) bool {
	var p *api.Problem
	return errors.As(err, &p) && p.Type == api.ProblemCorrupt
}
