package cleanroom

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// The ground truth: lists as users export them, messy but equivalent
// identifiers (case, surrounding spaces), people listed twice with other
// values, rows whose identifier is invalid, and values outside their
// bounds or not numbers at all. The test computes every answer itself from
// the files, independently of the room, and requires the room's (noise off)
// to be the same, in both modes, for two and three members.

var truthBands = []string{"18-24", "25-34", "35-44", "45-54"}

// truthRow is one row of a member's file.
type truthRow struct {
	id    string // as written, messy
	attrs map[string]string
}

// truthList is a member's file: its columns and rows.
type truthList struct {
	member string
	cols   []string
	rows   []truthRow
}

// makeTruthLists draws the members' lists: member m holds about 3,000 of
// 5,000 people (so every pair and the three share about 1,100 to 1,800).
func makeTruthLists(members []string, seed uint64) []truthList {
	rng := rand.New(rand.NewPCG(seed, 99))
	cols := map[string][]string{
		"alpha":   {"age_band", "region", "spend", "exposed"},
		"bravo":   {"revenue", "conversions"},
		"charlie": {"tier"},
	}
	value := func(col string) string {
		switch col {
		case "age_band":
			return truthBands[rng.IntN(len(truthBands))]
		case "region":
			return []string{"north", "south", "east", "west"}[rng.IntN(4)]
		case "spend": // bounds [0, 500]: some above, some below, some not numbers
			switch rng.IntN(20) {
			case 0:
				return "n/a"
			case 1:
				return "-25"
			case 2:
				return "780.5"
			}
			return strconv.FormatFloat(float64(rng.IntN(50000))/100, 'f', 2, 64)
		case "exposed":
			return strconv.FormatBool(rng.IntN(3) == 0)
		case "revenue": // bounds [0, 100]
			if rng.IntN(15) == 0 {
				return "250"
			}
			return strconv.FormatFloat(float64(rng.IntN(10000))/100, 'f', 2, 64)
		case "conversions":
			return strconv.Itoa(rng.IntN(3))
		case "tier":
			return []string{"gold", "silver"}[rng.IntN(2)]
		}
		return ""
	}
	messy := func(person int) string {
		e := fmt.Sprintf("person%05d@example.org", person)
		switch rng.IntN(4) {
		case 0:
			e = strings.ToUpper(e)
		case 1:
			e = "  " + e + " "
		case 2:
			e = strings.ToUpper(e[:1]) + e[1:]
		}
		return e
	}
	var lists []truthList
	for _, m := range members {
		l := truthList{member: m, cols: cols[m]}
		row := func(id string) truthRow {
			r := truthRow{id: id, attrs: map[string]string{}}
			for _, c := range l.cols {
				r.attrs[c] = value(c)
			}
			return r
		}
		var people []int
		for p := range 5000 {
			if rng.IntN(5) < 3 {
				people = append(people, p)
			}
		}
		rng.Shuffle(len(people), func(i, j int) { people[i], people[j] = people[j], people[i] })
		for _, p := range people {
			l.rows = append(l.rows, row(messy(p)))
			switch rng.IntN(25) {
			case 0: // listed again later, with other values
				l.rows = append(l.rows, row(messy(people[rng.IntN(len(people))])))
			case 1:
				l.rows = append(l.rows, row("not-an-email"))
			case 2:
				l.rows = append(l.rows, row("@example.org"))
			}
		}
		lists = append(lists, l)
	}
	return lists
}

func (l truthList) write(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), l.member+".csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write(append([]string{"email"}, l.cols...))
	for _, r := range l.rows {
		rec := []string{r.id}
		for _, c := range l.cols {
			rec = append(rec, r.attrs[c])
		}
		w.Write(rec)
	}
	w.Flush()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// people is the list as the room should see it: each valid identifier,
// normalized, at its first row.
func (l truthList) people() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, r := range l.rows {
		id := strings.ToLower(strings.TrimSpace(r.id))
		local, domain, ok := strings.Cut(id, "@")
		if !ok || local == "" || domain == "" {
			continue
		}
		if _, seen := out[id]; !seen {
			out[id] = r.attrs
		}
	}
	return out
}

func num(s string, lo, hi float64) float64 {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		v = math.Min(math.Max(0, lo), hi)
	}
	return math.Min(math.Max(v, lo), hi)
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// truthGroup accumulates one group's expected answer.
type truthGroup struct {
	n, denom        int64
	spend, rev      float64
	cells           [4]int64
	spendHi, tierOK int64
}

func TestGroundTruth(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		members int
	}{
		{api.ModeHashed, 2}, {api.ModeBlinded, 2}, {api.ModeHashed, 3}, {api.ModeBlinded, 3},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.mode, tc.members), func(t *testing.T) {
			t.Parallel()
			groundTruth(t, tc.mode, tc.members)
		})
	}
}

func groundTruth(t *testing.T, mode string, members int) {
	names := []string{"alpha", "bravo", "charlie"}[:members]
	lists := makeTruthLists(names, 7)
	tr := startRoom(t)
	var ps []*client.Client
	for _, n := range names {
		ps = append(ps, tr.partner(n, policy.RolePartner, ""))
	}
	settings := map[string]any{
		"noise_off":          true,
		"allowed_dimensions": []string{"alpha.age_band", "alpha.region", "alpha.spend", "alpha.exposed", "bravo.conversions"},
		"domains":            map[string][]string{"alpha.age_band": truthBands},
		"bounds":             map[string][2]float64{"alpha.spend": {0, 500}, "bravo.revenue": {0, 100}},
	}
	states := tr.collab("c1", mode, settings, ps...)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, len(ps))
	for i, p := range ps {
		wg.Go(func() {
			l := lists[i]
			_, errs[i] = p.UploadCSV(ctx, client.UploadSpec{Collab: "c1", Input: l.write(t), IDColumn: "email", Kind: crypto.KindEmail,
				Columns: l.cols, State: states[p.Principal()], RowsPerPart: 700})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if mode == api.ModeBlinded {
		for i, p := range ps {
			wg.Go(func() {
				sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				defer cancel()
				_, errs[i] = p.Sync(sctx, "c1", true, 20*time.Millisecond)
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := ps[0].Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}

	// The expected answers, from the files alone.
	sets := make([]map[string]map[string]string, len(lists))
	for i, l := range lists {
		sets[i] = l.people()
	}
	byBand, byRegion := map[string]*truthGroup{}, map[string]*truthGroup{}
	get := func(m map[string]*truthGroup, k string) *truthGroup {
		if m[k] == nil {
			m[k] = &truthGroup{}
		}
		return m[k]
	}
	var overlap int64
	for id, a := range sets[0] {
		in := true
		for _, s := range sets[1:] {
			_, ok := s[id]
			in = in && ok
		}
		g := get(byBand, a["age_band"])
		g.denom++
		if !in {
			continue
		}
		overlap++
		get(byRegion, a["region"]).n++
		g.n++
		g.spend += num(a["spend"], 0, 500)
		if num(a["spend"], 0, 500) >= 100 {
			g.spendHi++
		}
		b := sets[1][id]
		g.rev += num(b["revenue"], 0, 100)
		cell := 0
		if a["exposed"] == "true" {
			cell += 2
		}
		if c, _ := strconv.Atoi(b["conversions"]); c > 0 {
			cell++
		}
		g.cells[cell]++
		if members == 3 && sets[2][id]["tier"] == "gold" {
			g.tierOK++
		}
	}
	if got := tr.matched("c1"); got != overlap {
		t.Fatalf("the room matched %d people, the files share %d", got, overlap)
	}

	query := func(q api.QuerySpec) *api.QueryResult {
		t.Helper()
		q.Version = api.QueryVersion
		res, err := ps[0].Query(ctx, "c1", q)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	check := func(what string, got any, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: room %v, truth %v", what, got, want)
		}
	}

	// Every metric by a declared dimension.
	res := query(api.QuerySpec{GroupBy: []string{"alpha.age_band"}, Metrics: []api.Metric{
		{Kind: api.MetricCount},
		{Kind: api.MetricSum, Column: "bravo.revenue"},
		{Kind: api.MetricAvg, Column: "alpha.spend"},
		{Kind: api.MetricROI, Revenue: []string{"alpha.spend", "bravo.revenue"}, Cost: &api.Cost{Value: 1000}},
		{Kind: api.MetricLift, Exposed: "alpha.exposed", Converted: "bravo.conversions"},
	}})
	check("partitions", res.Partitions, api.PartitionsDeclared)
	check("rows", len(res.Rows), len(truthBands))
	for _, row := range res.Rows {
		g := byBand[row[0].(string)]
		band := row[0].(string)
		nE, nU := g.cells[2]+g.cells[3], g.cells[0]+g.cells[1]
		rateE, rateU := float64(g.cells[3])/float64(nE), float64(g.cells[1])/float64(nU)
		check(band+" count", row[1], g.n)
		check(band+" sum(revenue)", row[2], round(g.rev, 2))
		check(band+" avg(spend)", row[3], round(g.spend/float64(g.n), 4))
		check(band+" roi", row[4], round((g.spend+g.rev)/1000, 4))
		check(band+" lift", row[7:12], []any{round(rateE/rateU-1, 4), round(rateE, 4), round(rateU, 4), nE, nU})
	}

	// Filters, categorical and numeric, and a match rate over distinct people.
	res = query(api.QuerySpec{GroupBy: []string{"alpha.age_band"}, Metrics: []api.Metric{{Kind: api.MetricCount}},
		Filters: []api.Filter{{Column: "alpha.spend", Op: "ge", Value: "100"}}})
	for _, row := range res.Rows {
		check(row[0].(string)+" count(spend >= 100)", row[1], byBand[row[0].(string)].spendHi)
	}
	res = query(api.QuerySpec{GroupBy: []string{"alpha.age_band"}, Metrics: []api.Metric{{Kind: api.MetricMatchRate, Member: "alpha"}}})
	for _, row := range res.Rows {
		g := byBand[row[0].(string)]
		check(row[0].(string)+" match rate", row[2], percentOf(g.n, g.denom))
	}
	res = query(api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}},
		Filters: []api.Filter{{Column: "alpha.region", Op: "in", Values: []string{"north", "east"}}}})
	check("count(north, east)", res.Rows[0][0], byRegion["north"].n+byRegion["east"].n)

	// A dimension without a declared domain: groups from the data.
	res = query(api.QuerySpec{GroupBy: []string{"alpha.region"}, Metrics: []api.Metric{{Kind: api.MetricCount}}})
	check("partitions by region", res.Partitions, api.PartitionsSelected)
	var regions []string
	for _, row := range res.Rows {
		regions = append(regions, row[0].(string))
		check(row[0].(string)+" count", row[1], byRegion[row[0].(string)].n)
	}
	check("regions", regions, []string{"east", "north", "south", "west"})
	if members == 3 {
		res = query(api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{"alpha.age_band"}})
		var total int64
		for _, row := range res.Rows {
			total += int64(row[1].(float64))
		}
		check("three-way overlap", total, overlap)
	}
}

func percentOf(n, d int64) string {
	pct := math.Round(100 * float64(n) / float64(d))
	if pct > 85 {
		return ">85%"
	}
	return fmt.Sprintf("%.0f%%", pct)
}
