package cleanroom

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// The OpenAPI document (cleanroom/api/openapi.yaml) is kept in step with
// the room by these tests, which read it as data: its operations are the
// routes the room serves, its schemas are the Go wire types, and its enums
// are the values the room knows. TestOpenAPIClientFlow then drives a room
// through a client generated from it.

// openAPIDoc is the document as generic YAML.
type openAPIDoc struct{ root map[string]any }

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := yaml.Unmarshal(api.OpenAPI, &doc.root); err != nil {
		t.Fatal(err)
	}
	if doc.root["openapi"] != "3.1.0" {
		t.Fatalf("openapi: %v, want 3.1.0", doc.root["openapi"])
	}
	return doc
}

// obj returns the object at a path of keys, or nil.
func obj(v any, path ...string) map[string]any {
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	m, _ := v.(map[string]any)
	return m
}

func strs(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		out = append(out, fmtAny(x))
	}
	return out
}

func fmtAny(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// schema returns a component schema; a $ref is followed.
func (d openAPIDoc) schema(t *testing.T, v any) map[string]any {
	t.Helper()
	for range 8 {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("not a schema: %v", v)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		if !ok {
			t.Fatalf("unexpected reference %s", ref)
		}
		if v = obj(d.root, "components", "schemas")[name]; v == nil {
			t.Fatalf("%s does not resolve", ref)
		}
	}
	t.Fatal("reference loop")
	return nil
}

var methods = []string{"get", "put", "post", "delete", "patch"}

// TestOpenAPIRoutes checks that the document has exactly the room's routes,
// and that each operation is complete: an operationId, tags the document
// defines, a success, its path parameters declared, security as the route
// is served, and a request body exactly when the route reads one.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	served := map[string]route{}
	for _, rt := range (&Room{}).routes() {
		served[rt.pattern] = rt
	}
	tags := map[string]bool{}
	for _, tg := range doc.root["tags"].([]any) {
		tags[obj(tg)["name"].(string)] = true
	}
	ids := map[string]string{}
	documented := map[string]bool{}
	param := regexp.MustCompile(`\{([^}]+)\}`)
	for path, item := range obj(doc.root, "paths") {
		var inPath []string
		for _, m := range param.FindAllStringSubmatch(path, -1) {
			inPath = append(inPath, m[1])
		}
		slices.Sort(inPath)
		pathParams := strs(nil)
		for _, p := range asList(obj(item)["parameters"]) {
			pathParams = append(pathParams, doc.parameter(t, p, path))
		}
		for _, m := range methods {
			op := obj(item, m)
			if op == nil {
				continue
			}
			key := strings.ToUpper(m) + " " + path
			documented[key] = true
			rt, ok := served[key]
			if !ok {
				t.Errorf("%s is in openapi.yaml but not served", key)
				continue
			}
			declared := slices.Clone(pathParams)
			for _, p := range asList(op["parameters"]) {
				if name := doc.parameter(t, p, path); name != "" {
					declared = append(declared, name)
				}
			}
			slices.Sort(declared)
			declared = slices.DeleteFunc(declared, func(s string) bool { return s == "" })
			if !slices.Equal(declared, inPath) {
				t.Errorf("%s: path parameters declared %v, in the path %v", key, declared, inPath)
			}
			id, _ := op["operationId"].(string)
			if id == "" {
				t.Errorf("%s has no operationId", key)
			} else if other, dup := ids[id]; dup {
				t.Errorf("%s and %s share the operationId %s", key, other, id)
			}
			ids[id] = key
			opTags := strs(op["tags"])
			if len(opTags) == 0 {
				t.Errorf("%s has no tags", key)
			}
			for _, tg := range opTags {
				if !tags[tg] {
					t.Errorf("%s: tag %s is not defined", key, tg)
				}
			}
			responses := obj(op, "responses")
			if !slices.ContainsFunc(slices.Collect(maps.Keys(responses)), func(s string) bool { return strings.HasPrefix(s, "2") }) {
				t.Errorf("%s documents no success", key)
			}
			sec, hasSec := op["security"]
			public := hasSec && len(asList(sec)) == 0
			if public != rt.public {
				t.Errorf("%s: public in the document %v, served public %v", key, public, rt.public)
			}
			if !rt.public && responses["401"] == nil {
				t.Errorf("%s does not document its 401", key)
			}
			if (op["requestBody"] != nil) != (rt.body > 0) {
				t.Errorf("%s: request body documented %v, the route reads one %v", key, op["requestBody"] != nil, rt.body > 0)
			}
		}
	}
	for key := range served {
		if !documented[key] {
			t.Errorf("%s is served but not in openapi.yaml", key)
		}
	}
	if len(served) < 25 {
		t.Fatalf("only %d routes found", len(served))
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

// parameter returns the name of a path parameter (following a $ref), or ""
// for one in the query or a header; a path parameter must be required.
func (d openAPIDoc) parameter(t *testing.T, v any, path string) string {
	t.Helper()
	p := obj(v)
	if ref, ok := p["$ref"].(string); ok {
		name, ok := strings.CutPrefix(ref, "#/components/parameters/")
		if p = obj(d.root, "components", "parameters", name); !ok || p == nil {
			t.Fatalf("%s: parameter %s does not resolve", path, ref)
		}
	}
	if p["in"] != "path" {
		return ""
	}
	if p["required"] != true {
		t.Errorf("%s: path parameter %v is not required", path, p["name"])
	}
	return p["name"].(string)
}
