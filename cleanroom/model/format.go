package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Format is the version every model file names.
const Format = "cleanroom.dev/model/v1"

// Method names the training algorithm, as model files record it.
const Method = "random decision trees with Laplace leaf counts (Jagannathan, Pillaipakkamnatt and Wright, 2012)"

// Kinds of feature.
const (
	Categorical = "categorical"
	Numeric     = "numeric"
)

// Limits of a model, which Parse and Train enforce.
const (
	MaxFeatures = 16
	MaxDomain   = 64 // values of one categorical feature
	MaxValueLen = 256
	MaxTrees    = 64
	MaxDepth    = 8
	MaxNodes    = 4096 // nodes of one tree
	// MaxCount bounds one count, far above any list (so that sums over
	// every tree stay exact).
	MaxCount = 1 << 50
	// MaxFileSize bounds a model file: every tree at its largest, with
	// room for the JSON.
	MaxFileSize = 64 << 20
)

// ErrFormat is wrapped by every error of Parse: the file is not a model
// this version reads.
var ErrFormat = errors.New("model: not a valid " + Format + " file")

// Model is a trained forest and what it was trained on.
type Model struct {
	Format        string `json:"format"`
	Method        string `json:"method"`
	Collaboration string `json:"collaboration,omitempty"`
	// Member is the member whose columns the features are: the one that
	// applies the model to its own list.
	Member   string    `json:"member"`
	Label    Label     `json:"label"`
	Features []Feature `json:"features"`
	Trees    []Tree    `json:"trees"`
	// TreesWithheld counts the trees whose root's noisy total fell below
	// MinLeaf (a function of noisy counts).
	TreesWithheld int `json:"trees_withheld,omitempty"`
	Depth         int `json:"depth"`
	// MinLeaf is the least noisy total of any node the model holds (the
	// collaboration's k).
	MinLeaf int `json:"min_leaf"`
	// Epsilon is what the model cost: TreeEpsilon for each tree in Trees
	// and TreesWithheld, plus AccuracyEpsilon.
	Epsilon         float64 `json:"epsilon"`
	TreeEpsilon     float64 `json:"tree_epsilon"`
	AccuracyEpsilon float64 `json:"accuracy_epsilon,omitempty"`
	// Holdout is the share of people held out of training, each drawn at
	// random, to measure Accuracy: the noisy share of them whose label the
	// model predicts (score at least 0.5), absent when no person was held
	// out or the noisy count of them was below MinLeaf.
	Holdout  float64  `json:"holdout,omitempty"`
	Accuracy *float64 `json:"accuracy,omitempty"`
	// Noise is false when the collaboration turned noise off: the counts
	// are then exact.
	Noise bool `json:"noise"`
}

// Label says what the model predicts: that Column is true (true, yes, or a
// number above 0) or, with Op, that it compares true as a query filter
// would (eq, ne, in; lt, le, gt, ge on a bounded column).
type Label struct {
	Column string   `json:"column"`
	Op     string   `json:"op,omitempty"`
	Value  string   `json:"value,omitempty"`
	Values []string `json:"values,omitempty"`
}

func (l Label) String() string {
	switch {
	case l.Op == "":
		return l.Column
	case l.Op == "in":
		return l.Column + " in [" + strings.Join(l.Values, ", ") + "]"
	}
	return l.Column + " " + l.Op + " " + l.Value
}

// Feature is a column of the member's list with its declared domain
// (categorical) or bounds (numeric).
type Feature struct {
	Name   string      `json:"name"`   // as the room names it, member.column
	Column string      `json:"column"` // in the member's own list
	Kind   string      `json:"kind"`
	Domain []string    `json:"domain,omitempty"`
	Bounds *[2]float64 `json:"bounds,omitempty"`
}

// Value is the number a feature sees for v: the index of v in a
// categorical domain (-1 when it is not there), or a numeric v clamped to
// the bounds (the bound nearest zero when v is not a number), exactly as
// the room aggregates a bounded column.
func (f *Feature) Value(v string) float64 {
	if f.Kind == Categorical {
		for i, d := range f.Domain {
			if d == v {
				return float64(i)
			}
		}
		return -1
	}
	lo, hi := f.Bounds[0], f.Bounds[1]
	x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		x = math.Min(math.Max(0, lo), hi)
	}
	return math.Min(math.Max(x, lo), hi)
}

// fanout is how many children a split on f makes.
func (f *Feature) fanout() int {
	if f.Kind == Categorical {
		return len(f.Domain)
	}
	return 2
}

// Tree is one random decision tree: its nodes, the root first.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

// Node is a node of a tree.
type Node struct {
	// Feature is the index of the feature the node splits on, or -1 at a
	// leaf.
	Feature int `json:"feature"`
	// Threshold splits a numeric feature: values below it go to
	// Children[0], the others to Children[1].
	Threshold float64 `json:"threshold,omitempty"`
	// Children are the indexes of the node's children, one per domain
	// value of a categorical feature (in the domain's order) or two for a
	// numeric one; -1 for a child withheld (below MinLeaf).
	Children []int `json:"children,omitempty"`
	// Counts are the noisy counts of the node's subtree: people whose
	// label is false, and true.
	Counts [2]int64 `json:"counts"`
}

// Parse reads a model file strictly: one JSON object of this format, no
// unknown key, every tree well formed and within the features' declared
// domains and bounds. Errors wrap ErrFormat and never quote the file.
func Parse(b []byte) (*Model, error) {
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrFormat, MaxFileSize)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var m Model
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrFormat, decodeProblem(err))
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: the file must hold one JSON object", ErrFormat)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return &m, nil
}

// decodeProblem names what JSON decoding refused without quoting input.
func decodeProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("%s has the wrong type", te.Field)
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON at byte %d", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown key " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "not a JSON object"
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// check validates a model: what Parse guarantees of every model it
// returns, and Train of every model it makes.
func (m *Model) check() error {
	switch {
	case m.Format != Format:
		return fmt.Errorf("format must be %s", Format)
	case len(m.Features) == 0 || len(m.Features) > MaxFeatures:
		return fmt.Errorf("a model has 1 to %d features", MaxFeatures)
	case len(m.Trees) > MaxTrees || m.TreesWithheld < 0 || len(m.Trees)+m.TreesWithheld > MaxTrees:
		return fmt.Errorf("a model has at most %d trees", MaxTrees)
	case m.Depth < 0 || m.Depth > MaxDepth:
		return fmt.Errorf("depth is 0 to %d", MaxDepth)
	case m.MinLeaf < 1:
		return errors.New("min_leaf is at least 1")
	case !finite(m.Epsilon) || !finite(m.TreeEpsilon) || !finite(m.AccuracyEpsilon) ||
		m.Epsilon < 0 || m.TreeEpsilon < 0 || m.AccuracyEpsilon < 0:
		return errors.New("epsilons are finite, non-negative numbers")
	case !(m.Holdout >= 0 && m.Holdout < 1):
		return errors.New("holdout is a share in [0, 1)")
	case m.Accuracy != nil && !(*m.Accuracy >= 0 && *m.Accuracy <= 1):
		return errors.New("accuracy is a share in [0, 1]")
	}
	for i := range m.Features {
		if err := m.Features[i].check(); err != nil {
			return fmt.Errorf("feature %d: %v", i+1, err)
		}
	}
	for t := range m.Trees {
		if err := m.checkTree(&m.Trees[t]); err != nil {
			return fmt.Errorf("tree %d: %v", t+1, err)
		}
	}
	return nil
}

func (f *Feature) check() error {
	if f.Name == "" || len(f.Name) > MaxValueLen || f.Column == "" || len(f.Column) > MaxValueLen {
		return fmt.Errorf("a feature has a name and a column of 1 to %d bytes", MaxValueLen)
	}
	switch f.Kind {
	case Categorical:
		if f.Bounds != nil || len(f.Domain) == 0 || len(f.Domain) > MaxDomain {
			return fmt.Errorf("a categorical feature has a domain of 1 to %d values and no bounds", MaxDomain)
		}
		seen := make(map[string]bool, len(f.Domain))
		for _, v := range f.Domain {
			if len(v) > MaxValueLen || seen[v] {
				return fmt.Errorf("domain values are distinct and at most %d bytes", MaxValueLen)
			}
			seen[v] = true
		}
	case Numeric:
		if f.Domain != nil || f.Bounds == nil || !finite(f.Bounds[0]) || !finite(f.Bounds[1]) || f.Bounds[0] > f.Bounds[1] {
			return errors.New("a numeric feature has finite bounds [low, high] and no domain")
		}
	default:
		return fmt.Errorf("kind is %s or %s", Categorical, Numeric)
	}
	return nil
}

// checkTree checks that a tree's nodes form one tree rooted at the first
// (every other node the child of exactly one earlier node) and that its
// splits lie within the declared domains and bounds.
func (m *Model) checkTree(t *Tree) error {
	if len(t.Nodes) == 0 || len(t.Nodes) > MaxNodes {
		return fmt.Errorf("a tree has 1 to %d nodes", MaxNodes)
	}
	parent := make([]bool, len(t.Nodes))
	parent[0] = true
	for i, n := range t.Nodes {
		if !parent[i] {
			return fmt.Errorf("node %d is no node's child", i)
		}
		if n.Counts[0] < 0 || n.Counts[1] < 0 || n.Counts[0] > MaxCount || n.Counts[1] > MaxCount {
			return fmt.Errorf("node %d has a negative count or one above %d", i, MaxCount)
		}
		if n.Feature == -1 {
			if n.Children != nil || n.Threshold != 0 {
				return fmt.Errorf("leaf %d has children or a threshold", i)
			}
			continue
		}
		if n.Feature < 0 || n.Feature >= len(m.Features) {
			return fmt.Errorf("node %d splits on no feature", i)
		}
		f := &m.Features[n.Feature]
		if len(n.Children) != f.fanout() {
			return fmt.Errorf("node %d has %d children, its feature splits %d ways", i, len(n.Children), f.fanout())
		}
		if f.Kind == Numeric && !(n.Threshold >= f.Bounds[0] && n.Threshold <= f.Bounds[1]) {
			return fmt.Errorf("node %d has a threshold outside its feature's bounds", i)
		}
		if f.Kind == Categorical && n.Threshold != 0 {
			return fmt.Errorf("node %d splits a categorical feature at a threshold", i)
		}
		for _, c := range n.Children {
			if c == -1 {
				continue
			}
			if c <= i || c >= len(t.Nodes) || parent[c] {
				return fmt.Errorf("node %d has a child that is not a later node of its own", i)
			}
			parent[c] = true
		}
	}
	return nil
}

// Marshal returns the model's file: its JSON, indented.
func (m *Model) Marshal() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
