package client_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// TestUploadCountsNumericValues: the report of an upload counts, for each
// column the collaboration bounds, the values the room will not read as
// written: blank or not numbers (which count as the bound nearest zero),
// and outside the bounds (clamped); the room's reading of a number
// (trimmed, finite) decides. A column without bounds, and rows skipped for
// their identifier, are not counted.
func TestUploadCountsNumericValues(t *testing.T) {
	rm := startRoom(t)
	a, b := rm.partner("brand-a", nil), rm.partner("brand-b", nil)
	sa, _ := rm.collab("c1", api.ModeHashed, map[string]any{
		"bounds": map[string][2]float64{"brand-a.spend": {0, 100}, "brand-b.spend": {0, 1}},
	}, a, b)
	rows := people(0, 400) // spend = i % 500: 101..399 are above 100
	weird := map[int]string{
		3:   "N/A",   // text
		4:   "",      // blank
		5:   " 12 ",  // a number once trimmed
		6:   "1e999", // not finite
		7:   "-5",    // below
		8:   "0x1p4", // 16, as strconv reads it: in bounds
		9:   "NaN",   // not a number
		500: "N/A",   // on a row skipped for its identifier: not counted
	}
	for i, v := range weird {
		if i >= len(rows) {
			rows = append(rows, "not-an-email,20,"+v+",+442079460000")
			continue
		}
		f := strings.Split(rows[i], ",")
		f[2] = v
		rows[i] = strings.Join(f, ",")
	}
	rep, err := a.UploadCSV(context.Background(), client.UploadSpec{Collab: "c1", Input: writeCSV(t, peopleHeader, rows),
		IDColumn: "email", Kind: crypto.KindEmail, Columns: []string{"age_band", "spend"}, State: sa})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Skipped != 1 {
		t.Fatalf("%d rows skipped, want 1", rep.Skipped)
	}
	wantNaN := map[string]int64{"spend": 4}
	wantOut := map[string]int64{"spend": 1 + (399 - 100)} // -5, and 101..399
	if !maps.Equal(rep.NotNumbers, wantNaN) || !maps.Equal(rep.Clamped, wantOut) {
		t.Errorf("not numbers %v, clamped %v; want %v, %v", rep.NotNumbers, rep.Clamped, wantNaN, wantOut)
	}
}

// TestUploadNamesBadValue: a value the room cannot take (over
// api.MaxValueLen bytes, or not UTF-8) stops the upload with an error that
// names its line, its column and the problem, never the value.
func TestUploadNamesBadValue(t *testing.T) {
	rm := startRoom(t)
	a, b := rm.partner("brand-a", nil), rm.partner("brand-b", nil)
	sa, _ := rm.collab("c1", api.ModeHashed, nil, a, b)
	for _, c := range []struct {
		name, value, want string
	}{
		{"long", "secret" + strings.Repeat("7", api.MaxValueLen), fmt.Sprintf("longer than the %d bytes", api.MaxValueLen)},
		{"latin1", "secret caf\xe9", "not UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows := people(0, 300)
			f := strings.Split(rows[41], ",")
			f[2] = c.value
			rows[41] = strings.Join(f, ",")
			_, err := a.UploadCSV(context.Background(), client.UploadSpec{Collab: "c1", Input: writeCSV(t, peopleHeader, rows),
				IDColumn: "email", Kind: crypto.KindEmail, Columns: []string{"age_band", "spend"}, State: sa})
			if !errors.Is(err, client.ErrInvalidValue) {
				t.Fatalf("got %v, want ErrInvalidValue", err)
			}
			msg := err.Error()
			for _, want := range []string{"line 43", `column "spend"`, c.want} {
				if !strings.Contains(msg, want) {
					t.Errorf("%q does not say %q", msg, want)
				}
			}
			if strings.Contains(msg, "secret") || strings.Contains(msg, "person00041") {
				t.Errorf("%q echoes the row", msg)
			}
		})
	}
}
