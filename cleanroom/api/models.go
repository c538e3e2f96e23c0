package api

import "encoding/json"

// ModelSpecVersion is the version a model spec must name.
const ModelSpecVersion = "cleanroom.dev/model-spec/v1"

// DefaultModelEpsilon is what a model spec that names no epsilon spends:
// the room's largest epsilon for one query.
const DefaultModelEpsilon = 0.5

// ModelSpec asks the room to train a lookalike model on the matched
// people (cleanroom.dev/model-spec/v1):
//
//	{"version": "cleanroom.dev/model-spec/v1",
//	 "label": {"column": "pulsefit.conversions"},
//	 "features": ["coursely.age_band", "coursely.region", "coursely.revenue"],
//	 "epsilon": 0.5}
//
// The label is a column of any member that is an allowed dimension (the
// leaves count the people whose label is true, as a filtered count would):
// true when the value is true, yes or a number above 0, or, with op, when it
// compares true as a query filter would ({"column": "pulsefit.revenue",
// "op": "ge", "value": "50"}; numeric ops need the column's bounds). The
// features are columns of the caller's own list, each an allowed dimension
// with a declared domain (categorical) or bounds (numeric): the caller
// applies the model to its list on its own machine (package
// cleanroom/model). Trees (default 10), depth (default half the features,
// at least 2), holdout (the share of people held out to measure accuracy,
// default 0.2; 0 for none) and epsilon (default DefaultModelEpsilon, of
// which a tenth measures the accuracy) are optional.
type ModelSpec struct {
	Version  string   `json:"version"`
	Label    Filter   `json:"label"`
	Features []string `json:"features"`
	Trees    int      `json:"trees,omitempty"`
	Depth    int      `json:"depth,omitempty"`
	Holdout  *float64 `json:"holdout,omitempty"`
	Epsilon  float64  `json:"epsilon,omitempty"`
}

// ModelResult is a trained model: the model file (cleanroom.dev/model/v1,
// package cleanroom/model), what it was charged, and the budget after it.
type ModelResult struct {
	Model   json.RawMessage `json:"model"`
	Epsilon float64         `json:"epsilon"`
	Noise   bool            `json:"noise"`
	Budget  BudgetInfo      `json:"budget"`
}

// SegmentVersion is the version a segment spec must name.
const SegmentVersion = "cleanroom.dev/segment/v1"

// SegmentSpec names a segment of the matched people to activate: those
// the filters keep (the same filters, on the same allowed dimensions, as a
// query's).
//
//	{"version": "cleanroom.dev/segment/v1",
//	 "filters": [{"column": "coursely.age_band", "op": "in", "values": ["18-24", "25-34"]}]}
type SegmentSpec struct {
	Version string   `json:"version"`
	Filters []Filter `json:"filters,omitempty"`
}

// Audience is what an activation returns to the member that asked: the
// rows of its own list (0-based, in its upload's order, counting only the
// rows the upload sent: those with a valid identifier) of the matched
// people in the segment, ascending. Rows is the number of rows that upload
// sent, so that the member checks it maps them onto the same list.
type Audience struct {
	Collaboration string   `json:"collaboration"`
	Member        string   `json:"member"`
	Upload        string   `json:"upload"`
	Rows          int64    `json:"rows"`
	Size          int      `json:"size"`
	Audience      []uint32 `json:"audience"`
	// SegmentDigest is the keyed digest of the segment spec that the
	// audit log records with the activation.
	SegmentDigest string `json:"segment_digest"`
	// ActivationsLeftToday and ActivationsLeft are what the member may
	// still activate.
	ActivationsLeftToday int `json:"activations_left_today"`
	ActivationsLeft      int `json:"activations_left"`
}
