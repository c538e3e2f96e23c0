package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Modes of matching.
const (
	ModeHashed  = "hashed"
	ModeBlinded = "blinded"
)

// Formats named on the wire.
const (
	UploadFormat   = "cleanroom.dev/upload/v1"
	ElementsFormat = "cleanroom.dev/elements/v1"
)

// Limits the room enforces and the client respects.
const (
	// MaxRowsPerPart bounds one upload part, so that a part and its
	// decoded rows stay a few megabytes.
	MaxRowsPerPart = 65536
	// MaxColumns bounds the attribute columns of one upload.
	MaxColumns = 32
	// MaxValueLen bounds one attribute value, in bytes.
	MaxValueLen = 256
	// MaxPartBytes bounds one part's uncompressed body.
	MaxPartBytes = 64 << 20
	// MaxJSONBody bounds every JSON request body.
	MaxJSONBody = 1 << 20
	// MaxCheckpointNote bounds a checkpoint a reader names to an export
	// (GET /v1/audit/export?since=): the room's are a few hundred bytes.
	MaxCheckpointNote = 2048
	// MaxTokenLifetime is the longest a request token may live.
	MaxTokenLifetime = 5 * time.Minute
	// MaxClockSkew is how far a token's iat and exp may be off the room's
	// clock, which its answers' Date header gives.
	MaxClockSkew = 30 * time.Second
)

// RoomInfo is what GET /v1/room tells anyone: the audience of tokens and the
// key that signs the audit log's checkpoints.
type RoomInfo struct {
	ID          string `json:"id"`
	AuditOrigin string `json:"audit_origin"`
	VerifierKey string `json:"verifier_key"` // signed-note verifier key of the audit log
	// Proof, given for a challenge (GET /v1/room?challenge=...), is the
	// room's Ed25519 signature, under the key VerifierKey names, of
	// RoomProofMessage(ID, challenge), standard base64: that the room
	// answering holds that key, which another room showing this one's id
	// and key cannot sign with.
	Proof string `json:"proof,omitempty"`
}

// Room challenges are 16 to 64 bytes, base64url without padding.
const (
	MinRoomChallenge = 16
	MaxRoomChallenge = 64
)

// RoomProofMessage is what a room signs to prove it holds its key: a
// label, its id and the caller's challenge.
func RoomProofMessage(id string, challenge []byte) []byte {
	return append([]byte("cleanroom.dev/v1/room-proof\x00"+id+"\x00"), challenge...)
}

// Principal is someone the operator registered, with the public keys that
// verify its tokens.
type Principal struct {
	ID      string `json:"id"`
	Role    string `json:"role"`
	Partner string `json:"partner,omitempty"` // the partner an analyst or auditor works for
	// Keys is the principal's public JWK set (crypto.PublicKeys).
	Keys any `json:"keys"`
}

// RequestKey is the body of GET /v1/principals/me/request-key: the
// caller's request key, which keys the digests of the request ids of the
// caller's audit entries (bundle.RequestToken, bundle.RequestDigest). With
// it and an id the caller sent, one finds that request's entries in a
// bundle; whoever holds it can also test guesses of the caller's ids, so
// the room gives it to the caller alone, and the caller shows one request
// by its token (cleanroom audit request-token).
type RequestKey struct {
	Principal string `json:"principal"`
	Key       []byte `json:"key"` // 32 bytes (bundle.RequestKeySize)
}

// ValidRequestID reports whether id may name a request (X-Request-Id): 1
// to 64 of A-Z a-z 0-9 . _ -. The room names a request whose caller sent
// another id with one of its own.
func ValidRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := range len(id) {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// CreateCollaboration is the body of POST /v1/collaborations.
type CreateCollaboration struct {
	ID      string   `json:"id"`
	Mode    string   `json:"mode"`    // hashed or blinded
	Profile string   `json:"profile"` // normalization profile, e.g. pair-v1
	Kind    string   `json:"kind"`    // identifier kind every member matches on
	Members []string `json:"members"` // partner ids, the creator among them
	// Settings is the settings document every member agrees to: the
	// constraints, allowed_dimensions, domains, bounds, noise_off and
	// expires_in_hours (policy.Settings). The room decodes it strictly: an
	// unknown key, or a value looser than the room's defaults, is refused.
	Settings json.RawMessage `json:"settings,omitempty"`
}

// Collaboration is where a collaboration stands, as its members see it.
type Collaboration struct {
	ID        string          `json:"id"`
	Mode      string          `json:"mode"`
	Profile   string          `json:"profile"`
	Kind      string          `json:"kind"`
	Members   []string        `json:"members"`
	CreatedBy string          `json:"created_by"`
	Accepted  map[string]bool `json:"accepted"`
	Revoked   bool            `json:"revoked,omitempty"`
	RevokedBy string          `json:"revoked_by,omitempty"`
	ExpiresAt *time.Time      `json:"expires_at,omitempty"`
	// DataDeletedAt is when the room recorded the deletion of the
	// collaboration's data (every member's uploads, its relay tasks, joins
	// and audiences), once a member revoked it or it expired; the keys go
	// right after, and a deletion a failure interrupted is finished by the
	// room's next sweep.
	DataDeletedAt *time.Time `json:"data_deleted_at,omitempty"`
	// Settings are the agreed settings, in their canonical form, and
	// SettingsDigest the digest a member accepts (TermsDigest).
	Settings       json.RawMessage `json:"settings"`
	SettingsDigest string          `json:"settings_digest"`
	// NoiseOff repeats the settings' noise_off: answers are exact.
	NoiseOff bool `json:"noise_off,omitempty"`
	// Constraints are those in force: the strictest of the room's
	// defaults, the settings, each member's requirements and the
	// collaboration's policy module.
	Constraints *Constraints        `json:"constraints,omitempty"`
	Datasets    map[string]*Dataset `json:"datasets"`
	// Keys are the members' public JWK sets, to seal the secret to.
	Keys map[string]any `json:"keys,omitempty"`
	// Match is the latest match run, if any.
	Match *MatchResult `json:"match,omitempty"`
	// Policy is the collaboration's own policy module, if any.
	Policy *PolicyState `json:"policy,omitempty"`
	// PendingReencryption counts the relay tasks waiting for each member.
	PendingReencryption map[string]int `json:"pending_reencryption,omitempty"`
}

// Constraints are a collaboration's constraints in force (policy's
// strictest values; see docs/PRIVACY.md for what each does). List sizes
// count distinct identifiers.
type Constraints struct {
	MinGroupSize        int      `json:"min_group_size"`
	EpsilonPerQuery     float64  `json:"epsilon_per_query"`
	EpsilonMinPerQuery  float64  `json:"epsilon_min_per_query"`
	EpsilonBudget       float64  `json:"epsilon_budget"`
	EpsilonMatch        float64  `json:"epsilon_match"`
	DeltaPerQuery       float64  `json:"delta_per_query"`
	DeltaBudget         float64  `json:"delta_budget"`
	MinListSize         int64    `json:"min_list_size"`
	MaxListSize         int64    `json:"max_list_size"`
	MinUploadDifference int64    `json:"min_upload_difference"`
	MaxQueriesPerDay    int      `json:"max_queries_per_day"`
	MaxMatchesPerDay    int      `json:"max_matches_per_day"`
	MaxUploadsPerDay    int      `json:"max_uploads_per_day"`
	AllowedDimensions   []string `json:"allowed_dimensions"`
	AllowedMetrics      []string `json:"allowed_metrics"`
	NeverOutputColumns  []string `json:"never_output_columns"`
}

// TermsLabel separates the digest of a collaboration's terms from every
// other hash in the protocol.
const TermsLabel = "cleanroom.dev/terms/v1"

// TermsDigest is the digest of what a member agrees to when it accepts a
// collaboration: its id, mode, profile, kind, members and settings (in the
// room's canonical form, as Collaboration.Settings carries them). It is the
// hex SHA-256 of TermsLabel, a newline, and the JSON of those fields.
func TermsDigest(c *Collaboration) string {
	b, _ := json.Marshal(struct {
		ID       string          `json:"id"`
		Mode     string          `json:"mode"`
		Profile  string          `json:"profile"`
		Kind     string          `json:"kind"`
		Members  []string        `json:"members"`
		Settings json.RawMessage `json:"settings"`
	}{c.ID, c.Mode, c.Profile, c.Kind, c.Members, c.Settings})
	h := sha256.New()
	h.Write([]byte(TermsLabel + "\n"))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// AcceptCollaboration is the body of POST /v1/collaborations/{id}/accept:
// the digest of the terms the member saw and agrees to. The room refuses
// it unless it is the collaboration's.
type AcceptCollaboration struct {
	SettingsDigest string `json:"settings_digest"`
}

// CollaborationSummary is a collaboration in the list of those that
// concern a principal (GET /v1/collaborations).
type CollaborationSummary struct {
	ID        string          `json:"id"`
	Mode      string          `json:"mode"`
	Kind      string          `json:"kind"`
	Members   []string        `json:"members"`
	CreatedBy string          `json:"created_by"`
	Accepted  map[string]bool `json:"accepted"`
	Revoked   bool            `json:"revoked,omitempty"`
	NoiseOff  bool            `json:"noise_off,omitempty"`
	Matched   bool            `json:"matched"` // a match run exists
}

// BudgetEvent is one charge to a collaboration's privacy budget, as its
// audit log records it (GET /v1/collaborations/{id}/budget/history):
// when, for which member, for which action, what it cost, and the total
// after it. Principal, the member's principal that made the charge, is
// given only for the caller's own member: who works for another member is
// for auditors to read, in the audit log, not for that member's partners
// and analysts.
type BudgetEvent struct {
	At        time.Time `json:"at"`
	Member    string    `json:"member"`
	Principal string    `json:"principal,omitempty"`
	Action    string    `json:"action"`
	Epsilon   float64   `json:"epsilon"`
	Spent     float64   `json:"spent"`
}

// Dataset is a member's committed upload.
type Dataset struct {
	Upload   string    `json:"upload"`
	Rows     int64     `json:"rows"`
	Columns  []string  `json:"columns"`
	Digest   string    `json:"digest"`
	Kind     string    `json:"kind"`
	Profile  string    `json:"profile"`
	Layers   int       `json:"layers"` // how many members' keys the set carries (blinded)
	Ready    bool      `json:"ready"`  // carries every member's key: can be matched
	Uploaded time.Time `json:"uploaded"`
	// RelayRefused names the member whose re-encryption of the set failed
	// the room's checks (blinded): the set goes no further until its
	// owner uploads it again.
	RelayRefused string `json:"relay_refused,omitempty"`
}

// SealedSecret is a collaboration secret sealed by From to To (HPKE,
// crypto.SealSecret). The room stores and relays it and cannot open it.
type SealedSecret struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Sealed []byte `json:"sealed"`
}

// StartUpload is the body of POST /v1/collaborations/{id}/uploads.
type StartUpload struct {
	Kind    string   `json:"kind"`
	Profile string   `json:"profile"`
	Columns []string `json:"columns"`
	// Rows is the list's row count, or 0 to declare it at the commit
	// (CommitUpload.Rows); either way every part but the last holds
	// exactly RowsPerPart rows.
	Rows        int64 `json:"rows"`
	RowsPerPart int   `json:"rows_per_part"`
	// Canary holds the tokens of the collaboration's canary identifiers
	// (CanaryIdentifiers), made exactly as the rows' tokens are.
	Canary [][]byte `json:"canary"`
}

// Upload is an upload in progress or done.
type Upload struct {
	ID            string   `json:"id"`
	Collaboration string   `json:"collaboration"`
	Member        string   `json:"member"`
	Rows          int64    `json:"rows"` // 0 until the commit, if not declared at the start
	RowsPerPart   int      `json:"rows_per_part"`
	Parts         int      `json:"parts"`    // 0 until the commit, if the rows were not declared
	Received      []int    `json:"received"` // part numbers stored so far
	Committed     bool     `json:"committed"`
	Columns       []string `json:"columns"`
}

// PartReceipt acknowledges a stored part.
type PartReceipt struct {
	Part   int    `json:"part"`
	Rows   int    `json:"rows"`
	Digest string `json:"digest"`
}

// CommitUpload is the body of POST /v1/uploads/{id}/commit.
type CommitUpload struct {
	Digest string `json:"digest"` // DatasetDigest of the parts, as the client computed it
	// Rows is the upload's row count, if its start did not declare it
	// (StartUpload.Rows 0): a client can then send parts as it reads its
	// input, in one pass.
	Rows int64 `json:"rows,omitempty"`
}

// Task is a relay task: a member's set, shuffled, that another member is
// asked to re-encrypt with its key.
type Task struct {
	ID    string `json:"id"`
	Owner string `json:"owner"` // whose set it is
	Layer int    `json:"layer"` // keys it carries so far
	Rows  int64  `json:"rows"`
	Parts int    `json:"parts"`
	Done  []int  `json:"done"`
}

// MatchResult is what a match run tells the members: for each member, the
// share of its distinct identifiers that are in every list, from a noisy
// count of the overlap (whole percent, ">85%" above 85%, as PAIR clean rooms
// report it), and what that release cost. The exact overlap stays inside the
// room; Matched carries it only when the collaboration turned noise off.
type MatchResult struct {
	Run       int64             `json:"run"`
	MatchRate map[string]string `json:"match_rate"`
	Matched   *int64            `json:"matched,omitempty"` // noise off only
	Epsilon   float64           `json:"epsilon"`
	Noise     bool              `json:"noise"`
	At        time.Time         `json:"at"`
	// Budget is the collaboration's ledger after the run (in the answer to
	// the member that ran it).
	Budget *BudgetInfo `json:"budget,omitempty"`
}

// QueryVersion is the version a query spec must name.
const QueryVersion = "cleanroom.dev/query/v1"

// QuerySpec is an aggregate question about the matched people
// (cleanroom.dev/query/v1). Columns are named "member.column". Every
// output row describes at least k people (the collaboration's strictest
// min_group_size), judged on its noisy count. group_by and filter columns,
// and lift's exposed and converted columns, alike must be allowed
// dimensions; numeric filters (lt, le, gt, ge) need the column's declared
// bounds.
//
//	{"version": "cleanroom.dev/query/v1",
//	 "metrics": ["count",
//	             {"kind": "sum", "column": "pulsefit.revenue"},
//	             {"kind": "avg", "column": "coursely.spend"},
//	             {"kind": "match_rate", "member": "coursely"},
//	             {"kind": "roi", "revenue": ["coursely.revenue", "pulsefit.revenue"], "cost": {"column": "coursely.spend"}},
//	             {"kind": "lift", "exposed": "coursely.exposed", "converted": "pulsefit.conversions"}],
//	 "group_by": ["coursely.age_band"],
//	 "filters": [{"column": "coursely.region", "op": "in", "values": ["north", "east"]}],
//	 "kmeans": {"k": 4, "columns": ["coursely.spend", "pulsefit.revenue"], "iterations": 5},
//	 "epsilon": 0.5}
//
// A metric given as a plain string is {"kind": that string}. Numeric
// columns (sum, avg, roi, kmeans) must have bounds declared in the
// collaboration; values are clamped to them. epsilon is split evenly among
// the noisy statistics the query releases.
type QuerySpec struct {
	Version string   `json:"version"`
	Metrics []Metric `json:"metrics"`
	GroupBy []string `json:"group_by,omitempty"`
	Filters []Filter `json:"filters,omitempty"`
	KMeans  *KMeans  `json:"kmeans,omitempty"`
	Epsilon float64  `json:"epsilon"`
}

// Metric kinds.
const (
	MetricCount     = "count"
	MetricSum       = "sum"
	MetricAvg       = "avg"
	MetricMatchRate = "match_rate"
	MetricROI       = "roi"
	MetricLift      = "lift"
)

// Metric is one statistic per output row.
type Metric struct {
	Kind   string `json:"kind"`
	Column string `json:"column,omitempty"` // sum, avg
	Member string `json:"member,omitempty"` // match_rate: matched people over this member's list
	// roi = (sum of the Revenue columns over the overlap) / Cost: the
	// alliance formula ROI = (R_A + R_B) / C.
	Revenue []string `json:"revenue,omitempty"`
	Cost    *Cost    `json:"cost,omitempty"`
	// lift compares the conversion rate of the people with Exposed true
	// (true, yes, 1) with that of the others; Converted counts as a
	// conversion when it is a number above 0 or true.
	Exposed   string `json:"exposed,omitempty"`
	Converted string `json:"converted,omitempty"`
	// Level is the confidence level of lift's and roi's intervals (0.5
	// to 0.999; 0.95 when unset): lift adds the difference of conversion
	// rates with its interval, the relative lift's interval and a verdict
	// (positive, negative, inconclusive); roi adds roi_low and roi_high.
	// The intervals account for the DP noise and for sampling; see
	// docs/PRIVACY.md.
	Level float64 `json:"level,omitempty"`
}

// UnmarshalJSON takes a metric object or its kind alone.
func (m *Metric) UnmarshalJSON(b []byte) error {
	var kind string
	if json.Unmarshal(b, &kind) == nil {
		*m = Metric{Kind: kind}
		return nil
	}
	type plain Metric
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode((*plain)(m))
}

// Cost is ROI's denominator: a constant (the campaign's cost, a public
// parameter) or the sum of a column over the overlap.
type Cost struct {
	Value  float64 `json:"value,omitempty"`
	Column string  `json:"column,omitempty"`
}

// Filter keeps the matched people whose column compares true: op is eq,
// ne, in (with values), lt, le, gt or ge (numeric).
type Filter struct {
	Column string   `json:"column"`
	Op     string   `json:"op"`
	Value  string   `json:"value,omitempty"`
	Values []string `json:"values,omitempty"`
}

// KMeans asks for a k-means profile of the matched people on numeric
// columns: only centroids and cluster sizes come back.
type KMeans struct {
	K          int      `json:"k"`
	Columns    []string `json:"columns"`
	Iterations int      `json:"iterations,omitempty"` // default 5
}

// QueryResult is an aggregate answer: rows of at least k people only.
//
// Partitions says where the groups come from: "declared" when every
// group_by column has a declared domain (every combination is evaluated and
// Withheld counts those whose noisy count fell below k: a function of noisy
// counts alone), "selected" when some do not (groups are chosen from the
// data by DP partition selection, and how many were not chosen is not
// told). ClustersWithheld counts k-means clusters whose noisy size fell
// below k.
type QueryResult struct {
	Columns          []string   `json:"columns"`
	Rows             [][]any    `json:"rows"`
	Partitions       string     `json:"partitions"`
	Withheld         *int       `json:"withheld,omitempty"`
	Clusters         []Cluster  `json:"clusters,omitempty"`
	ClustersWithheld int        `json:"clusters_withheld,omitempty"`
	MinGroup         int        `json:"min_group_size"`
	Epsilon          float64    `json:"epsilon"`
	Delta            float64    `json:"delta,omitempty"`
	Noise            bool       `json:"noise"`
	Budget           BudgetInfo `json:"budget"`
}

// Where a query's groups come from.
const (
	PartitionsDeclared = "declared"
	PartitionsSelected = "selected"
)

// Cluster is one k-means cluster: its centroid (in the order of the
// spec's columns) and its size.
type Cluster struct {
	Centroid []float64 `json:"centroid"`
	Size     int64     `json:"size"`
}

// BudgetInfo is a collaboration's privacy budget. The room keeps it in
// integer units (a millionth of epsilon, 1e-15 of delta), so every answer
// raises Spent by exactly its epsilon.
type BudgetInfo struct {
	Total         float64 `json:"total"`
	Spent         float64 `json:"spent"`
	Remaining     float64 `json:"remaining"`
	DeltaTotal    float64 `json:"delta_total,omitempty"`
	DeltaSpent    float64 `json:"delta_spent,omitempty"`
	QueriesToday  int     `json:"queries_today"`
	MatchesToday  int     `json:"matches_today"`
	MaxQueriesDay int     `json:"max_queries_per_day,omitempty"`
	MaxMatchesDay int     `json:"max_matches_per_day,omitempty"`
	// MemberShare is each member's share of the total (and, over the
	// members, of the daily queries) unless the settings pool the budget;
	// MemberSpent what each member spent of it.
	MemberShare float64            `json:"member_share,omitempty"`
	MemberSpent map[string]float64 `json:"member_spent,omitempty"`
}

// PolicyState is a collaboration's own policy module: the active one's
// hash, and the proposals waiting for approvals (hash → members approved).
type PolicyState struct {
	Active  string              `json:"active,omitempty"`
	Pending map[string][]string `json:"pending,omitempty"`
}

// PolicyProposal answers a proposal or an approval.
type PolicyProposal struct {
	Hash   string `json:"hash"`
	Active bool   `json:"active"`
}
