package openapitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// docURL names the document inside the schema compiler. Every reference in
// it is local ("#/components/..."), so nothing is ever fetched from it.
const docURL = "https://cleanroom.invalid/openapi.json"

// Contract is an OpenAPI 3.1 document compiled to check a server's answers
// against it: the status must be one the operation lists (or its default),
// the media type one the response lists, and a JSON body valid under the
// response's schema (JSON Schema 2020-12, with formats such as date-time
// and base64 content asserted).
type Contract struct {
	ops      []operation
	doc      map[string]any
	compiler *jsonschema.Compiler

	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema // by JSON pointer
	seen    map[string]bool               // operation ids answered
}

// operation is one method of one path item.
type operation struct {
	method string
	segs   []string // the path template's segments; "{x}" matches any
	id     string
	ptr    string // JSON pointer to the operation object
	obj    map[string]any
}

// LoadContract compiles an OpenAPI document given in YAML or JSON.
func LoadContract(doc []byte) (*Contract, error) {
	var y any
	if err := yaml.Unmarshal(doc, &y); err != nil {
		return nil, fmt.Errorf("openapitest: parsing the document: %w", err)
	}
	// Round trip through JSON, so that numbers are what a JSON reader
	// (and the schema compiler) sees.
	j, err := json.Marshal(y)
	if err != nil {
		return nil, fmt.Errorf("openapitest: the document is not JSON-compatible: %w", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return nil, err
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("openapitest: the document is not an object")
	}
	c := &Contract{doc: root, compiler: jsonschema.NewCompiler(), schemas: map[string]*jsonschema.Schema{}, seen: map[string]bool{}}
	c.compiler.DefaultDraft(jsonschema.Draft2020)
	c.compiler.AssertFormat()
	c.compiler.AssertContent()
	if err := c.compiler.AddResource(docURL, root); err != nil {
		return nil, err
	}
	paths, _ := root["paths"].(map[string]any)
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		item, _ := paths[p].(map[string]any)
		for _, m := range []string{"get", "put", "post", "delete", "patch", "head", "options"} {
			obj, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			id, _ := obj["operationId"].(string)
			c.ops = append(c.ops, operation{method: strings.ToUpper(m), segs: strings.Split(p, "/"), id: id,
				ptr: "/paths/" + escape(p) + "/" + m, obj: obj})
		}
	}
	return c, nil
}

// Operations returns the ids of the document's operations, sorted.
func (c *Contract) Operations() []string {
	var ids []string
	for _, op := range c.ops {
		ids = append(ids, op.id)
	}
	slices.Sort(ids)
	return ids
}

// Seen returns the ids of the operations whose answers Check accepted,
// sorted.
func (c *Contract) Seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.seen))
}

// Check checks one answer to method and path (a request's path, not a
// template) against the document.
func (c *Contract) Check(method, path string, status int, h http.Header, body []byte) error {
	op, err := c.operation(method, path)
	if err != nil {
		return err
	}
	responses, _ := op.obj["responses"].(map[string]any)
	ptr := op.ptr + "/responses/"
	code := strconv.Itoa(status)
	var resp any
	for _, k := range []string{code, code[:1] + "XX", "default"} {
		if r, ok := responses[k]; ok {
			resp, ptr = r, ptr+k
			break
		}
	}
	if resp == nil {
		return fmt.Errorf("%s answered %d, a status the document does not list", op.id, status)
	}
	r, ptr, err := c.resolve(resp, ptr)
	if err != nil {
		return err
	}
	content, _ := r["content"].(map[string]any)
	if len(content) == 0 {
		if len(body) > 0 {
			return fmt.Errorf("%s answered %d with a body the document does not describe", op.id, status)
		}
		c.saw(op.id)
		return nil
	}
	got, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return fmt.Errorf("%s answered %d without a valid Content-Type", op.id, status)
	}
	var key string
	for k := range content {
		if mt, _, err := mime.ParseMediaType(k); err == nil && mt == got {
			key = k
		}
	}
	if key == "" {
		return fmt.Errorf("%s answered %d as %s, a media type the document does not list for it", op.id, status, got)
	}
	if got == "application/json" || strings.HasSuffix(got, "+json") {
		if err := c.validate(ptr+"/content/"+escape(key)+"/schema", body); err != nil {
			return fmt.Errorf("%s answered %d: %w", op.id, status, err)
		}
	}
	c.saw(op.id)
	return nil
}

func (c *Contract) saw(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[id] = true
}

// operation finds the operation that serves method and path; a literal
// segment is preferred to a template's parameter.
func (c *Contract) operation(method, path string) (*operation, error) {
	segs := strings.Split(path, "/")
	var best *operation
	bestParams := -1
	for i := range c.ops {
		op := &c.ops[i]
		if op.method != method || len(op.segs) != len(segs) {
			continue
		}
		params, ok := 0, true
		for j, s := range op.segs {
			switch {
			case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && segs[j] != "":
				params++
			case s != segs[j]:
				ok = false
			}
		}
		if ok && (best == nil || params < bestParams) {
			best, bestParams = op, params
		}
	}
	if best == nil {
		return nil, fmt.Errorf("the document has no operation for %s %s", method, path)
	}
	return best, nil
}

// resolve follows a response's $ref, returning the response object and
// its JSON pointer.
func (c *Contract) resolve(v any, ptr string) (map[string]any, string, error) {
	for range 8 {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, "", fmt.Errorf("%s is not an object", ptr)
		}
		ref, ok := obj["$ref"].(string)
		if !ok {
			return obj, ptr, nil
		}
		target, ok := strings.CutPrefix(ref, "#")
		if !ok {
			return nil, "", fmt.Errorf("%s: only local references are followed (%s)", ptr, ref)
		}
		if v = c.lookup(target); v == nil {
			return nil, "", fmt.Errorf("%s: %s does not resolve", ptr, ref)
		}
		ptr = target
	}
	return nil, "", fmt.Errorf("%s: too many references", ptr)
}

// lookup returns the value at a JSON pointer into the document.
func (c *Contract) lookup(ptr string) any {
	var v any = c.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)]
	}
	return v
}

// validate checks a JSON body against the schema at ptr.
func (c *Contract) validate(ptr string, body []byte) error {
	c.mu.Lock()
	sch, ok := c.schemas[ptr]
	if !ok {
		var err error
		if sch, err = c.compiler.Compile(docURL + "#" + ptr); err != nil {
			c.mu.Unlock()
			return fmt.Errorf("compiling the schema at %s: %w", ptr, err)
		}
		c.schemas[ptr] = sch
	}
	c.mu.Unlock()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("the body is not one JSON value: %w", err)
	}
	return sch.Validate(v)
}

// Doer returns a client transport that sends every request through next and
// checks every answer with Check; an answer the document does not describe
// is returned as an error, so the generated client's call fails.
func (c *Contract) Doer(next HttpRequestDoer) HttpRequestDoer {
	return checkingDoer{c: c, next: next}
}

type checkingDoer struct {
	c    *Contract
	next HttpRequestDoer
}

func (d checkingDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.next.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := d.c.Check(req.Method, req.URL.Path, resp.StatusCode, resp.Header, body); err != nil {
		return nil, fmt.Errorf("openapitest: %s %s: %w", req.Method, req.URL.Path, err)
	}
	return resp, nil
}

// escape escapes a JSON pointer token.
func escape(s string) string { return strings.NewReplacer("~", "~0", "/", "~1").Replace(s) }
