package cleanroom

// Attacks on how a query holds the other member's numbers: decoded for the
// matched rows only, as decimals in 2 or 4 bytes a row while every value
// fits exactly, else as float64s. The victim plants one odd value (many
// decimals, huge, not a number, at a bound) that decides its column's form;
// the attacker reads what the room releases about it.

import (
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// plantedValues are one person's odd values, each alone in a column of
// ordinary ones (1), so each decides its column's form: int16s, int32s at
// some scale, or float64s. clamped is what an aggregate over [0, 100] must
// count it as: the value clamped, and 0 (the bound nearest zero) for
// anything that is not a finite number.
var plantedValues = []struct{ value, form string }{
	{"50", "int16, 0 places"},
	{"50.5", "int16, 1 place"},
	{"327.67", "int16, 2 places, above the bound"},
	{"-32768", "int32 (the int16 NaN marker)"},
	{"40000", "int32, above the bound"},
	{"12.3456789", "int32, 7 places"},
	{"100.0000001", "int32, 7 places, just above the bound"},
	{"2147483647", "int32, the largest"},
	{"-2147483648", "float64 (the int32 NaN marker)"},
	{"0.1234567891", "float64, 10 places"},
	{"1e12", "float64, huge"},
	{"-1e12", "float64, hugely negative"},
	{"1e-300", "float64, tiny"},
	{"NaN", "not a number"},
	{"Inf", "infinite"},
	{"-Inf", "negatively infinite"},
	{"-0", "negative zero"},
	{"hello", "not a number"},
	{"", "empty"},
}

// plantedClamp is what an aggregate over [lo, hi] counts value as.
func plantedClamp(value string, lo, hi float64) float64 {
	v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return math.Min(math.Max(0, lo), hi)
	}
	return math.Min(math.Max(v, lo), hi)
}

// writeRawList writes a CSV with an email column and cols, one row per
// person: values(i) are row i's values of cols.
func writeRawList(t testing.TB, emails []string, cols []string, values func(i int) []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "list.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write(append([]string{"email"}, cols...))
	for i, e := range emails {
		w.Write(append([]string{e}, values(i)...))
	}
	w.Flush()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// uploadRaw uploads a list written by writeRawList as c.
func (s *attackScene) uploadRaw(c *client.Client, path string, cols []string) {
	s.t.Helper()
	if _, err := c.UploadCSV(s.ctx, client.UploadSpec{Collab: s.collab, Input: path, IDColumn: "email", Kind: crypto.KindEmail,
		Columns: cols, State: s.states[c.Principal()], RowsPerPart: 1000}); err != nil {
		s.t.Fatalf("upload as %s: %v", c.Principal(), err)
	}
}

// resultColumn is the value of the first row's column name (NaN if none).
func resultColumn(res *api.QueryResult, name string) float64 {
	for i, c := range res.Columns {
		if c == name && len(res.Rows) > 0 && i < len(res.Rows[0]) {
			if v, ok := res.Rows[0][i].(float64); ok {
				return v
			}
		}
	}
	return math.NaN()
}

// TestAttackPlantedValuesStayInBounds: the victim plants one odd value per
// column among 999 ordinary ones (1), so that each column gets its own
// form; with noise off, the attacker reads each column's sum (in the
// join's order, and read whole beside a match rate), average and a
// numeric filter's count, and an ROI over a fixed cost of 1,000 (answers are released rounded: sums to 2
// places, averages to 4). One person's contribution must be its value
// clamped to [0, 100] (0 if it is not a finite number) in every form, with
// no error, refusal or other field: the measured success of planting (a
// contribution beyond the bounds, or an answer that differs from the
// clamped one) must be 0 of len(plantedValues).
func TestAttackPlantedValuesStayInBounds(t *testing.T) {
	const n, target = 1000, 500
	cols := make([]string, len(plantedValues))
	bounds := map[string][2]float64{}
	for i := range cols {
		cols[i] = fmt.Sprintf("v%02d", i)
		bounds[atkVictim+"."+cols[i]] = [2]float64{0, 100}
	}
	allowed := make([]string, len(cols))
	for i, c := range cols {
		allowed[i] = atkVictim + "." + c
	}
	s := attackRoom(t, attackOpts{settings: map[string]any{"noise_off": true, "allowed_dimensions": allowed}, bounds: bounds, noUpload: true})
	emails := make([]string, n)
	for i := range emails {
		emails[i] = atkEmail(1000 + i)
	}
	s.uploadRaw(s.victim, writeRawList(t, emails, cols, func(i int) []string {
		out := make([]string, len(cols))
		for j := range out {
			out[j] = "1"
			if i == target {
				out[j] = plantedValues[j].value
			}
		}
		return out
	}), cols)
	s.uploadRaw(s.attacker, writeRawList(t, emails, []string{"tag"}, func(int) []string { return []string{"x"} }), []string{"tag"})
	if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
		t.Fatalf("match: %v", err)
	}
	beyond := 0
	for j, p := range plantedValues {
		name := atkVictim + "." + cols[j]
		want := float64(n-1) + plantedClamp(p.value, 0, 100)
		res, err := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricSum, Column: name}, {Kind: api.MetricAvg, Column: name},
			{Kind: api.MetricROI, Revenue: []string{name}, Cost: &api.Cost{Value: 1000}}}})
		if err != nil {
			t.Errorf("%q (%s): the query failed: %v", p.value, p.form, err)
			beyond++
			continue
		}
		sum, avg, roi := resultColumn(res, "sum("+name+")"), resultColumn(res, "avg("+name+")"), resultColumn(res, "roi")
		wantKept := float64(n - 1)
		if plantedClamp(p.value, 0, 100) >= 1 {
			wantKept = n
		}
		filtered, err := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}},
			Filters: []api.Filter{{Column: name, Op: "ge", Value: "1"}}})
		kept := math.NaN()
		if err == nil {
			kept = resultColumn(filtered, "count")
		}
		// With a match rate, the columns are read whole and projected onto
		// the join: the other path a query takes.
		whole := math.NaN()
		wholeRes, wholeErr := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricSum, Column: name},
			{Kind: api.MetricMatchRate, Member: atkVictim}}})
		if wholeErr == nil {
			whole = resultColumn(wholeRes, "sum("+name+")")
		}
		bytesPerRow := s.joinedBytesPerRow(cols[j], j)
		t.Logf("%-14q %-36s %g bytes a row: sum %v (want %v; read whole %v), avg %v, roi %v, kept by ge 1: %v (want %v)",
			p.value, p.form, bytesPerRow, sum, want, whole, avg, roi, kept, wantKept)
		// Answers are released rounded (sums to 2 places, averages to 4).
		if math.Abs(sum-want) > 0.006 || math.Abs(whole-want) > 0.006 || math.Abs(avg-want/n) > 0.00006 || math.Abs(roi-want/1000) > 0.00006 || kept != wantKept ||
			err != nil || wholeErr != nil {
			t.Errorf("%q (%s): one person's planted value moved an answer beyond its clamped contribution: sum %v (whole %v) want %v, avg %v, roi %v, count %v want %v, %v, %v",
				p.value, p.form, sum, whole, want, avg, roi, kept, wantKept, err, wholeErr)
			beyond++
		}
	}
	t.Logf("planted values answered beyond their clamped contribution: %s (bound 0)", pct(beyond, len(plantedValues)))
}

// joinedBytesPerRow is how many bytes a row the room holds the victim's
// column index in, decoded in the join's order (0 if not cached): 2 or 4 for
// decimals, 8 for float64s.
func (s *attackScene) joinedBytesPerRow(_ string, index int) float64 {
	r := s.tr.room
	c, err := r.sharedCollab(s.collab)
	if err != nil || c.Match == nil {
		return 0
	}
	it, ok := r.cache.lookup(joinedKey(c, c.Datasets[atkVictim].Upload, index))
	if !ok || it.col == nil || it.col.Len() == 0 {
		return 0
	}
	return float64(it.col.Bytes()) / float64(it.col.Len())
}

// TestAttackPlantedValueNoisy: noise on, ε = 0.1 a query. Each of 40
// targets per column is in a group of 100 of the attacker's own column;
// the victim's value of each target is 0 or, for a secret bit, a value far
// beyond the bound 100 in a form of its own: 30000 (int16s, column a) or
// 1e300 and other float-only values (column b). The attacker guesses the
// bit from its group's noisy sum. A clamped person adds at most 100, a
// change of value is two neighbouring steps, so the accuracy is bounded by
// e^0.2/(1+e^0.2) ≈ 55% plus three binomial deviations over 80 guesses.
// Had any form skipped the clamp, 30000 against noise of scale 2,000 would
// read nearly every bit.
func TestAttackPlantedValueNoisy(t *testing.T) {
	const guesses = 2 * plantedGroups // two columns
	bound := dpGuessBound(0.2, guesses)
	holdToBound(t, "(one person's planted value read through the noise)", bound, func(int) []attackRate {
		return []attackRate{plantedValueNoisy(t, bound)}
	})
}

// plantedGroups is how many groups, one target each, a column of the
// planted-value attack has.
const plantedGroups = 40

// plantedValueNoisy runs the attack of TestAttackPlantedValueNoisy on a new
// scene and returns the bits it read.
func plantedValueNoisy(t *testing.T, bound float64) attackRate {
	const groups, per = plantedGroups, 100
	n := groups * per
	wild := map[string][]string{"a": {"30000"}, "b": {"1e300", "12345.678901234", "4294967296", "100.00000000001"}}
	rng := rand.New(rand.NewPCG(7, 11))
	bits := map[string][]bool{}
	for col := range wild {
		for range groups {
			bits[col] = append(bits[col], rng.IntN(2) == 1)
		}
	}
	settings := map[string]any{"allowed_dimensions": []string{atkAttacker + ".grp"},
		"domains": map[string][]string{atkAttacker + ".grp": groupNames(groups)}}
	bounds := map[string][2]float64{atkVictim + ".a": {0, 100}, atkVictim + ".b": {0, 100}}
	s := attackRoom(t, attackOpts{settings: settings, bounds: bounds, noUpload: true})
	emails := make([]string, n)
	for i := range emails {
		emails[i] = atkEmail(10_000 + i)
	}
	s.uploadRaw(s.victim, writeRawList(t, emails, []string{"a", "b"}, func(i int) []string {
		out := []string{"0", "0"}
		if g := i / per; i%per == 0 {
			for j, col := range []string{"a", "b"} {
				if bits[col][g] {
					out[j] = wild[col][g%len(wild[col])]
				}
			}
		}
		return out
	}), []string{"a", "b"})
	s.uploadRaw(s.attacker, writeRawList(t, emails, []string{"grp"}, func(i int) []string { return []string{groupNames(groups)[i/per]} }), []string{"grp"})
	if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
		t.Fatalf("match: %v", err)
	}
	right, guesses := 0, 0
	for _, col := range []string{"a", "b"} {
		name := atkVictim + "." + col
		res, err := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricSum, Column: name}},
			GroupBy: []string{atkAttacker + ".grp"}, Epsilon: 0.1})
		if err != nil {
			t.Fatalf("sum of %s: %v", name, err)
		}
		sums := map[string]float64{}
		for _, row := range res.Rows {
			if g, ok := row[0].(string); ok && len(row) > 2 {
				sums[g], _ = row[2].(float64)
			}
		}
		colRight := 0
		for g, name := range groupNames(groups) {
			sum, released := sums[name]
			guess := released && sum > 50 // a withheld group: the prior, 0
			if guess == bits[col][g] {
				colRight++
			}
		}
		t.Logf("column %s (%d bytes a row): %s of the planted bits read, %d of %d groups released", col,
			int(s.joinedBytesPerRow(col, map[string]int{"a": 0, "b": 1}[col])), pct(colRight, groups), len(sums), groups)
		right += colRight
		guesses += groups
	}
	t.Logf("planted values read through the noise: %s (bound %.1f%%)", pct(right, guesses), 100*bound)
	return attackRate{name: "planted values read", right: right, trials: guesses}
}

// groupNames are the values g00, g01, ... of the attacker's group column.
func groupNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("g%02d", i)
	}
	return out
}

// TestAttackColumnFormTiming: does a query's latency tell whether one
// person of the other list holds a value that makes its column float64s
// (8 bytes a row) rather than int16s (2)? Two columns of the victim over a
// join of 20,000 differ in that one person's value only (7 against
// 1.23456789012); the attacker times alternate sums of each (noise off, so
// that only time is measured) and guesses a query's column from its
// latency against the midpoint of the two medians. It reports the medians,
// their spreads, the effect in spreads, and the guess's accuracy over the
// queries, which must stay within what chance allows (50% plus three
// binomial deviations): the room's own jitter (a signed token, a policy
// decision, a committed audit entry) must drown the difference.
func TestAttackColumnFormTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("times 90 queries")
	}
	if atkRace {
		// The race detector multiplies the cost of every memory access, so
		// it times a room no member meets; .ci/run runs this test without it.
		t.Skip("times queries: run without the race detector")
	}
	holdToBound(t, "(the form of the other member's column, set by one person's value, told from a query's latency)", timingBound(2*formRounds), func(int) []attackRate {
		return []attackRate{columnFormTiming(t)}
	})
}

// formRounds is how many times the column form attack times each column.
const formRounds = 45 // 92 queries: a member's share of the day's 200

// columnFormTiming runs the attack of TestAttackColumnFormTiming on a new
// scene and returns its guesses.
func columnFormTiming(t *testing.T) attackRate {
	const n, target, rounds = 20_000, 777, formRounds
	bounds := map[string][2]float64{atkVictim + ".a": {0, 100}, atkVictim + ".b": {0, 100}}
	s := attackRoom(t, attackOpts{settings: map[string]any{"noise_off": true}, bounds: bounds, noUpload: true})
	emails := make([]string, n)
	for i := range emails {
		emails[i] = atkEmail(10_000 + i)
	}
	s.uploadRaw(s.victim, writeRawList(t, emails, []string{"a", "b"}, func(i int) []string {
		v := strconv.Itoa(i % 100)
		if i == target {
			return []string{"7", "1.23456789012"}
		}
		return []string{v, v}
	}), []string{"a", "b"})
	s.uploadRaw(s.attacker, writeRawList(t, emails, []string{"tag"}, func(int) []string { return []string{"x"} }), []string{"tag"})
	if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
		t.Fatalf("match: %v", err)
	}
	sum := func(col string) time.Duration {
		began := time.Now()
		if _, err := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricSum, Column: atkVictim + "." + col}}}); err != nil {
			t.Fatalf("sum of %s: %v", col, err)
		}
		return time.Since(began)
	}
	sum("a") // the columns decoded and kept: every timed query reads them
	sum("b")
	times := map[string][]time.Duration{}
	for range rounds {
		for _, col := range []string{"a", "b"} {
			times[col] = append(times[col], sum(col))
		}
	}
	ma, ia := medianIQR(times["a"])
	mb, ib := medianIQR(times["b"])
	t.Logf("int16s (%g bytes a row): median %v, IQR %v; float64s (%g bytes a row): median %v, IQR %v",
		s.joinedBytesPerRow("a", 0), ma, ia, s.joinedBytesPerRow("b", 1), mb, ib)
	mid := (ma + mb) / 2
	right := 0
	for _, d := range times["a"] {
		if (d < mid) == (ma < mb) {
			right++
		}
	}
	for _, d := range times["b"] {
		if (d >= mid) == (ma < mb) {
			right++
		}
	}
	spread := max(ia, ib, time.Microsecond)
	total := 2 * rounds
	t.Logf("difference of medians %v = %.2f IQRs; a query's column told from its latency: %s (chance bound %.1f%%)",
		mb-ma, float64(mb-ma)/float64(spread), pct(right, total), 100*timingBound(total))
	return attackRate{name: "a query's column", right: right, trials: total}
}

// medianIQR is the median of ds and their interquartile range.
func medianIQR(ds []time.Duration) (median, iqr time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[3*len(s)/4] - s[len(s)/4]
}

// TestAttackPresenceTiming: does a query's latency tell whether one person
// is in the other member's list? The attacker isolates a person of its own
// list with a filter on its own near-unique column and asks a count and a
// sum of the victim's revenue (ε = 0.01, noise on), alternately for a
// person the victim holds and one it does not, and guesses presence from
// the latency against the midpoint of the two medians. Its accuracy must
// stay within chance (50% plus three binomial deviations).
func TestAttackPresenceTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("times 90 queries")
	}
	if atkRace {
		// The race detector multiplies the cost of every memory access, so
		// it times a room no member meets; .ci/run runs this test without it.
		t.Skip("times queries: run without the race detector")
	}
	holdToBound(t, "(whether the victim holds one person, told from a query's latency)", timingBound(2*presenceRounds), func(int) []attackRate {
		return []attackRate{presenceTiming(t)}
	})
}

// presenceRounds is how many times the presence timing attack asks about
// each of its two people.
const presenceRounds = 45 // 90 queries: within a member's share of the day's 200

// presenceTiming runs the attack of TestAttackPresenceTiming on a new
// scene and returns its guesses.
func presenceTiming(t *testing.T) attackRate {
	const rounds = presenceRounds
	s := attackRoom(t, attackOpts{settings: map[string]any{"allowed_dimensions": []string{atkAttacker + ".customer_no"}},
		bounds: map[string][2]float64{atkVictim + ".revenue": {atkRevenueLo, atkRevenueHi}}})
	in, out := atkTargets(1)
	ask := func(id int) time.Duration {
		began := time.Now()
		if _, err := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount},
			{Kind: api.MetricSum, Column: atkVictim + ".revenue"}}, Filters: []api.Filter{isolate(id)}, Epsilon: 0.01}); err != nil {
			t.Fatalf("query: %v", err)
		}
		return time.Since(began)
	}
	var present, absent []time.Duration
	for range rounds {
		present = append(present, ask(in[0]))
		absent = append(absent, ask(out[0]))
	}
	right, mp, ma := midpointAccuracy(present, absent)
	_, ip := medianIQR(present)
	_, ia := medianIQR(absent)
	total := 2 * rounds
	t.Logf("present: median %v (IQR %v); absent: median %v (IQR %v); difference %.2f IQRs; presence told from latency: %s (chance bound %.1f%%)",
		mp, ip, ma, ia, float64(mp-ma)/float64(max(ip, ia, time.Microsecond)), pct(right, total), 100*timingBound(total))
	return attackRate{name: "presence", right: right, trials: total}
}
