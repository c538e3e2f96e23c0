package cleanroom

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestRequestSizesBounded: integers a request declares are bounded by the
// policy and by range checks before anything is sized by them, and the room
// answers the next request.
//
// It runs alone (not in parallel) to measure what the room allocates.
func TestRequestSizesBounded(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	tr.collab("c1", api.ModeHashed, nil, a, b)
	canary := madeUpCanary("email")
	// Rows declared at the commit, one to a part.
	up := startUpload(t, tr, api.StartUpload{Kind: "email", Profile: "pair-v1", Columns: []string{"region"}, Rows: 0, RowsPerPart: 1, Canary: canary})
	upload := "/v1/collaborations/c1/uploads/" + up.ID

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		maxAlloc                 uint64 // bytes the room may allocate answering, if checked
	}{
		// 2^32 - 5 parts of one row: the digests alone would take 64 GiB.
		{"commit of 2^32-5 rows", "POST", upload + "/commit", `{"digest":"00","rows":4294967291}`, http.StatusForbidden, 256 << 20},
		{"commit of 2^32 rows", "POST", upload + "/commit", `{"digest":"00","rows":4294967296}`, http.StatusBadRequest, 256 << 20},
		// The policy's largest list, in parts of one row, none stored.
		{"commit of the largest list, parts missing", "POST", upload + "/commit", `{"digest":"00","rows":100000000}`, http.StatusConflict, 256 << 20},
		{"part beyond the largest list", "PUT", upload + "/parts/100000000", "", http.StatusBadRequest, 0},
		{"part number beyond int64", "PUT", upload + "/parts/99999999999999999999", "", http.StatusBadRequest, 0},
		{"rows_per_part beyond int", "POST", "/v1/collaborations/c1/uploads", `{"kind":"email","profile":"pair-v1","rows":1000,"rows_per_part":9223372036854775808}`, http.StatusBadRequest, 0},
		{"negative rows", "POST", "/v1/collaborations/c1/uploads", `{"kind":"email","profile":"pair-v1","rows":-1,"rows_per_part":1}`, http.StatusBadRequest, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			resp, body := requestAt(t, tr, tr.url, "alpha", tc.method, tc.path, []byte(tc.body))
			runtime.ReadMemStats(&m1)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if grew := m1.TotalAlloc - m0.TotalAlloc; tc.maxAlloc > 0 && grew > tc.maxAlloc {
				t.Errorf("the room allocated %d MiB answering", grew>>20)
			}
			if resp, _ := requestAt(t, tr, tr.url, "alpha", "GET", upload, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("the next request: %d", resp.StatusCode)
			}
		})
	}
}

// TestExpiresInHoursRange: a collaboration's lifetime is 0 (none) to ten
// years; a larger one is refused, never wrapped into an expired one.
func TestExpiresInHoursRange(t *testing.T) {
	t.Parallel()
	tr := startRoom(t)
	tr.partner("alpha", policy.RolePartner, "")
	tr.partner("bravo", policy.RolePartner, "")
	for i, tc := range []struct {
		hours  int
		status int
	}{
		{math.MaxInt, http.StatusBadRequest},
		{87601, http.StatusBadRequest},
		{-1, http.StatusBadRequest},
		{87600, http.StatusCreated},
		{1, http.StatusCreated},
		{0, http.StatusCreated},
	} {
		id := "c" + strconv.Itoa(i)
		body, _ := json.Marshal(api.CreateCollaboration{ID: id, Kind: "email", Members: []string{"alpha", "bravo"},
			Settings: fmt.Appendf(nil, `{"expires_in_hours": %d}`, tc.hours)})
		resp, out := requestAt(t, tr, tr.url, "alpha", "POST", "/v1/collaborations", body)
		if resp.StatusCode != tc.status {
			t.Errorf("%d hours: status %d, want %d: %s", tc.hours, resp.StatusCode, tc.status, out)
			continue
		}
		if resp.StatusCode != http.StatusCreated {
			continue
		}
		var c api.Collaboration
		if err := json.Unmarshal(out, &c); err != nil {
			t.Fatal(err)
		}
		want := time.Now().Add(time.Duration(tc.hours) * time.Hour)
		switch {
		case tc.hours == 0 && c.ExpiresAt != nil:
			t.Errorf("no expiry asked, expires at %v", c.ExpiresAt)
		case tc.hours > 0 && (c.ExpiresAt == nil || c.ExpiresAt.Sub(want).Abs() > time.Minute):
			t.Errorf("%d hours: expires at %v, want about %v", tc.hours, c.ExpiresAt, want)
		}
	}
}
