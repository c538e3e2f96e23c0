package cleanroom

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestWriteJSON: an answer goes out whole, with its length; one that does
// not encode is the room's error (500, a problem), never an empty 200.
func TestWriteJSON(t *testing.T) {
	for _, tc := range []struct {
		name   string
		v      any
		status int
	}{
		{"an answer", map[string]any{"rows": [][]any{{1.5, nil}}}, http.StatusOK},
		{"a number JSON cannot hold", map[string]any{"rows": [][]any{{math.Inf(1)}}}, http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			writeJSON(w, http.StatusOK, tc.v)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if got := w.Header().Get("Content-Length"); got != strconv.Itoa(w.Body.Len()) {
				t.Errorf("Content-Length %q for a body of %d bytes", got, w.Body.Len())
			}
			var p api.Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatalf("the body is not JSON: %q", w.Body.String())
			}
			if tc.status != http.StatusOK && (p.Type != api.ProblemInternal || p.Status != tc.status) {
				t.Errorf("the problem %+v, want an internal error", p)
			}
		})
	}
}
