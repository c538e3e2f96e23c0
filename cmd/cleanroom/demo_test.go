package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestDemoHashed runs the whole demo, small, in hashed mode: every step
// through the real room, and the report it prints.
func TestDemoHashed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a room end to end")
	}
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb}
	if code := run(e, []string{"demo", "--mode", "hashed", "--rows", "4000", "--overlap", "50", "--json"}); code != 0 {
		t.Fatalf("demo exited %d: %s", code, errb.String())
	}
	var rep struct {
		Matched   int64              `json:"matched_overlap"`
		True      int                `json:"true_overlap"`
		Verified  bool               `json:"audit_verified"`
		Phases    map[string]float64 `json:"phase_seconds"`
		PhaseCPU  map[string]float64 `json:"phase_cpu_seconds"`
		Lookalike struct {
			RowsScored int64   `json:"rows_scored"`
			AUC        float64 `json:"model_auc_outside_overlap"`
		} `json:"lookalike"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("the report: %v", err)
	}
	if rep.True != 2000 || rep.Matched != 2000 || !rep.Verified {
		t.Fatalf("matched %d of %d, audit verified %v", rep.Matched, rep.True, rep.Verified)
	}
	if rep.Lookalike.RowsScored != 4000 || rep.Lookalike.AUC <= 0 || rep.Lookalike.AUC > 1 {
		t.Fatalf("scored %d rows, AUC outside the overlap %v", rep.Lookalike.RowsScored, rep.Lookalike.AUC)
	}
	for _, p := range []string{"data", "upload", "match", "queries", "model", "scoring", "activation", "audit"} {
		if _, ok := rep.Phases[p]; !ok {
			t.Errorf("no %s phase in %v", p, rep.Phases)
		}
		if _, ok := processCPU(); ok && rep.PhaseCPU[p] <= 0 && p != "audit" && p != "data" {
			t.Errorf("no CPU time of the %s phase in %v", p, rep.PhaseCPU)
		}
	}
}

func TestFirstLastFields(t *testing.T) {
	for _, tc := range []struct{ line, first, last string }{
		{"customer0000042@example.com,18-24,north,12.50,1,3.50,0.523456\n", "customer0000042@example.com", "0.523456"},
		{"customer0000042@example.com,0.5\r\n", "customer0000042@example.com", "0.5"},
		{"customer0000042@example.com,0.5", "customer0000042@example.com", "0.5"},
		{`" Customer0000042@example.com ","a,b",0.25` + "\n", " Customer0000042@example.com ", "0.25"},
	} {
		first, last, err := firstLastFields([]byte(tc.line))
		if err != nil || string(first) != tc.first || string(last) != tc.last {
			t.Errorf("firstLastFields(%q) = %q, %q, %v", tc.line, first, last, err)
		}
	}
	for _, bad := range []string{"one field\n", `"unterminated,0.5` + "\n"} {
		if _, _, err := firstLastFields([]byte(bad)); err == nil {
			t.Errorf("firstLastFields(%q): no error", bad)
		}
	}
}
