package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Settings are everything a collaboration's members agree on, in one
// document: the constraints (which can only tighten the room's defaults),
// each member's own requirements, the dimensions queries may group and
// filter by, the domains that make a dimension's groups public, the bounds of
// numeric columns, whether noise is off, and the expiry. Zero values are
// unset. The room decodes it strictly (DecodeSettings) and refuses anything
// looser than its defaults (Check), naming the key.
type Settings struct {
	Constraints
	// Members are each member's own requirements, by member id.
	Members map[string]Constraints `json:"members,omitempty"`
	// Domains declares, for a dimension ("member.column"), every value its
	// groups may take. A query grouped only by columns with domains has
	// public partitions: every combination is evaluated, empty ones
	// included, and released on its noisy count alone.
	Domains map[string][]string `json:"domains,omitempty"`
	// Bounds declares the range of a numeric column ("member.column"):
	// values are clamped to it and it sets the noise of sums, averages,
	// ROI and k-means, and it allows numeric filters on the column.
	Bounds map[string][2]float64 `json:"bounds,omitempty"`
	// NoiseOff releases exact answers. Every member sees it, in capitals,
	// when it accepts the collaboration.
	NoiseOff bool `json:"noise_off,omitempty"`
	// ExpiresInHours ends the collaboration's data actions that long after
	// its creation (0: no expiry).
	ExpiresInHours int `json:"expires_in_hours,omitempty"`
	// PooledBudget lets every member spend the whole budget and the whole
	// daily query limit, first come, first served. By default each member
	// has an equal share of both, so that no member can spend another's.
	PooledBudget bool `json:"pooled_budget,omitempty"`
	// Activation, when set, lets the members it names receive audiences
	// (see Activation): exact, outside the privacy budget, and shown to
	// every member when it accepts.
	Activation *Activation `json:"activation,omitempty"`
}

// Limits of a settings document, beyond the defaults it may only tighten.
const (
	// MinEpsilonFloor is the smallest per-query epsilon any room or
	// collaboration may allow: below it, a query's noise dwarfs every
	// count, and the ledger's integer unit (one micro-epsilon) would be
	// too coarse to charge it exactly.
	MinEpsilonFloor = 0.001
	// MaxBoundMagnitude bounds a declared column's range. Google's DP
	// library samples its noise exactly (geometric sampling at a power of
	// two granularity) only while sensitivity/epsilon stays far from
	// float64's limits; with |bound| ≤ 1e9 and epsilon ≥ MinEpsilonFloor
	// split among at most 16 statistics, the noise scale stays below 1e14
	// and sums over 1e8 people below 2^63.
	MaxBoundMagnitude = 1e9
	// MinBoundMagnitude is the least magnitude the larger end of a
	// declared range may have, unless the range is [0, 0]: the library
	// samples noise at a power-of-two granularity of sensitivity/epsilon,
	// and a vanishing sensitivity makes that granularity underflow and its
	// sampler loop for ever.
	MinBoundMagnitude = 1e-6
	// MaxDomainValues bounds one declared domain; MaxDomainValueLen one of
	// its values (the upload's limit on a value).
	MaxDomainValues   = 1000
	MaxDomainValueLen = 256
	// MaxExpiresInHours is ten years, far below a time.Duration's limit.
	MaxExpiresInHours = 87600
	// MaxCount bounds every count a setting names (k, list sizes, upload
	// differences, daily limits): a list holds fewer than 2^32 rows, so a
	// larger minimum is no stricter, and every count stays an exact
	// integer wherever it is read.
	MaxCount = 1 << 32
)

var columnName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// DecodeSettings decodes a settings document strictly: an unknown key, a
// key written twice in one object, a key in another case than its own, a
// value of the wrong type or anything after the document is an error naming
// what is wrong. An empty document is the zero Settings.
func DecodeSettings(b []byte) (Settings, error) {
	var s Settings
	if len(bytes.TrimSpace(b)) == 0 {
		return s, nil
	}
	if err := checkKeys(b); err != nil {
		return Settings{}, err
	}
	if err := checkPairs(b); err != nil {
		return Settings{}, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&s); err != nil {
		return Settings{}, settingsDecodeError(err)
	}
	if _, err := d.Token(); err != io.EOF {
		return Settings{}, errors.New("settings: the document must be one JSON object")
	}
	return s, nil
}

// settingKey is what every key of a settings document looks like: the
// settings' own names, members' names and member.column names.
var settingKey = regexp.MustCompile(`^[a-z0-9._-]{1,128}$`)

// checkKeys refuses a document whose objects repeat a key or use one
// outside settingKey. encoding/json matches keys without regard to case
// (and folds some non-ASCII letters) and keeps the last of repeated keys,
// so such a document would mean one thing to the room and may mean another
// to the member who reads it with another tool before accepting it.
func checkKeys(b []byte) error {
	type frame struct {
		keys    map[string]bool // nil for an array
		wantKey bool
	}
	var stack []*frame
	// valueDone marks the end of a value in the enclosing object, whose
	// next token is a key.
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].wantKey = true
		}
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return settingsDecodeError(err)
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{keys: map[string]bool{}, wantKey: true})
			case '[':
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			if n := len(stack); n > 0 && stack[n-1].wantKey {
				f := stack[n-1]
				if !settingKey.MatchString(t) {
					return fmt.Errorf("settings: unknown key %q", t)
				}
				if f.keys[t] {
					return fmt.Errorf("settings: the key %q is written twice in one object", t)
				}
				f.keys[t], f.wantKey = true, false
				continue
			}
			valueDone()
		case json.Number:
			// A number written below float64's range reads as 0, which
			// a setting takes for unset: the room's value, the loosest.
			if f, err := strconv.ParseFloat(t.String(), 64); err == nil && f == 0 && strings.ContainsAny(mantissa(t.String()), "123456789") {
				return fmt.Errorf("settings: the number %s is too small to be told from 0, which means the room's value", t)
			}
			valueDone()
		default:
			valueDone()
		}
	}
}

// mantissa is a JSON number's digits before its exponent.
func mantissa(n string) string {
	if i := strings.IndexAny(n, "eE"); i >= 0 {
		return n[:i]
	}
	return n
}

// checkPairs refuses a bounds entry that is not a pair: encoding/json
// fills a [2]float64 from a list of any length, dropping what is past the
// second number and taking what is missing for 0.
func checkPairs(b []byte) error {
	var raw struct {
		Bounds map[string][]json.RawMessage `json:"bounds"`
	}
	// The first value only: what follows it is DecodeSettings' to refuse.
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&raw); err != nil {
		return settingsDecodeError(err)
	}
	for name, pair := range raw.Bounds {
		if len(pair) != 2 {
			return fmt.Errorf("settings: bounds.%s: [low, high], two numbers", name)
		}
	}
	return nil
}

func settingsDecodeError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("settings: %s must be %s", te.Field, jsonType(te.Type.Kind().String()))
	case errors.As(err, &se):
		return fmt.Errorf("settings: not valid JSON at byte %d", se.Offset)
	}
	msg := err.Error()
	if k, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fmt.Errorf("settings: unknown key %s", k)
	}
	return errors.New("settings: not a JSON object of settings")
}

func jsonType(kind string) string {
	switch kind {
	case "int", "int64", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	case "slice", "array":
		return "a list"
	case "map", "struct":
		return "an object"
	}
	return "of another type"
}

// Canonical is the settings' canonical JSON (compact, keys in a fixed order):
// what the room stores, shows and digests.
func (s Settings) Canonical() (json.RawMessage, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	return b, nil
}

// Check refuses settings that are inconsistent, out of range, or looser than
// the room's defaults, with an error naming the key. members are the
// collaboration's members: every "member.column" must name one of them.
func (s Settings) Check(defaults Constraints, members []string) error {
	if err := s.Constraints.check("", defaults, members); err != nil {
		return err
	}
	for m, c := range s.Members {
		if !slices.Contains(members, m) {
			return fmt.Errorf("settings: members.%s: not a member of the collaboration", m)
		}
		if err := c.check("members."+m+".", defaults, members); err != nil {
			return err
		}
	}
	for name, values := range s.Domains {
		if err := checkQualified("domains", name, members); err != nil {
			return err
		}
		if len(values) == 0 || len(values) > MaxDomainValues {
			return fmt.Errorf("settings: domains.%s: a domain lists 1 to %d values", name, MaxDomainValues)
		}
		seen := make(map[string]bool, len(values))
		for _, v := range values {
			if len(v) > MaxDomainValueLen || seen[v] {
				return fmt.Errorf("settings: domains.%s: values are distinct and at most %d bytes", name, MaxDomainValueLen)
			}
			seen[v] = true
		}
	}
	for name, b := range s.Bounds {
		if err := checkQualified("bounds", name, members); err != nil {
			return err
		}
		if !(math.Abs(b[0]) <= MaxBoundMagnitude && math.Abs(b[1]) <= MaxBoundMagnitude && b[0] <= b[1]) {
			return fmt.Errorf("settings: bounds.%s: [low, high] with low <= high, both within ±%g", name, MaxBoundMagnitude)
		}
		if m := max(math.Abs(b[0]), math.Abs(b[1])); m != 0 && m < MinBoundMagnitude {
			return fmt.Errorf("settings: bounds.%s: the larger end must be at least %g in magnitude (or the range [0, 0])", name, MinBoundMagnitude)
		}
	}
	if s.Activation != nil {
		if err := s.Activation.check(members); err != nil {
			return err
		}
	}
	if s.ExpiresInHours < 0 || s.ExpiresInHours > MaxExpiresInHours {
		return fmt.Errorf("settings: expires_in_hours: 0 (no expiry) to %d", MaxExpiresInHours)
	}
	return nil
}

// checkQualified checks a "member.column" name.
func checkQualified(key, name string, members []string) error {
	m, col, ok := strings.Cut(name, ".")
	if !ok || !slices.Contains(members, m) || !columnName.MatchString(col) {
		return fmt.Errorf("settings: %s: %q is not member.column for a member of the collaboration", key, name)
	}
	return nil
}

// checkCounts refuses counts outside 0 to MaxCount. prefix names where
// they are in the document.
func (c Constraints) checkCounts(prefix string) error {
	for _, x := range []struct {
		key string
		v   int64
	}{
		{"min_group_size", int64(c.MinGroupSize)}, {"min_list_size", c.MinListSize},
		{"min_upload_difference", c.MinUploadDifference}, {"max_list_size", c.MaxListSize},
		{"max_queries_per_day", int64(c.MaxQueriesPerDay)}, {"max_matches_per_day", int64(c.MaxMatchesPerDay)},
		{"max_uploads_per_day", int64(c.MaxUploadsPerDay)},
	} {
		if x.v < 0 || x.v > MaxCount {
			return fmt.Errorf("settings: %s%s: 0 (the room's) to %d", prefix, x.key, int64(MaxCount))
		}
	}
	return nil
}

// check refuses constraints out of range or looser than defaults. prefix
// names where they are in the document.
func (c Constraints) check(prefix string, d Constraints, members []string) error {
	looser := func(key string, v, def any) error {
		return fmt.Errorf("settings: %s%s: %v is looser than the room's %v", prefix, key, v, def)
	}
	if err := c.checkCounts(prefix); err != nil {
		return err
	}
	type minimum struct {
		key    string
		v, def int64
	}
	for _, x := range []minimum{
		{"min_group_size", int64(c.MinGroupSize), int64(d.MinGroupSize)},
		{"min_list_size", c.MinListSize, d.MinListSize},
		{"min_upload_difference", c.MinUploadDifference, d.MinUploadDifference},
	} {
		if x.v != 0 && x.v < x.def {
			return looser(x.key, x.v, x.def)
		}
	}
	for _, x := range []minimum{
		{"max_list_size", c.MaxListSize, d.MaxListSize},
		{"max_queries_per_day", int64(c.MaxQueriesPerDay), int64(d.MaxQueriesPerDay)},
		{"max_matches_per_day", int64(c.MaxMatchesPerDay), int64(d.MaxMatchesPerDay)},
		{"max_uploads_per_day", int64(c.MaxUploadsPerDay), int64(d.MaxUploadsPerDay)},
	} {
		if x.v != 0 && x.def != 0 && x.v > x.def {
			return looser(x.key, x.v, x.def)
		}
	}
	type fmax struct {
		key    string
		v, def float64
	}
	for _, x := range []fmax{
		{"epsilon_per_query", c.EpsilonPerQuery, d.EpsilonPerQuery},
		{"epsilon_budget", c.EpsilonBudget, d.EpsilonBudget},
		{"epsilon_match", c.EpsilonMatch, d.EpsilonMatch},
		{"delta_per_query", c.DeltaPerQuery, d.DeltaPerQuery},
		{"delta_budget", c.DeltaBudget, d.DeltaBudget},
	} {
		if math.IsNaN(x.v) || math.IsInf(x.v, 0) || x.v < 0 {
			return fmt.Errorf("settings: %s%s: must be a finite, non-negative number", prefix, x.key)
		}
		if x.v != 0 && x.v > x.def {
			return looser(x.key, x.v, x.def)
		}
	}
	if e := c.EpsilonMinPerQuery; e != 0 {
		if math.IsNaN(e) || math.IsInf(e, 0) || e < MinEpsilonFloor {
			return fmt.Errorf("settings: %sepsilon_min_per_query: at least %g", prefix, MinEpsilonFloor)
		}
		if e < d.EpsilonMinPerQuery {
			return looser("epsilon_min_per_query", e, d.EpsilonMinPerQuery)
		}
	}
	if e := c.EpsilonMatch; e != 0 && e < MinEpsilonFloor {
		return fmt.Errorf("settings: %sepsilon_match: at least %g", prefix, MinEpsilonFloor)
	}
	if c.AllowedMetrics != nil {
		for _, m := range c.AllowedMetrics {
			if !slices.Contains(d.AllowedMetrics, m) {
				return fmt.Errorf("settings: %sallowed_metrics: %q is not a metric the room allows (%s)", prefix, m, strings.Join(d.AllowedMetrics, ", "))
			}
		}
	}
	for _, dim := range c.AllowedDimensions {
		if err := checkQualified(prefix+"allowed_dimensions", dim, members); err != nil {
			return err
		}
	}
	for _, col := range c.NeverOutputColumns {
		name := col
		if m, rest, ok := strings.Cut(col, "."); ok {
			if !slices.Contains(members, m) {
				return fmt.Errorf("settings: %snever_output_columns: %q names no member (write column or member.column)", prefix, col)
			}
			name = rest
		}
		if !columnName.MatchString(name) {
			return fmt.Errorf("settings: %snever_output_columns: %q is not a column name", prefix, col)
		}
	}
	return nil
}

// NeverOutput reports whether member's column is one the constraints never
// let out: listed bare (that column of any member) or as member.column.
func (c Constraints) NeverOutput(member, column string) bool {
	for _, n := range c.NeverOutputColumns {
		if n == column || n == member+"."+column {
			return true
		}
	}
	return false
}

// DeclaredColumns are the member columns ("member.column") the settings
// name, which every member agreed to: the allowed dimensions (the
// collaboration's and each member's own) and the columns with a declared
// domain or bounds.
func (s Settings) DeclaredColumns() map[string]bool {
	out := map[string]bool{}
	for _, d := range s.AllowedDimensions {
		out[d] = true
	}
	for _, c := range s.Members {
		for _, d := range c.AllowedDimensions {
			out[d] = true
		}
	}
	for d := range s.Domains {
		out[d] = true
	}
	for d := range s.Bounds {
		out[d] = true
	}
	return out
}
