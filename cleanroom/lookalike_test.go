package cleanroom

// The scene of the model and activation tests: two brands with known
// people. The course platform (alpha) holds each person's age band,
// region, spend and whether its campaign reached them; the fitness app
// (bravo) whether they converted, which depends on alpha's columns by a
// known formula. The truth is a function of the person alone, so a test
// scores any answer against it, inside the overlap and out.

import (
	"context"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

var (
	laBands   = []string{"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}
	laRegions = []string{"north", "south", "east", "west"}
)

// laPerson is person i's values in alpha's list and its true chance of
// converting at bravo: young people who spend a lot convert, the campaign
// helps, region does not matter.
func laPerson(i int) (band, region, spend, exposed string, chance float64) {
	b := int(atkMix(i, 11) % uint64(len(laBands)))
	r := int(atkMix(i, 12) % uint64(len(laRegions)))
	s := float64(atkMix(i, 13)%2000) / 10 // 0.0 to 199.9, in steps of 0.1
	e := atkMix(i, 14)%2 == 0
	z := -2.2 + 1.6*b2f(b <= 1) + 2.0*s/200 + 0.7*b2f(e) - 0.6*b2f(b >= 4)
	return laBands[b], laRegions[r], strconv.FormatFloat(s, 'f', 1, 64), strconv.FormatBool(e), 1 / (1 + math.Exp(-z))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// laConverted is whether person i converted: a coin of the person's own.
func laConverted(i int) bool {
	_, _, _, _, p := laPerson(i)
	return float64(atkMix(i, 15)%1_000_000)/1_000_000 < p
}

// laSettings are the settings of the scene: alpha's columns are dimensions
// with declared domains or bounds, and alpha may receive audiences.
func laSettings() map[string]any {
	return map[string]any{
		"allowed_dimensions": []string{"alpha.age_band", "alpha.region", "alpha.spend", "alpha.exposed", "bravo.converted"},
		"domains": map[string][]string{"alpha.age_band": laBands, "alpha.region": laRegions, "alpha.exposed": {"false", "true"},
			"bravo.converted": {"0", "1"}},
		"bounds":     map[string][2]float64{"alpha.spend": {0, 200}, "bravo.revenue": {0, 100}},
		"activation": map[string]any{"members": []string{"alpha"}, "max_per_day": 4},
	}
}

// laRow is one line of alpha's list: an identifier (possibly invalid) and
// the person whose values it carries.
type laRow struct {
	email string
	id    int
}

// laAlphaRows are alpha's rows: people [0, n), with an invalid identifier
// every 97th line and one person written twice (the room keeps the first).
func laAlphaRows(n int) []laRow {
	var rows []laRow
	for i := range n {
		if i%97 == 5 {
			rows = append(rows, laRow{"not an email", i})
		}
		rows = append(rows, laRow{atkEmail(i), i})
		if i == 4321 {
			rows = append(rows, laRow{atkEmail(4000), 4000})
		}
	}
	return rows
}

func writeAlphaList(t testing.TB, rows []laRow) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "alpha.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write([]string{"email", "age_band", "region", "spend", "exposed"})
	for _, r := range rows {
		band, region, spend, exposed, _ := laPerson(r.id)
		w.Write([]string{r.email, band, region, spend, exposed})
	}
	w.Flush()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeBravoList(t testing.TB, ids []int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bravo.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write([]string{"email", "converted", "revenue"})
	for _, id := range ids {
		conv, rev := "0", "0"
		if laConverted(id) {
			conv, rev = "1", strconv.Itoa(10+int(atkMix(id, 16)%80))
		}
		w.Write([]string{atkEmail(id), conv, rev})
	}
	w.Flush()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// laScene is a matched collaboration of the scene.
type laScene struct {
	tr           *testRoom
	alpha, bravo *client.Client
	states       map[string]client.StateDir
	alphaRows    []laRow
	alphaFile    string
	inBravo      func(id int) bool
}

// Alpha holds people [0, 12000), bravo [4000, 16000): 8,000 in common.
const laAlpha, laBravoFrom, laBravoTo = 12000, 4000, 16000

func newLAScene(t *testing.T, settings map[string]any) *laScene {
	t.Helper()
	return newLASceneWith(t, settings, nil)
}

// newLASceneWith is newLAScene in a room whose Config configure adjusts.
func newLASceneWith(t *testing.T, settings map[string]any, configure func(*Config)) *laScene {
	t.Helper()
	tr := startRoomWith(t, configure)
	s := &laScene{tr: tr, alpha: tr.partner("alpha", policy.RolePartner, ""), bravo: tr.partner("bravo", policy.RolePartner, ""),
		inBravo: func(id int) bool { return id >= laBravoFrom && id < laBravoTo }}
	s.states = tr.collab("c1", api.ModeHashed, settings, s.alpha, s.bravo)
	ctx := context.Background()
	s.alphaRows = laAlphaRows(laAlpha)
	s.alphaFile = writeAlphaList(t, s.alphaRows)
	if _, err := s.alpha.UploadCSV(ctx, client.UploadSpec{Collab: "c1", Input: s.alphaFile, IDColumn: "email", Kind: crypto.KindEmail,
		Columns: []string{"age_band", "region", "spend", "exposed"}, State: s.states["alpha"], RowsPerPart: 5000}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.bravo.UploadCSV(ctx, client.UploadSpec{Collab: "c1", Input: writeBravoList(t, span(laBravoFrom, laBravoTo)), IDColumn: "email",
		Kind: crypto.KindEmail, Columns: []string{"converted", "revenue"}, State: s.states["bravo"], RowsPerPart: 5000}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.alpha.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	return s
}
