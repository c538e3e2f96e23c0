package cleanroom

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/opencleanroom/cleanroom/audit/bundle"
)

// TestAttackRedteamSinceDuplicateRoomSignature: x/mod's note.Open drops
// a second signature line by a verifier it already saw before verifying
// it. The reader adds, after the room's own line, a line under the room's
// name and key hash whose bytes are its own text: note.Open reports one
// verified signature and no unverified one. ReaderCheckpoint takes only a
// note exactly as the room writes it. Bound: refused, or the reader's
// bytes not in the bundle.
func TestAttackRedteamSinceDuplicateRoomSignature(t *testing.T) {
	s := attackRoom(t, attackOpts{noUpload: true})
	c, held := attackerAuditorCheckpoint(t, s)
	statusOf(t, s.tr, atkAttacker, s.collab) // the log grows past it
	_, sigs, _ := bytes.Cut(held, []byte("\n\n"))
	line := strings.TrimSuffix(string(sigs), "\n")
	name, b64, _ := strings.Cut(strings.TrimPrefix(line, "\u2014 "), " ")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	email := atkEmail(1500)
	payload := append(bytes.Clone(raw[:4]), []byte(email+" tel +44 7700 900123")...)
	forged := append(bytes.Clone(held), "\u2014 "+name+" "+base64.StdEncoding.EncodeToString(payload)+"\n"...)
	t.Logf("since as sent:\n%s", forged)
	status, body, _ := exportSinceRaw(t, s.tr, redteamAuditor, forged)
	t.Logf("export: %d, %d bytes", status, len(body))
	echoed := false
	if status == http.StatusOK {
		h := sparseHeaderOf(t, body)
		for _, hh := range h.History {
			t.Logf("history checkpoint in the bundle:\n%s", hh.Checkpoint)
			for _, l := range strings.Split(hh.Checkpoint, "\n") {
				if _, b, ok := strings.Cut(strings.TrimPrefix(l, "\u2014 "+name+" "), " "); ok || !strings.HasPrefix(l, "\u2014 ") {
					_ = b
					continue
				}
				if d, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(l, "\u2014 "+name+" ")); err == nil && bytes.Contains(d, []byte(email)) {
					echoed = true
					t.Logf("decoded from a signature line of the room's name in the bundle: %q", d[4:])
				}
			}
		}
		v, err := note.NewVerifier(c.Room().VerifierKey)
		if err != nil {
			t.Fatal(err)
		}
		_, verr := bundle.Verify(bytes.NewReader(body), v, forged)
		t.Logf("bundle.Verify with since = the note as sent: %v", verr)
	}
	t.Logf("taken: %v; the reader's bytes carried back under the room's name: %v; bound: refused or not carried", status == http.StatusOK, echoed)
	if status == http.StatusOK && echoed {
		t.Errorf("the room took a since note with a second, unverified signature line under its own name and carried the reader's bytes back in its bundle")
	}
}
