package client

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/model"
	"github.com/opencleanroom/cleanroom/crypto"
)

// TrainModel asks the room to train a lookalike model (api.ModelSpec)
// and returns it, parsed, with the room's answer. The model is checked
// here as a member's own tools would read it (model.Parse).
func (c *Client) TrainModel(ctx context.Context, id string, spec api.ModelSpec) (*model.Model, *api.ModelResult, error) {
	var out api.ModelResult
	if err := c.do(ctx, "POST", "/v1/collaborations/"+esc(id)+"/models", spec, &out); err != nil {
		return nil, nil, err
	}
	m, err := model.Parse(out.Model)
	if err != nil {
		return nil, nil, fmt.Errorf("client: the room's model: %w", err)
	}
	return m, &out, nil
}

// Activate asks the room for the audience of a segment (api.SegmentSpec):
// the rows of this member's upload of the matched people in it.
func (c *Client) Activate(ctx context.Context, id string, seg api.SegmentSpec) (*api.Audience, error) {
	var out api.Audience
	if err := c.do(ctx, "POST", "/v1/collaborations/"+esc(id)+"/activations", seg, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ErrNotTheUpload means the input given to map an audience back has
// another number of valid rows than the upload the audience indexes:
// give the file that was uploaded, with the same identifier column, kind
// and country code.
var ErrNotTheUpload = errors.New("client: the input is not the list the audience's upload was made from")

// AudienceInput is the member's own list an audience maps back to: the
// file it uploaded and how its identifiers were read.
type AudienceInput struct {
	Input       string
	IDColumn    string
	Kind        crypto.Kind
	CountryCode int
}

// WriteAudience writes the header of in's file and the records of the
// audience's rows, in the file's order. An audience names rows of the
// upload, which skipped the rows without a valid identifier; the file is
// read again with the same normalization, skipping the same rows, so that
// upload row r is the r-th valid record. It returns the records written,
// and ErrNotTheUpload if the file's valid rows are not as many as the
// upload's.
func WriteAudience(ctx context.Context, profile crypto.Profile, in AudienceInput, aud *api.Audience, out io.Writer) (int, error) {
	if !slices.IsSorted(aud.Audience) {
		return 0, errors.New("client: the room's audience is not in ascending row order")
	}
	f, err := os.Open(in.Input)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := newCSVReader(f)
	header, err := readHeader(r)
	// Each record is written (copied) before the next is read.
	r.transient = true
	if err != nil {
		return 0, err
	}
	l, err := layout(header, in.IDColumn, nil)
	if err != nil {
		return 0, err
	}
	w := csv.NewWriter(out)
	if err := w.Write(header); err != nil {
		return 0, err
	}
	want := aud.Audience
	var row int64
	written := 0
	for {
		if row%checkEvery == 0 && ctx.Err() != nil {
			return written, ctx.Err()
		}
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return written, csvError(err)
		}
		if !profile.Valid(in.Kind, rec[l.id]) {
			continue // the upload skipped it
		}
		if len(want) > 0 && int64(want[0]) == row {
			if err := w.Write(rec); err != nil {
				return written, err
			}
			written++
			want = want[1:]
		}
		row++
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return written, err
	}
	if row != aud.Rows || len(want) > 0 {
		return written, fmt.Errorf("%w: it has %d rows with a valid identifier, the upload had %d", ErrNotTheUpload, row, aud.Rows)
	}
	return written, nil
}

// checkEvery is how many rows WriteAudience reads between looks at its
// context.
const checkEvery = 1 << 16

// ActivateCSV activates a segment and writes the audience's records of
// the member's own list to out (WriteAudience), reading the list's
// identifiers under the collaboration's profile.
func (c *Client) ActivateCSV(ctx context.Context, id string, seg api.SegmentSpec, in AudienceInput, out io.Writer) (*api.Audience, int, error) {
	v, err := c.Collaboration(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	if string(in.Kind) != v.Kind {
		return nil, 0, fmt.Errorf("client: the collaboration matches %s identifiers, not %s", v.Kind, in.Kind)
	}
	profile, err := crypto.LookupProfile(v.Profile, crypto.ProfileOptions{DefaultCountryCode: in.CountryCode})
	if err != nil {
		return nil, 0, err
	}
	if err := checkHeader(UploadSpec{Input: in.Input, IDColumn: in.IDColumn}); err != nil {
		return nil, 0, err
	}
	aud, err := c.Activate(ctx, id, seg)
	if err != nil {
		return nil, 0, err
	}
	n, err := WriteAudience(ctx, profile, in, aud, out)
	return aud, n, err
}
