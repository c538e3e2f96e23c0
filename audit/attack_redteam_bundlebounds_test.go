package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

// splitHeader returns a bundle's header line and the rest (from the first
// entry line on).
func splitHeader(t *testing.T, b []byte) (map[string]json.RawMessage, []byte) {
	t.Helper()
	line, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		t.Fatal("no header")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	return m, rest
}

// TestAttackRedteamHistoryFlood: the room writes at most
// MaxRangeCheckpoints+1 history entries in a full bundle and one in a
// sparse one. A verifier that took any number would check an Ed25519
// signature and a proof for each, and keep each parsed: a room answering
// every refresh of the auditor's console, and every audit verify, with a
// header of N copies of its latest checkpoint (the empty proof is valid
// when the sizes are equal) would cost it minutes of CPU and gigabytes at
// the size a header could take (40,000 copies, about 9 MB: 3.9-4.5 s and
// 171 MB allocated). Verify refuses a history beyond the format's bound
// before it checks any, and a header beyond MaxHeader.
//
// The measure: the flooded bundles that verify (none allowed), and the
// time a refusal takes.
func TestAttackRedteamHistoryFlood(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir(), testOpts())
	appendN(t, l, 0, 4)
	mid, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 4, 4)
	var buf bytes.Buffer
	if err := l.ExportScoped(ctx, &buf, Scope{Collaborations: []string{"collab-1"}, Extends: mid}); err != nil {
		t.Fatal(err)
	}
	m, rest := splitHeader(t, buf.Bytes())
	var hist []json.RawMessage
	json.Unmarshal(m["history"], &hist)
	if len(hist) != 1 {
		t.Fatalf("want the reader's checkpoint in the history, got %d", len(hist))
	}
	one, _ := json.Marshal(map[string]any{"checkpoint": json.RawMessage(m["checkpoint"]), "proof": nil})
	for _, n := range []int{2, 2000, 40000} {
		flood := make([]json.RawMessage, 0, n+1)
		for range n {
			flood = append(flood, one)
		}
		flood = append(flood, hist[0]) // the reader's, last
		m["history"], _ = json.Marshal(flood)
		head, _ := json.Marshal(m)
		b := append(append(head, '\n'), rest...)
		start := time.Now()
		_, err := Verify(bytes.NewReader(b), testVerifier(t), mid.Note)
		took := time.Since(start)
		t.Logf("a sparse bundle with %d history entries (a header of %d bytes): refused in %v: %v", n+1, len(head), took, err)
		if err == nil {
			t.Errorf("a sparse bundle with %d history entries (the room writes at most 1) verifies", n+1)
		}
	}
}
