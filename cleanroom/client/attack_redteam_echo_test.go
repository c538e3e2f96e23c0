package client

// A file without a header row: the "header" is the first person's
// identifier and values, and short values are two edits from short column
// names ("id" from any value of two characters). A suggestion that quoted
// the field a typo away from the column asked for would echo a data value,
// or the identifier itself; layout names the field by its place.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

func TestAttackRedteamEchoHeaderlessSuggestion(t *testing.T) {
	for _, tc := range []struct {
		name, firstRow, idColumn, secret string
		kind                             crypto.Kind
	}{
		{"an age next to id", "884213,34,f", "id", "34", crypto.KindCustom},
		{"a mailbox provider next to email", "jane.doe@example.org,gmail,25-34", "email", "gmail", crypto.KindEmail},
		{"the identifier itself next to user", "user42,gold", "user", "user42", crypto.KindCustom},
		{"a payment status next to maid", "6f1c2b0e-3a4d-4e5f-8a9b-0c1d2e3f4a5b,paid", "maid", "paid", crypto.KindMAID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "list.csv")
			if err := os.WriteFile(path, []byte(tc.firstRow+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			// The upload's header check and the audience's mapping.
			var said []string
			if err := checkHeader(UploadSpec{Input: path, IDColumn: tc.idColumn, Kind: tc.kind}); err != nil {
				said = append(said, err.Error())
			}
			p, err := crypto.LookupProfile(crypto.ProfilePAIRv1, crypto.ProfileOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, aerr := WriteAudience(context.Background(), p, AudienceInput{Collab: "c1", Room: "room1", State: StateDir(t.TempDir()), Input: path, IDColumn: tc.idColumn, Kind: tc.kind},
				&api.Audience{Collaboration: "c1", Rows: 1, Audience: []uint32{0}}, discard{})
			if aerr != nil {
				said = append(said, aerr.Error())
			}
			all := strings.Join(said, "\n")
			t.Logf("%s", all)
			if strings.Contains(all, `"`+tc.secret+`"`) {
				t.Errorf("LEAK: the error echoes the first row's %q: %s", tc.secret, all)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
