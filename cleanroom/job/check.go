package job

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
)

// percent is a released match rate (analytics.Percent).
var percent = regexp.MustCompile(`^(>85|[0-9]|[1-7][0-9]|8[0-5])%$`)

// CheckResult reports whether res, read back from an engine, is an answer
// the plan allows releasing: the room releases an engine's rows only as
// Finish makes them, so that an engine that is wrong (a bug, a stale
// binary, a compromised worker) cannot release a group under k, a group
// value outside its declared domain, a group twice, or a cell no metric
// makes. Numbers are as ReadResult reads them (json.Number).
func (p *Plan) CheckResult(res *Result) error {
	if res.Withheld < 0 || !res.Declared && res.Withheld != 0 {
		return fmt.Errorf("job: %d groups withheld", res.Withheld)
	}
	if res.Declared && len(res.Rows)+res.Withheld != p.DeclaredGroups() {
		return fmt.Errorf("job: %d rows and %d withheld for %d declared groups", len(res.Rows), res.Withheld, p.DeclaredGroups())
	}
	cols := p.Columns()
	seen := map[string]bool{}
	for i, row := range res.Rows {
		if len(row) != len(cols) {
			return fmt.Errorf("job: row %d has %d cells for %d columns", i, len(row), len(cols))
		}
		key := make([]string, len(p.GroupBy))
		for g, gb := range p.GroupBy {
			v, ok := row[g].(string)
			if !ok || gb.Domain != nil && !slices.Contains(gb.Domain, v) {
				return fmt.Errorf("job: row %d's group is not one the plan releases", i)
			}
			key[g] = v
		}
		if k := strings.Join(key, "\x00"); seen[k] {
			return fmt.Errorf("job: row %d repeats a group", i)
		} else {
			seen[k] = true
		}
		n, ok := row[len(p.GroupBy)].(json.Number)
		if c, err := strconv.ParseInt(string(n), 10, 64); !ok || err != nil || c < int64(p.MinGroup) {
			return fmt.Errorf("job: row %d's count is not a whole number of at least k", i)
		}
		for c := len(p.GroupBy) + 1; c < len(cols); c++ {
			if err := checkCell(cols[c], row[c]); err != nil {
				return fmt.Errorf("job: row %d, column %s: %w", i, cols[c], err)
			}
		}
	}
	return nil
}

// checkCell reports whether v is a value column name holds: null, a
// finite number, or the words a match rate and a lift's verdict are.
func checkCell(name string, v any) error {
	switch v := v.(type) {
	case nil:
		return nil
	case json.Number:
		if f, err := strconv.ParseFloat(string(v), 64); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("not a finite number")
		}
		if strings.HasPrefix(name, MatchRate+"(") || name == "verdict" {
			return fmt.Errorf("a number where words go")
		}
		return nil
	case string:
		switch {
		case strings.HasPrefix(name, MatchRate+"("):
			if percent.MatchString(v) {
				return nil
			}
		case name == "verdict":
			if v == analytics.VerdictPositive || v == analytics.VerdictNegative || v == analytics.VerdictInconclusive {
				return nil
			}
		}
	}
	return fmt.Errorf("not a value this column holds")
}
