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
	Action        Action         `json:"action"`
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

// DatasetState is where a member's dataset stands.
type DatasetState struct {
	Uploaded bool `json:"uploaded,omitempty"`
	Matched  bool `json:"matched,omitempty"`
}

// Resource is what the action touches: a dataset upload's statistics, a
// query's shape, a model's or an activation's.
type Resource struct {
	Dataset    *DatasetStats    `json:"dataset,omitempty"`
	Query      *QueryShape      `json:"query,omitempty"`
	Model      *ModelShape      `json:"model,omitempty"`
	Activation *ActivationShape `json:"activation,omitempty"`
}

// DatasetStats describe an upload without its contents.
type DatasetStats struct {
	Rows int64 `json:"rows"`
	// Distinct counts the list's distinct identifiers, once the room has
	// them all (at the commit); 0 before.
	Distinct int64 `json:"distinct,omitempty"`
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
	// Splits are the columns lift divides people by (its exposed and
	// converted columns): lift releases the noisy number of people in each
	// of the four cells, the breakdown a group_by on both would give.
	Splits []string `json:"splits,omitempty"`
	// Dimensions are the columns that select people: group_by, filter and
	// split columns alike, held to the same rules (a filter is a
	// dimension).
	Dimensions []string `json:"dimensions,omitempty"`
	Epsilon    float64  `json:"epsilon"`
	// SelectsPartitions tells that some group_by column has no declared
	// domain: the query's groups come from the data, through partition
	// selection, which spends the collaboration's delta_per_query.
	SelectsPartitions bool `json:"selects_partitions,omitempty"`
}

// Usage is what the collaboration has spent so far.
type Usage struct {
	EpsilonSpent float64 `json:"epsilon_spent"`
	DeltaSpent   float64 `json:"delta_spent"`
	QueriesToday int     `json:"queries_today"`
	MatchesToday int     `json:"matches_today"`
	// UploadsToday counts the principal's member's committed uploads today.
	UploadsToday int `json:"uploads_today"`
	// ActivationsToday and Activations count the principal's member's
	// audiences received today and in all.
	ActivationsToday int `json:"activations_today"`
	Activations      int `json:"activations"`
}

// Constraints bound what the room may do. In a decision, every field is the
// strictest value any source set: the room's defaults, the collaboration's
// settings, each member's requirements and the collaboration's module.
type Constraints struct {
	MinGroupSize int `json:"min_group_size,omitempty"`
	// EpsilonPerQuery is the most, and EpsilonMinPerQuery the least, one
	// query may spend; EpsilonBudget is the collaboration's total.
	EpsilonPerQuery    float64 `json:"epsilon_per_query,omitempty"`
	EpsilonMinPerQuery float64 `json:"epsilon_min_per_query,omitempty"`
	EpsilonBudget      float64 `json:"epsilon_budget,omitempty"`
	// EpsilonMatch is what releasing one match run's noisy overlap costs.
	EpsilonMatch float64 `json:"epsilon_match,omitempty"`
	// DeltaPerQuery is the delta of a query whose groups come from the data
	// (partition selection); DeltaBudget the collaboration's total.
	DeltaPerQuery float64 `json:"delta_per_query,omitempty"`
	DeltaBudget   float64 `json:"delta_budget,omitempty"`
	// MinListSize and MaxListSize count distinct identifiers.
	MinListSize         int64 `json:"min_list_size,omitempty"`
	MaxListSize         int64 `json:"max_list_size,omitempty"`
	MinUploadDifference int64 `json:"min_upload_difference,omitempty"`
	MaxQueriesPerDay    int   `json:"max_queries_per_day,omitempty"`
	MaxMatchesPerDay    int   `json:"max_matches_per_day,omitempty"`
	// MaxUploadsPerDay bounds each member's committed uploads a day.
	MaxUploadsPerDay int `json:"max_uploads_per_day,omitempty"`
	// AllowedDimensions and AllowedMetrics are allow-lists, intersected
	// across the sources that give one: an empty list allows nothing, and
	// is kept as written (omitzero), where an absent one leaves the choice
	// to the other sources.
	AllowedDimensions  []string `json:"allowed_dimensions,omitzero"`
	AllowedMetrics     []string `json:"allowed_metrics,omitzero"`
	NeverOutputColumns []string `json:"never_output_columns,omitempty"`
}

// DefaultConstraints are the room's defaults: k = 50 (as PAIR clean rooms and
// Ads Data Hub use); epsilon 0.01 to 0.5 a query out of 10, 0.1 a match
// release; delta 1e-8 a query with data-driven groups out of 1e-6; lists of
// at least 1,000 people; uploads that differ from the previous one by at
// least 50; a few matches and uploads a day; identifier and join columns
// never out.
func DefaultConstraints() Constraints {
	return Constraints{
		MinGroupSize:        50,
		EpsilonPerQuery:     0.5,
		EpsilonMinPerQuery:  0.01,
		EpsilonBudget:       10,
		EpsilonMatch:        0.1,
		DeltaPerQuery:       1e-8,
		DeltaBudget:         1e-6,
		MinListSize:         1000,
		MaxListSize:         100_000_000,
		MinUploadDifference: 50,
		MaxQueriesPerDay:    200,
		MaxMatchesPerDay:    10,
		MaxUploadsPerDay:    10,
		AllowedMetrics:      []string{"avg", "count", "kmeans", "lift", "match_rate", "model", "roi", "sum"},
		NeverOutputColumns:  []string{"email", "phone", "maid", "custom_id", "id", "identifier", "token", "match_key", "row"},
	}
}
