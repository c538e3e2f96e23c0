package audit

import (
	"bytes"
	"context"
	"testing"
)

// TestAttackRedteamManyCheckpoints: every export carries every checkpoint
// the room ever signed, with its consistency proof, in one header line. A
// room signs a checkpoint at every export, every GET /v1/audit/checkpoint
// (which any auditor may ask for) and every CheckpointInterval (10 s by
// default) with new entries; were the header held to the 1 MiB of an
// entry line, no bundle of the room would verify after about 1,500 of
// them. The header may take up to maxHeader (1 GiB).
func TestAttackRedteamManyCheckpoints(t *testing.T) {
	ctx := context.Background()
	l := openLog(t, t.TempDir(), testOpts())
	const n = 1500
	for i := 0; i < n; i++ {
		appendN(t, l, i, 1)
		if _, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var full, sparse bytes.Buffer
	if err := l.Export(ctx, &full, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.ExportScoped(ctx, &sparse, Scope{Collaborations: []string{"collab-1"}, To: 5}); err != nil {
		t.Fatal(err)
	}
	hdr, _, _ := bytes.Cut(full.Bytes(), []byte("\n"))
	t.Logf("%d checkpoints: header line of %d bytes (%d per checkpoint)", n, len(hdr), len(hdr)/n)
	if _, err := Verify(bytes.NewReader(full.Bytes()), testVerifier(t), nil); err != nil {
		t.Errorf("full bundle of an honest log does not verify: %v", err)
	}
	if _, err := Verify(bytes.NewReader(sparse.Bytes()), testVerifier(t), nil); err != nil {
		t.Errorf("sparse bundle of an honest log does not verify: %v", err)
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
	if err := l.Export(ctx, &full, 0, 0); err != nil {
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
