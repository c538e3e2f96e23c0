package cleanroom

// The people of the attack suite and their attributes: the ground truth
// every attack is scored against. Each attribute is a function of the
// person alone, so a test knows the right answer for every target whichever
// list holds it.

import (
	"fmt"
	"strconv"
	"testing"
)

// People: the attacker's customers are ids [0, 2000), the victim's
// [1000, 3000), so the overlap is [1000, 2000). Ids from 5000 up are
// nobody's customers.
var (
	atkAttackerIDs = span(0, 2000)
	atkVictimIDs   = span(1000, 3000)
)

// Columns each member uploads by default.
var (
	atkAttackerCols = []string{"customer_no", "age_band"}
	atkVictimCols   = []string{"plan", "salary", "converted", "region", "score", "revenue"}
)

// Domains of the victim's columns, as the tests know them.
var (
	atkPlans   = []string{"free", "solo", "team", "enterprise"}
	atkRegions = []string{"north", "south", "east", "west"}
)

// Bounds of the victim's numeric columns.
const (
	atkSalaryLo, atkSalaryHi   = 20_000, 200_000 // in steps of 1,000
	atkScoreLo, atkScoreHi     = 0, 100          // a score is one or the other
	atkRevenueLo, atkRevenueHi = 0, 1000
)

// atkMix is splitmix64: person id and salt to a well-mixed number, so that
// each attribute is independent of the others and of the id's range.
func atkMix(id int, salt uint64) uint64 {
	z := uint64(id)*0x9e3779b97f4a7c15 + salt*0xbf58476d1ce4e5b9
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// atkValue is person id's value of a column, the same in whichever list
// holds it: the ground truth.
func atkValue(col string, id int) string {
	switch col {
	case "customer_no", "customer_id":
		return fmt.Sprintf("C%06d", id)
	case "age_band":
		_, band := person(id)
		return band
	case "plan":
		return atkPlans[atkMix(id, 1)%uint64(len(atkPlans))]
	case "salary":
		return strconv.Itoa(atkSalaryLo + 1000*int(atkMix(id, 2)%((atkSalaryHi-atkSalaryLo)/1000+1)))
	case "converted":
		return strconv.Itoa(int(atkMix(id, 3) % 2))
	case "region":
		return atkRegions[atkMix(id, 4)%uint64(len(atkRegions))]
	case "score":
		if atkMix(id, 5)%2 == 0 {
			return strconv.Itoa(atkScoreLo)
		}
		return strconv.Itoa(atkScoreHi)
	case "revenue":
		return strconv.FormatFloat(float64(atkMix(id, 6)%100_000)/100, 'f', 2, 64)
	}
	panic("atkValue: unknown column " + col)
}

// atkEmail is the identifier of person id.
func atkEmail(id int) string {
	email, _ := person(id)
	return email
}

// atkJunk is a made-up identifier that is nobody's customer: attackers pad
// their lists with these.
func atkJunk(tag string, i int) atkRow {
	return atkRow{fmt.Sprintf("junk-%s-%d@attacker.example", tag, i), 0}
}

// atkRow is one row of a list: an identifier, and the person whose
// attributes the row carries (for junk rows, any).
type atkRow struct {
	email string
	id    int
}

func atkRows(ids []int) []atkRow {
	out := make([]atkRow, len(ids))
	for i, id := range ids {
		out[i] = atkRow{atkEmail(id), id}
	}
	return out
}

// writeAttackList writes a CSV of rows with the columns' true values.
func writeAttackList(t testing.TB, rows []atkRow, cols []string) string {
	t.Helper()
	emails := make([]string, len(rows))
	for i, r := range rows {
		emails[i] = r.email
	}
	return writeRawList(t, emails, cols, func(i int) []string {
		rec := make([]string, len(cols))
		for j, c := range cols {
			rec[j] = atkValue(c, rows[i].id)
		}
		return rec
	})
}
