package console

import (
	"strings"
	"testing"
	"unicode"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestAttackRedteamChartLabelParts: a chart's label joins the members'
// values of a group in one line ("attacker's value · victim's value"), and
// the attacker chooses its values. Right-to-left letters in its value
// would make the bidi algorithm draw the victim's "25-34" as "34-25" (the
// digits after Arabic text become Arabic numbers, the hyphen neutral); a
// long value padded with invisible characters would push the victim's
// value out of a label cut to its first characters, leaving a forged one
// ("north · 25-34…") of the attacker's making.
//
// The property: every member's value is a part of its own, isolated (FSI
// … PDI, so the algorithm lays it out apart from its neighbours), with no
// direction control or invisible character inside, and shortened on its
// own, so that the victim's value is there in full.
func TestAttackRedteamChartLabelParts(t *testing.T) {
	victims := []string{"18-24", "25-34", "35-44"}
	for _, attacker := range []string{"عرب", "north · 25-34" + strings.Repeat("\u200b", 10), strings.Repeat("w", 200), "x\u202e", "\u2069\u2069y"} {
		r := &api.QueryResult{Columns: []string{brandA + ".tag", brandB + ".band", "count"}}
		for _, v := range victims {
			r.Rows = append(r.Rows, []any{attacker, v, 120.0})
		}
		for i, label := range segments(r, 2) {
			parts := strings.Split(label, " · ")
			last := parts[len(parts)-1]
			if want := "\u2068" + victims[i] + "\u2069"; last != want {
				t.Errorf("attacker's value %q: the label %q ends in %q, want the victim's value isolated, %q", attacker, label, last, want)
			}
			first := strings.TrimSuffix(label, " · "+last)
			inner, ok := strings.CutPrefix(first, "\u2068")
			if inner, ok = strings.CutSuffix(inner, "\u2069"); !ok {
				t.Errorf("attacker's value %q: its part %q is not isolated", attacker, first)
				continue
			}
			if strings.ContainsFunc(inner, func(c rune) bool { return unicode.Is(unicode.Bidi_Control, c) || unicode.Is(unicode.Cf, c) }) {
				t.Errorf("attacker's value %q: its part %q keeps a direction control or an invisible character", attacker, inner)
			}
			if n := len([]rune(inner)); n > labelRunes/2 {
				t.Errorf("attacker's value %q: its part is %d characters, more than its share of the label", attacker, n)
			}
		}
	}
}
