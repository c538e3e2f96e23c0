package client

import (
	"testing"

	"github.com/opencleanroom/cleanroom/policy"
)

// TestActionAuditExport: the client names the export's action as the
// policy does, without linking the policy engine.
func TestActionAuditExport(t *testing.T) {
	if actionAuditExport != string(policy.ActionAuditExport) {
		t.Fatalf("the client looks for %q, the room logs %q", actionAuditExport, policy.ActionAuditExport)
	}
}
