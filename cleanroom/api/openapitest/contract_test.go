package openapitest

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestContractCheck shows that Contract tells answers the document
// describes from answers it does not, so that a flow that passes through it
// proves something.
func TestContractCheck(t *testing.T) {
	c, err := LoadContract(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	const (
		hex64     = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		jsonCT    = "application/json"
		problemCT = "application/problem+json"
		dataset   = `{"upload":"up-1","rows":1200,"columns":%s,"digest":"` + hex64 + `","kind":"email","profile":"pair-v1","layers":2,"ready":true,"uploaded":%s}`
		commit    = "/v1/collaborations/c1/uploads/up-1/commit"
		denied    = `{"type":"/problems/denied","title":"refused","status":403,"reasons":["only members of the collaboration may act on it"]}`
	)
	ds := func(columns, uploaded string) string {
		return strings.Replace(strings.Replace(dataset, "%s", columns, 1), "%s", uploaded, 1)
	}
	for _, tc := range []struct {
		name, method, path string
		status             int
		ct, body           string
		ok                 bool
	}{
		{"room", "GET", "/v1/room", 200, jsonCT, `{"id":"r","audit_origin":"o","verifier_key":"k"}`, true},
		{"room, a member missing", "GET", "/v1/room", 200, jsonCT, `{"id":"r","audit_origin":"o"}`, false},
		{"room, a member of another type", "GET", "/v1/room", 200, jsonCT, `{"id":1,"audit_origin":"o","verifier_key":"k"}`, false},
		{"room as text", "GET", "/v1/room", 200, "text/plain", `{"id":"r","audit_origin":"o","verifier_key":"k"}`, false},
		{"a status not listed", "GET", "/v1/room", 404, problemCT, `{"type":"/problems/not-found","title":"x","status":404}`, false},
		{"no such operation", "DELETE", "/v1/room", 200, jsonCT, `{}`, false},
		{"a dataset", "POST", commit, 200, jsonCT, ds(`["band"]`, `"2026-01-02T03:04:05Z"`), true},
		{"a dataset without columns", "POST", commit, 200, jsonCT, ds(`[]`, `"2026-01-02T03:04:05Z"`), true},
		{"a dataset with null for its columns", "POST", commit, 200, jsonCT, ds(`null`, `"2026-01-02T03:04:05Z"`), false},
		{"a dataset uploaded at no time", "POST", commit, 200, jsonCT, ds(`["band"]`, `"yesterday"`), false},
		{"a denial", "GET", "/v1/collaborations/c1", 403, problemCT, denied, true},
		{"a denial of an unknown type", "GET", "/v1/collaborations/c1", 403, problemCT, strings.Replace(denied, "/problems/denied", "/problems/nope", 1), false},
		{"a denial as JSON", "GET", "/v1/collaborations/c1", 403, jsonCT, denied, false},
		{"a digest key", "GET", "/v1/collaborations/c1/digest-key", 200, jsonCT, `{"collaboration":"c1","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","id":"` + hex64 + `"}`, true},
		{"a digest key not in base64", "GET", "/v1/collaborations/c1/digest-key", 200, jsonCT, `{"collaboration":"c1","key":"not base64!","id":"` + hex64 + `"}`, false},
		{"a relay part", "GET", "/v1/collaborations/c1/tasks/task-1/parts/0", 200, "application/octet-stream", "\x01\x02", true},
		{"an export", "GET", "/v1/audit/export", 200, "text/plain; charset=utf-8", "{}\nend 0\n", true},
		{"two JSON values", "GET", "/v1/principals/me", 200, jsonCT, `{"id":"a","role":"partner","keys":{"keys":[]}} {}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {tc.ct}}
			err := c.Check(tc.method, tc.path, tc.status, h, []byte(tc.body))
			if (err == nil) != tc.ok {
				t.Errorf("Check: %v, want ok %v", err, tc.ok)
			}
		})
	}
	if seen := c.Seen(); !slices.Contains(seen, "getRoom") || slices.Contains(seen, "getSelf") {
		t.Errorf("seen %v", seen)
	}
	if n := len(c.Operations()); n < 25 {
		t.Errorf("%d operations", n)
	}
}
