package cleanroom

import (
	"bufio"
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestOpenAPIInSync checks that openapi.yaml documents exactly the room's
// routes: every method and path the server handles, and nothing else.
func TestOpenAPIInSync(t *testing.T) {
	var documented []string
	path := ""
	s := bufio.NewScanner(bytes.NewReader(api.OpenAPI))
	inPaths := false
	for s.Scan() {
		line := s.Text()
		switch {
		case line == "paths:":
			inPaths = true
		case !inPaths:
		case strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":"):
			path = strings.TrimSuffix(strings.TrimSpace(line), ":")
		case strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     ") && strings.HasSuffix(line, ":"):
			method := strings.ToUpper(strings.TrimSuffix(strings.TrimSpace(line), ":"))
			documented = append(documented, method+" "+path)
		}
	}
	r := &Room{}
	served := []string{"GET /metrics"}
	for _, rt := range r.routes() {
		served = append(served, rt.pattern)
	}
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		for _, p := range served {
			if !slices.Contains(documented, p) {
				t.Errorf("served but not in openapi.yaml: %s", p)
			}
		}
		for _, p := range documented {
			if !slices.Contains(served, p) {
				t.Errorf("in openapi.yaml but not served: %s", p)
			}
		}
	}
	if len(served) < 20 {
		t.Fatalf("only %d routes found", len(served))
	}
}
