package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestAttackRedteamHeaderCheckpointKeyVariants: encoding/json matches a
// header's member names case-insensitively (and folds U+212A KELVIN SIGN
// to k) and keeps the last of duplicates. A room that wrote
// {"checkpoint": DECOY, ..., "Checkpoint": REAL} would have Verify check
// REAL while any reader matching names exactly (jq .checkpoint, Python,
// JavaScript, Go into a map) takes DECOY, a checkpoint the room signed of
// a fork; an auditor keeping DECOY would later be shown the fork, and
// verify --since DECOY would pass. Verify refuses such a header: names
// exactly as the format writes them, each once, nothing else.
//
// The measure: crafted headers that verify, of all tried; none allowed.
func TestAttackRedteamHeaderCheckpointKeyVariants(t *testing.T) {
	ctx := context.Background()
	real := openLog(t, t.TempDir(), testOpts())
	fork := openLog(t, t.TempDir(), testOpts()) // the same key: the room's
	appendN(t, real, 0, 5)
	appendN(t, fork, 100, 5)
	decoy, err := fork.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mid, err := real.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, real, 5, 3)
	var full, sparse bytes.Buffer
	if err := real.Export(ctx, &full, 0, 0, mid); err != nil {
		t.Fatal(err)
	}
	if err := real.ExportScoped(ctx, &sparse, Scope{Collaborations: []string{"collab-1"}, Extends: mid}); err != nil {
		t.Fatal(err)
	}
	decoyJSON, _ := json.Marshal(string(decoy.Note))
	d := string(decoyJSON)
	variants := []struct{ name, old, new string }{
		{"a second checkpoint, capitalized", `"checkpoint":`, `"checkpoint":` + d + `,"Checkpoint":`},
		{"a second checkpoint, with KELVIN SIGN", `"checkpoint":`, `"checkpoint":` + d + `,"chec\u212apoint":`},
		{"the same name twice", `"checkpoint":`, `"checkpoint":` + d + `,"checkpoint":`},
		{"a capitalized name alone", `"checkpoint":`, `"CHECKPOINT":`},
		{"a member outside the format", `"checkpoint":`, `"note":` + d + `,"checkpoint":`},
		{"a history entry's checkpoint twice", `"history":[{"checkpoint":`, `"history":[{"checkpoint":` + d + `,"checkpoint":`},
		{"another origin", `"origin":"`, `"origin":"x`},
	}
	accepted, tried := 0, 0
	for _, b := range map[string]string{"full": full.String(), "sparse": sparse.String()} {
		if _, err := Verify(strings.NewReader(b), testVerifier(t), mid.Note); err != nil {
			t.Fatalf("the honest bundle: %v", err)
		}
		for _, v := range variants {
			crafted := strings.Replace(b, v.old, v.new, 1)
			if crafted == b {
				t.Fatalf("%s: nothing replaced", v.name)
			}
			tried++
			if _, err := Verify(strings.NewReader(crafted), testVerifier(t), mid.Note); err == nil {
				accepted++
				t.Errorf("%s: the header verifies", v.name)
			}
		}
	}
	t.Logf("crafted headers that verify: %d of %d", accepted, tried)
}
