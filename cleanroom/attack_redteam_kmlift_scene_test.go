package cleanroom

// The scene of the membership attacks through k-means, lift and ROI
// (attack_redteam_kmlift_test.go): the attacker's list is people [0, 2000)
// with crafted columns of its own (a flag, an extreme value, a cost only
// some people have, a value that is not a number, a constant), the
// victim's is [1000, 3000) with its default columns.

import (
	"strconv"
	"testing"
)

// The attacker's crafted columns.
var kmAttackerCols = []string{"customer_no", "flag", "x", "cost", "weird", "flat", "seg"}

var kmSegs = []string{"a", "b", "c", "d"}

// kmSettings are the settings of the scene: the attacker's crafted columns
// and the victim's dimensions allowed, domains declared for the small
// ones, and bounds for every number.
func kmSettings() (map[string]any, map[string][2]float64) {
	v, a := atkVictim+".", atkAttacker+"."
	settings := map[string]any{
		"allowed_dimensions": []string{a + "customer_no", a + "flag", a + "seg", a + "x", a + "weird", v + "plan", v + "region", v + "converted"},
		"domains": map[string][]string{a + "seg": kmSegs, a + "flag": {"0", "1"}, v + "plan": atkPlans,
			v + "region": atkRegions, v + "converted": {"0", "1"}},
	}
	bounds := map[string][2]float64{
		a + "x": {0, 100}, a + "cost": {0, 1e6}, a + "weird": {0, 1}, a + "flat": {5, 5}, a + "flag": {0, 1},
		v + "salary": {0, 250_000}, v + "revenue": {0, 1000}, v + "score": {0, 100},
	}
	return settings, bounds
}

// kmAttackerValues are person id's values of the attacker's crafted
// columns; marked people (the targets) get the extreme ones.
func kmAttackerValues(id int, marked bool) []string {
	if marked {
		return []string{atkValue("customer_no", id), "1", "1e308", "1000000", "NaN", "-7", kmSegs[id%4]}
	}
	return []string{atkValue("customer_no", id), "0", strconv.Itoa(id % 100), "0", "1", strconv.Itoa(id % 9), kmSegs[id%4]}
}

// kmScene sets up the scene: victims holds the victim's people, the
// attacker's list is [0, 2000) with marked people given extreme values.
func kmScene(t *testing.T, victims []int, marked map[int]bool) *attackScene {
	t.Helper()
	settings, bounds := kmSettings()
	s := attackRoom(t, attackOpts{settings: settings, bounds: bounds, noUpload: true})
	if err := s.upload(s.victim, atkRows(victims), atkVictimCols); err != nil {
		t.Fatalf("the victim's upload: %v", err)
	}
	ids := span(0, 2000)
	emails := make([]string, len(ids))
	for i, id := range ids {
		emails[i] = atkEmail(id)
	}
	path := writeRawList(t, emails, kmAttackerCols, func(i int) []string { return kmAttackerValues(ids[i], marked[ids[i]]) })
	s.uploadRaw(s.attacker, path, kmAttackerCols)
	if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
		t.Fatalf("match: %v", err)
	}
	return s
}
