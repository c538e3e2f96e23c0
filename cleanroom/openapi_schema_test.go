package cleanroom

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/model"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// wireSchemas pairs the document's schemas with the Go types the room
// encodes and decodes. For a response type, the required properties are its
// fields without omitempty; for a request body, what the room requires,
// listed here, and the schema must refuse unknown members as the room does.
var wireSchemas = []struct {
	schema   string
	v        any
	request  bool
	required []string
}{
	{schema: "RoomInfo", v: api.RoomInfo{}},
	{schema: "Principal", v: api.Principal{}, request: true, required: []string{"id", "role", "keys"}},
	{schema: "CreateCollaboration", v: api.CreateCollaboration{}, request: true, required: []string{"id", "kind", "members"}},
	{schema: "Settings", v: policy.Settings{}, request: true},
	{schema: "Activation", v: policy.Activation{}, request: true, required: []string{"members"}},
	{schema: "SettingsConstraints", v: policy.Constraints{}, request: true},
	{schema: "Collaboration", v: api.Collaboration{}},
	{schema: "Constraints", v: api.Constraints{}},
	{schema: "AcceptCollaboration", v: api.AcceptCollaboration{}, request: true, required: []string{"settings_digest"}},
	{schema: "CollaborationSummary", v: api.CollaborationSummary{}},
	{schema: "BudgetEvent", v: api.BudgetEvent{}},
	{schema: "Dataset", v: api.Dataset{}},
	{schema: "SealedSecret", v: api.SealedSecret{}, request: true, required: []string{"from", "to", "sealed"}},
	{schema: "StartUpload", v: api.StartUpload{}, request: true, required: []string{"kind", "profile", "rows_per_part", "canary"}},
	{schema: "Upload", v: api.Upload{}},
	{schema: "PartReceipt", v: api.PartReceipt{}},
	{schema: "CommitUpload", v: api.CommitUpload{}, request: true, required: []string{"digest"}},
	{schema: "Task", v: api.Task{}},
	{schema: "MatchResult", v: api.MatchResult{}},
	{schema: "QuerySpec", v: api.QuerySpec{}, request: true, required: []string{"version", "epsilon"}},
	{schema: "Metric", v: api.Metric{}, request: true, required: []string{"kind"}},
	{schema: "Cost", v: api.Cost{}, request: true},
	{schema: "Filter", v: api.Filter{}, request: true, required: []string{"column", "op"}},
	{schema: "KMeans", v: api.KMeans{}, request: true, required: []string{"k", "columns"}},
	{schema: "QueryResult", v: api.QueryResult{}},
	{schema: "Cluster", v: api.Cluster{}},
	{schema: "BudgetInfo", v: api.BudgetInfo{}},
	{schema: "PolicyState", v: api.PolicyState{}},
	{schema: "PolicyProposal", v: api.PolicyProposal{}},
	{schema: "DigestKey", v: api.DigestKey{}},
	{schema: "RequestKey", v: api.RequestKey{}},
	{schema: "ModelSpec", v: api.ModelSpec{}, request: true, required: []string{"version", "label", "features"}},
	{schema: "ModelLabel", v: api.Filter{}, request: true, required: []string{"column"}},
	{schema: "ModelResult", v: api.ModelResult{}},
	// The model file as the room writes it and the member reads it; its
	// label has the members of the spec's (ModelLabel).
	{schema: "ModelFile", v: model.Model{}},
	{schema: "ModelLabel", v: model.Label{}, request: true, required: []string{"column"}},
	{schema: "ModelFeature", v: model.Feature{}},
	{schema: "ModelTree", v: model.Tree{}},
	{schema: "ModelNode", v: model.Node{}},
	{schema: "SegmentSpec", v: api.SegmentSpec{}, request: true, required: []string{"version"}},
	{schema: "Audience", v: api.Audience{}},
	{schema: "Problem", v: api.Problem{}},
	{schema: "OK", v: okBody{}},
}

// jsonField is a struct field as encoding/json names it.
type jsonField struct {
	name      string
	omitempty bool
	typ       reflect.Type
}

// jsonFields lists the JSON members of a struct type, embedded structs
// without a tag flattened as encoding/json does.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for f := range t.Fields() {
		tag, hasTag := f.Tag.Lookup("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && !hasTag && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		omit := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
		out = append(out, jsonField{name: name, omitempty: omit, typ: f.Type})
	}
	return out
}

// TestOpenAPISchemasMatchGoTypes checks every wire type against its schema:
// the same members, of compatible types, the required ones listed.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	// Object schemas without a Go struct of their own: the health answer
	// (a map) and the JWK types (jwx's).
	paired := map[string]bool{"Health": true, "JWKSet": true, "JWK": true}
	for _, w := range wireSchemas {
		paired[w.schema] = true
	}
	for name, s := range obj(doc.root, "components", "schemas") {
		if obj(s, "properties") != nil && !paired[name] {
			t.Errorf("schema %s has properties but no Go type in wireSchemas", name)
		}
	}
	for _, w := range wireSchemas {
		t.Run(w.schema, func(t *testing.T) {
			s := obj(doc.root, "components", "schemas", w.schema)
			if s == nil {
				t.Fatalf("no schema %s", w.schema)
			}
			props := obj(s, "properties")
			fields := jsonFields(reflect.TypeOf(w.v))
			var names, required []string
			for _, f := range fields {
				names = append(names, f.name)
				if !f.omitempty {
					required = append(required, f.name)
				}
				if p, ok := props[f.name]; ok {
					checkType(t, doc, f, doc.schema(t, p), p)
				}
			}
			if w.request {
				required = w.required
				if s["additionalProperties"] != false {
					t.Errorf("the room refuses unknown members of a %s: the schema must say additionalProperties: false", w.schema)
				}
			}
			slices.Sort(names)
			slices.Sort(required)
			if got := slices.Sorted(maps.Keys(props)); !slices.Equal(got, names) {
				t.Errorf("properties %v, the Go type's JSON members %v", got, names)
			}
			gotReq := strs(s["required"])
			slices.Sort(gotReq)
			if !slices.Equal(gotReq, required) {
				t.Errorf("required %v, want %v", gotReq, required)
			}
		})
	}
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

// checkType checks that a property's schema type fits the Go field's type.
// ref is the property as written, for the error message.
func checkType(t *testing.T, doc openAPIDoc, f jsonField, s map[string]any, ref any) {
	t.Helper()
	typ := f.typ
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	var want, format string
	switch {
	case typ == rawType || typ.Kind() == reflect.Interface:
		want = "object" // a JSON document the room keeps as it is: settings, a JWK set
	case typ == timeType:
		want, format = "string", "date-time"
	case typ.Kind() == reflect.Slice && typ.Elem().Kind() == reflect.Uint8:
		want, format = "string", "byte"
	case typ.Kind() == reflect.String:
		want = "string"
	case typ.Kind() == reflect.Bool:
		want = "boolean"
	case typ.Kind() == reflect.Int64:
		want, format = "integer", "int64"
	case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Uint64:
		want = "integer"
	case typ.Kind() == reflect.Float64:
		want, format = "number", "double"
	case typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array:
		want = "array"
	case typ.Kind() == reflect.Map || typ.Kind() == reflect.Struct:
		want = "object"
	default:
		t.Errorf("%s: no schema type for Go %s", f.name, typ)
		return
	}
	var types []string
	switch v := s["type"].(type) {
	case string:
		types = []string{v}
	case []any:
		types = strs(v)
	}
	if !slices.Contains(types, want) {
		t.Errorf("%s: schema type %v (%v), Go type %s wants %s", f.name, s["type"], ref, f.typ, want)
	}
	if format != "" && s["format"] != format {
		t.Errorf("%s: format %v, Go type %s wants %s", f.name, s["format"], f.typ, format)
	}
}

// TestOpenAPIEnums checks the document's enums against the values the room
// knows.
func TestOpenAPIEnums(t *testing.T) {
	doc := loadOpenAPI(t)
	enum := func(v any) []string { return strs(obj(v)["enum"]) }
	schemas := obj(doc.root, "components", "schemas")
	var kinds []string
	for _, k := range enum(schemas["Kind"]) {
		if _, err := crypto.ParseKind(k); err != nil {
			t.Errorf("Kind %s: %v", k, err)
		}
		kinds = append(kinds, k)
	}
	for _, tc := range []struct {
		name      string
		got, want []string
	}{
		{"ProblemType", enum(schemas["ProblemType"]), problemTypes(t)},
		{"Role", enum(schemas["Role"]), slices.Collect(maps.Keys(roles))},
		{"Profile", enum(schemas["Profile"]), crypto.Profiles()},
		{"Mode", enum(schemas["Mode"]), []string{api.ModeHashed, api.ModeBlinded}},
		{"Kind", kinds, []string{string(crypto.KindEmail), string(crypto.KindPhone), string(crypto.KindMAID), string(crypto.KindCustom)}},
		{"MetricKind", enum(schemas["MetricKind"]), []string{api.MetricCount, api.MetricSum, api.MetricAvg, api.MetricMatchRate, api.MetricROI, api.MetricLift}},
		{"MetricKindOrKMeans", enum(schemas["MetricKindOrKMeans"]), policy.DefaultConstraints().AllowedMetrics},
		{"QueryResult.partitions", enum(obj(schemas, "QueryResult", "properties", "partitions")), []string{api.PartitionsDeclared, api.PartitionsSelected}},
		{"QuerySpec.version", []string{fmtAny(obj(schemas, "QuerySpec", "properties", "version")["const"])}, []string{api.QueryVersion}},
		{"ModelSpec.version", []string{fmtAny(obj(schemas, "ModelSpec", "properties", "version")["const"])}, []string{api.ModelSpecVersion}},
		{"SegmentSpec.version", []string{fmtAny(obj(schemas, "SegmentSpec", "properties", "version")["const"])}, []string{api.SegmentVersion}},
		{"ModelFile.format", []string{fmtAny(obj(schemas, "ModelFile", "properties", "format")["const"])}, []string{model.Format}},
		{"ModelFeature.kind", enum(obj(schemas, "ModelFeature", "properties", "kind")), []string{model.Categorical, model.Numeric}},
	} {
		got, want := slices.Sorted(slices.Values(tc.got)), slices.Sorted(slices.Values(tc.want))
		if len(got) == 0 || !slices.Equal(got, want) {
			t.Errorf("%s: the document says %v, the room knows %v", tc.name, got, want)
		}
	}
}

// problemTypes reads the Problem* constants of cleanroom/api/problem.go, so
// that a new problem type cannot be missing from the document.
func problemTypes(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "api/problem.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Values) != 1 || !strings.HasPrefix(vs.Names[0].Name, "Problem") {
			return true
		}
		if lit, ok := vs.Values[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(s, "/problems/") {
				out = append(out, s)
			}
		}
		return true
	})
	if len(out) < 10 {
		t.Fatalf("found %d problem types in api/problem.go", len(out))
	}
	return out
}
