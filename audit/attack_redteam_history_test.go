package audit

import (
	"bytes"
	"context"
	"testing"
)

// TestAttackRedteamManyCheckpoints: a room signs a checkpoint at every
// export, every GET /v1/audit/checkpoint (which any auditor may ask for),
// every CheckpointEvery entries and every CheckpointInterval (10 s by
// default) with new entries. Were each bundle to carry every checkpoint
// ever signed with its consistency proof, its header would grow with the
// log's age (about 0.7 KB a checkpoint: past any bound a verifier could
// hold it to, bundle.MaxHeader's 8 MiB within a day at the interval alone) and each export would compute a proof apiece. A full
// bundle carries at most maxRangeCheckpoints from inside its range, a
// sparse one none, and each the reader's own when it names it.
//
// The measure: the header's size, as the room signs a checkpoint after
// every entry, against a bound that does not grow with the count.
func TestAttackRedteamManyCheckpoints(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir(), testOpts())
	const n = 3000
	var mid *Checkpoint
	for i := 0; i < n; i++ {
		appendN(t, l, i, 1)
		c, err := l.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i == n/3 {
			mid = c
		}
	}
	header := func(b []byte) int { h, _, _ := bytes.Cut(b, []byte("\n")); return len(h) }
	var full, recent, sparse bytes.Buffer
	if err := l.Export(ctx, &full, 0, 0, mid); err != nil {
		t.Fatal(err)
	}
	if err := l.Export(ctx, &recent, n-100, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.ExportScoped(ctx, &sparse, Scope{Collaborations: []string{"collab-1"}, To: 5, Extends: mid}); err != nil {
		t.Fatal(err)
	}
	const perCheckpoint = 1024 // a signed note and a proof of log2(n) hashes, with room to spare
	for _, tc := range []struct {
		name  string
		b     []byte
		count int // checkpoints in the report: the export's, those in range, the reader's
		bound int // bytes of header allowed
		since []byte
	}{
		{"full", full.Bytes(), 1 + maxRangeCheckpoints, (2 + maxRangeCheckpoints) * perCheckpoint, mid.Note},
		{"full, the last 100 entries", recent.Bytes(), 1 + 99, (2 + 100) * perCheckpoint, nil},
		{"sparse", sparse.Bytes(), 2, 3 * perCheckpoint, mid.Note},
	} {
		rep, err := Verify(bytes.NewReader(tc.b), testVerifier(t), tc.since)
		if err != nil {
			t.Errorf("%s bundle of an honest log: %v", tc.name, err)
			continue
		}
		t.Logf("%s bundle after %d checkpoints: header of %d bytes, %d checkpoints (bound %d bytes)", tc.name, n, header(tc.b), rep.Checkpoints, tc.bound)
		if header(tc.b) > tc.bound || rep.Checkpoints > tc.count {
			t.Errorf("%s bundle: header of %d bytes with %d checkpoints, want at most %d bytes and %d", tc.name, header(tc.b), rep.Checkpoints, tc.bound, tc.count)
		}
		if tc.since != nil && rep.Since != mid.Size {
			t.Errorf("%s bundle: does not prove it extends the reader's checkpoint of %d", tc.name, mid.Size)
		}
	}
}

// TestCheckpointOfEmptyLog: a checkpoint signed before the log's first
// entry (size 0) has no consistency proof to give; the exports after it
// carry none for it, and a reader holding it sees the log extend it.
func TestCheckpointOfEmptyLog(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir(), testOpts())
	empty, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 5)
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	var full, sparse bytes.Buffer
	if err := l.Export(ctx, &full, 0, 0, nil); err != nil {
		t.Fatalf("export after a checkpoint of the empty log: %v", err)
	}
	if err := l.ExportScoped(ctx, &sparse, Scope{Collaborations: []string{"collab-1"}}); err != nil {
		t.Fatalf("scoped export after a checkpoint of the empty log: %v", err)
	}
	for name, b := range map[string][]byte{"full": full.Bytes(), "sparse": sparse.Bytes()} {
		if _, err := Verify(bytes.NewReader(b), testVerifier(t), empty.Note); err != nil {
			t.Errorf("%s bundle --since the empty log's checkpoint: %v", name, err)
		}
	}
}
