package policy

import "time"

// Input is what a decision is made on. It becomes the Rego input document:
//
//	{
//	  "principal": {"id": "ana", "role": "analyst", "partner": "coursely"},
//	  "action": "query.run",
//	  "collaboration": {"id", "members", "settings", "datasets", "revoked", "expires_unix", "policy_hash"},
//	  "resource": {"dataset": {...}} or {"query": {...}},
//	  "usage": {"epsilon_spent": 1.2, "queries_today": 3},
//	  "now_unix": 1795000000
//	}
//
// "now_unix" comes from the Engine's clock, and the room's default
// constraints are data (data.room.defaults), from its Options; callers set
// neither. Nothing in an input is a data value: principals and members are
// ids, columns are names, datasets are described by counts.
type Input struct {
	Principal     Principal      `json:"principal"`
	Action        string         `json:"action"`
	Collaboration *Collaboration `json:"collaboration,omitempty"`
	Resource      Resource       `json:"resource"`
	Usage         Usage          `json:"usage"`
}

// Roles a principal may have. An auditor works for a partner and sees
// what concerns it; a room auditor works for no partner, and the operator
// grants it the whole audit log.
const (
	RolePartner     = "partner"
	RoleAnalyst     = "analyst"
	RoleAuditor     = "auditor"
	RoleRoomAuditor = "room-auditor"
	RoleOperator    = "operator"
)

// Principal is who asks. Partner is the member the principal acts for: a
// partner's own id (filled in when empty), or the partner employing an
// analyst or auditor.
type Principal struct {
	ID      string `json:"id"`
	Role    string `json:"role"`
	Partner string `json:"partner,omitempty"`
}

// Collaboration is the state a decision needs.
type Collaboration struct {
	ID         string                  `json:"id"`
	Members    []string                `json:"members"`
	Settings   Settings                `json:"settings"`
	Datasets   map[string]DatasetState `json:"datasets,omitempty"`
	Revoked    bool                    `json:"revoked,omitempty"`
	ExpiresAt  time.Time               `json:"-"`
	PolicyHash string                  `json:"policy_hash,omitempty"`
}

// Settings are a collaboration's own constraints, the attribute columns it
// declared, and each member's requirements. Zero values are unset. All of
// them can only tighten the room's defaults.
type Settings struct {
	Constraints
	Columns  []string               `json:"columns,omitempty"`
	Members  map[string]Constraints `json:"members,omitempty"`
	NoiseOff bool                   `json:"noise_off,omitempty"`
}

// DatasetState is where a member's dataset stands.
type DatasetState struct {
	Uploaded bool `json:"uploaded,omitempty"`
	Matched  bool `json:"matched,omitempty"`
}

// Resource is what the action touches: a dataset upload's statistics or a
// query's shape.
type Resource struct {
	Dataset *DatasetStats `json:"dataset,omitempty"`
	Query   *QueryShape   `json:"query,omitempty"`
}

// DatasetStats describe an upload without its contents.
type DatasetStats struct {
	Rows int64 `json:"rows"`
	// DifferenceFromPrevious is the size of the symmetric difference with
	// the same member's previous upload in this collaboration (0 if none).
	DifferenceFromPrevious int64 `json:"difference_from_previous,omitempty"`
}

// QueryShape is what policy needs to know of a query.
type QueryShape struct {
	Metrics       []string `json:"metrics"`
	GroupBy       []string `json:"group_by,omitempty"`
	Columns       []string `json:"columns,omitempty"`        // columns metrics read
	FilterColumns []string `json:"filter_columns,omitempty"` // columns filters read
	Epsilon       float64  `json:"epsilon"`
}

// Usage is what the collaboration has spent so far.
type Usage struct {
	EpsilonSpent float64 `json:"epsilon_spent"`
	QueriesToday int     `json:"queries_today"`
}

// Constraints bound what the room may do. In a decision, every field is the
// strictest value any source set: the room's defaults, the collaboration's
// settings, each member's requirements and the collaboration's module.
type Constraints struct {
	MinGroupSize        int      `json:"min_group_size,omitempty"`
	EpsilonPerQuery     float64  `json:"epsilon_per_query,omitempty"`
	EpsilonBudget       float64  `json:"epsilon_budget,omitempty"`
	MinListSize         int64    `json:"min_list_size,omitempty"`
	MaxListSize         int64    `json:"max_list_size,omitempty"`
	MinUploadDifference int64    `json:"min_upload_difference,omitempty"`
	MaxQueriesPerDay    int      `json:"max_queries_per_day,omitempty"`
	AllowedDimensions   []string `json:"allowed_dimensions,omitempty"`
	AllowedMetrics      []string `json:"allowed_metrics,omitempty"`
	NeverOutputColumns  []string `json:"never_output_columns,omitempty"`
}

// DefaultConstraints are the room's defaults: k = 50 (as PAIR clean rooms and
// Ads Data Hub use), lists of at least 1,000 people, uploads that differ from
// the previous one by at least 50, and identifier and join columns never out.
func DefaultConstraints() Constraints {
	return Constraints{
		MinGroupSize:        50,
		EpsilonPerQuery:     0.5,
		EpsilonBudget:       10,
		MinListSize:         1000,
		MaxListSize:         100_000_000,
		MinUploadDifference: 50,
		MaxQueriesPerDay:    200,
		AllowedMetrics:      []string{"avg", "count", "kmeans", "lift", "match_rate", "roi", "sum"},
		NeverOutputColumns:  []string{"email", "phone", "maid", "custom_id", "id", "identifier", "token", "match_key", "row"},
	}
}
