package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"log"
	"os"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/opencleanroom/cleanroom/audit"
)

// A room logs a decision, exports its log, and an auditor verifies the
// export offline with the room's public key alone.
func Example() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	pub, key, _ := ed25519.GenerateKey(nil)
	ctx := context.Background()

	l, err := audit.Open(ctx, dir, audit.Options{Origin: "rooms.example/alliance", Key: key})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	r, err := l.Append(ctx, audit.Entry{
		Time:      time.Now(),
		Principal: "coursely", Role: "analyst", Action: "query.run", Collaboration: "alliance",
		Decision: audit.Decision{Allow: false, Reasons: []string{"the privacy budget is spent"}},
	})
	if err != nil {
		log.Fatal(err) // the action must not proceed
	}
	var bundle bytes.Buffer
	if err := l.Export(ctx, &bundle, 0, 0, nil); err != nil {
		log.Fatal(err)
	}

	vkey, _ := audit.VerifierKey("rooms.example/alliance", pub)
	v, _ := note.NewVerifier(vkey)
	rep, err := audit.Verify(&bundle, v, nil)
	fmt.Println(r.Index, rep.Entries, err)
	// Output: 0 1 <nil>
}
