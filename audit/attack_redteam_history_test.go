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
