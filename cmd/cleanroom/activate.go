package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

func runActivate(e *env, args []string) error {
	v := newCollabVerb(e, "activate", "--room URL --key KEY --collab ID --segment FILE --input LIST.csv --id-column COL --out AUDIENCE.csv", `
Asks the room for the audience of a segment: your own customers, among the
matched people, whom the segment's filters keep. The room answers with their
rows in your upload, and this verb writes those rows of your list to --out:
give the file you uploaded, with the same identifier column and kind, and
the same state directory (--state, or the key's), whose collaboration
secret ordered the upload's rows. The other members' data never leaves the
room. Only where the settings every
member accepted allow it (their "activation" block names you); the answer
is exact, outside the privacy budget. The segment (JSON):
  {"version": "`+api.SegmentVersion+`",
   "filters": [{"column": "coursely.age_band", "op": "in", "values": ["18-24", "25-34"]}]}`)
	segment := v.String("segment", "", "the segment file (required)")
	input := v.String("input", "", "your list, as you uploaded it (required)")
	idCol := v.String("id-column", "", "the column holding the identifier (required)")
	kind := v.String("kind", "email", "identifier kind: email, phone, maid or custom")
	cc := v.Int("country-code", 0, "country calling code for phone numbers written without one, as at the upload")
	out := v.String("out", "", "where to write the audience's rows (required)")
	c, err := v.start(args)
	if err != nil {
		return err
	}
	if *segment == "" || *input == "" || *idCol == "" || *out == "" {
		return usagef("--segment, --input, --id-column and --out are required")
	}
	if err := outIsNotInput(*out, *input); err != nil {
		return err
	}
	k, err := crypto.ParseKind(*kind)
	if err != nil {
		return usagef("%v", err)
	}
	b, err := os.ReadFile(*segment)
	if err != nil {
		return err
	}
	var seg api.SegmentSpec
	if err := decodeJSONFile(*segment, b, &seg); err != nil {
		return withHint(fmt.Errorf("the file is not a segment: %w", err), `e.g. {"version":"`+api.SegmentVersion+`","filters":[{"column":"coursely.age_band","op":"eq","value":"18-24"}]}`)
	}
	var aud *api.Audience
	var n int
	_, err = writeAtomic(*out, func(f *os.File) (int64, error) {
		var err error
		aud, n, err = c.ActivateCSV(e.Context(), *v.collab, seg, client.AudienceInput{Input: *input, IDColumn: *idCol, Kind: k, CountryCode: *cc, State: v.room.stateDir()}, f)
		return int64(n), err
	})
	if errors.Is(err, client.ErrNotTheUpload) {
		return withHint(err, "give the file you uploaded, unchanged, with the same --id-column, --kind and --country-code, and the state directory the upload was made with")
	}
	if err != nil {
		return explain(err)
	}
	return v.print(aud, func() {
		fmt.Fprintf(e.stdout, "wrote %s: %d of your customers in the segment (exact, outside the privacy budget; %d activations left today, %d in all)\n",
			*out, n, aud.ActivationsLeftToday, aud.ActivationsLeft)
	})
}
