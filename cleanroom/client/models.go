package client

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
// file it uploaded to the collaboration, how its identifiers were read,
// and the state directory the upload was made with, which holds the
// collaboration's secret (under which the upload ordered the file's rows)
// and a record of the upload.
type AudienceInput struct {
	Collab      string // ActivateCSV's collaboration, if empty
	Room        string // the room's id; ActivateCSV's room, if empty
	Input       string
	IDColumn    string
	Kind        crypto.Kind
	CountryCode int
	State       StateDir
}

// WriteAudience writes the header of in's file and the records of the
// audience's rows, in the file's order. An audience names rows of the
// upload, which skipped the records without a valid identifier and sent
// the others in its own order (order.go); the file is read again with the
// same normalization and placed in the same order, so that upload row r is
// the valid record of rank r. The file must be byte for byte the one the
// state directory's latest upload to the collaboration was made from, and
// the audience of that upload (another file, even one edited in a single
// value, would place its records otherwise). It returns the records
// written, and ErrNotTheUpload if the file or the audience is not of that
// upload.
func WriteAudience(ctx context.Context, profile crypto.Profile, in AudienceInput, aud *api.Audience, out io.Writer) (int, error) {
	if aud.Collaboration != in.Collab {
		return 0, fmt.Errorf("client: the room's audience is of collaboration %q, not %q", aud.Collaboration, in.Collab)
	}
	state, err := in.State.Room(in.Room)
	if err != nil {
		return 0, err
	}
	saved, err := state.saved(in.Collab)
	if err != nil {
		return 0, err
	}
	ks := saved.secret
	made, err := state.loadCommitted(in.Collab)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: %s holds no record of an upload to %s (give the state directory the upload was made with)", ErrNotTheUpload, in.State, in.Collab)
	}
	if err != nil {
		return 0, err
	}
	if aud.Upload != made.Upload {
		return 0, fmt.Errorf("%w: the audience is of upload %s; the latest one made from this state directory is %s", ErrNotTheUpload, aud.Upload, made.Upload)
	}
	// Placed in the order of the upload's file; the first read checks, by
	// its fingerprint, that this file is that one before anything is
	// written.
	order := newRowOrder(ks, made.Input)
	places, err := newPlaces(string(state), in.Collab, aud.Rows, placesGroupRows)
	if err != nil {
		return 0, err
	}
	defer places.remove()
	kb := profile.NewKeyBatch(spillChunk)
	var held []int64 // the valid records whose keys kb holds
	place := func() error {
		keys := kb.Keys()
		for i := range keys {
			if err := places.add(order.at(&keys[i]), held[i]); err != nil {
				return err
			}
		}
		kb.Reset()
		held = held[:0]
		return nil
	}
	read := newFingerprinter()
	err = audienceRecords(ctx, in, read, func(j int64, rec []string, id string) error {
		if j >= 0 && kb.Add(in.Kind, id) == nil {
			if held = append(held, j); len(held) == spillChunk {
				return place()
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if read.String() != made.Input {
		return 0, fmt.Errorf("%w: the file is not byte for byte the one uploaded", ErrNotTheUpload)
	}
	if err := place(); err != nil {
		return 0, err
	}
	if places.count != aud.Rows {
		return 0, fmt.Errorf("%w: it has %d rows with a valid identifier, the upload had %d", ErrNotTheUpload, places.count, aud.Rows)
	}
	want, err := places.pick(slices.Clone(aud.Audience))
	if err != nil {
		return 0, err
	}
	places.remove()
	w := csv.NewWriter(out)
	written := 0
	err = audienceRecords(ctx, in, nil, func(j int64, rec []string, _ string) error {
		if j < 0 {
			return w.Write(rec) // the header
		}
		if len(want) > 0 && want[0] == j {
			want = want[1:]
			written++
			return w.Write(rec)
		}
		return nil
	})
	if err != nil {
		return written, err
	}
	w.Flush()
	return written, w.Error()
}

// audienceRecords calls fn with the header of in's file (j = -1), then with
// each data record, its index j and its identifier; the file's bytes go to
// tee too, if not nil. Each record is fn's only until fn returns.
func audienceRecords(ctx context.Context, in AudienceInput, tee io.Writer, fn func(j int64, rec []string, id string) error) error {
	f, err := os.Open(in.Input)
	if err != nil {
		return err
	}
	defer f.Close()
	var src io.Reader = f
	if tee != nil {
		src = io.TeeReader(f, tee)
	}
	r := newCSVReader(src)
	header, err := readHeader(r)
	if err != nil {
		return err
	}
	r.transient = true
	l, err := layout(header, in.IDColumn, nil)
	if err != nil {
		return err
	}
	if err := fn(-1, header, ""); err != nil {
		return err
	}
	for j := int64(0); ; j++ {
		if j%checkEvery == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return csvError(err)
		}
		if err := fn(j, rec, rec[l.id]); err != nil {
			return err
		}
	}
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
	if _, err := c.roomState(in.State, v); err != nil {
		return nil, 0, err
	}
	aud, err := c.Activate(ctx, id, seg)
	if err != nil {
		return nil, 0, err
	}
	if aud.Member != c.principal {
		return nil, 0, fmt.Errorf("client: the room's audience is of member %q's upload, not this partner's", aud.Member)
	}
	if in.Collab == "" {
		in.Collab = id
	}
	if in.Collab != id {
		return nil, 0, fmt.Errorf("client: the audience's input names collaboration %q, the activation %q", in.Collab, id)
	}
	if in.Room == "" {
		in.Room = c.room.ID
	}
	if in.Room != c.room.ID {
		return nil, 0, fmt.Errorf("client: the audience's input names room %q, the activation %q", in.Room, c.room.ID)
	}
	n, err := WriteAudience(ctx, profile, in, aud, out)
	return aud, n, err
}
