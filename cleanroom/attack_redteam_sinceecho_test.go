package cleanroom

// ?since= is a signed note the reader sends, and the room sends it back in
// the bundle. A signed note may carry signature lines by keys the verifier
// does not know (x/mod's note.Open keeps them as unverified signatures): a
// signer name is any run of UTF-8 without a space or "+", "@" included,
// and the signature any bytes in base64. The room refuses such a note, so
// its answer carries none of the reader's text; malformed, oversized and
// tampered checkpoints get one fixed refusal that echoes nothing.

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/opencleanroom/cleanroom/audit/bundle"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/policy"
)

// exportSinceRaw exports as who with ?since=raw (base64url of raw) and
// returns the status and body.
func exportSinceRaw(t *testing.T, tr *testRoom, who string, raw []byte) (int, []byte, time.Duration) {
	t.Helper()
	tok, err := api.SignRequestToken(tr.keys[who].SigningKey(), who, tr.op.Room().ID, randID(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", tr.url+"/v1/audit/export?since="+base64.RawURLEncoding.EncodeToString(raw), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	began := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, time.Since(began)
}

// TestAttackRedteamSinceEchoesUnverifiedSignatures: the attacker's auditor
// takes a checkpoint the room gave it, adds signature lines of its own
// (signer names spelling a person, "@" included, and a signature that is
// her match key as text), and names it as since. Measured: whether the
// room takes it, whether its bundle carries the added text back, and
// whether the bundle then verifies against it. Bound: refused, or nothing
// echoed.
func TestAttackRedteamSinceEchoesUnverifiedSignatures(t *testing.T) {
	s := attackRoom(t, attackOpts{})
	c, held := attackerAuditorCheckpoint(t, s)
	statusOf(t, s.tr, atkAttacker, s.collab) // the log grows past it
	_, planted := atkPlanted(t)
	email := atkEmail(1500)
	sig := func(text string) string {
		return base64.StdEncoding.EncodeToString(append([]byte{0xde, 0xad, 0xbe, 0xef}, text...))
	}
	forged := bytes.Clone(held)
	forged = append(forged, "\u2014 "+email+" "+sig(planted[1]+planted[2])+"\n"...)
	forged = append(forged, "\u2014 "+planted[3]+" "+sig("hello from the attacker")+"\n"...)
	t.Logf("since as sent (%d bytes):\n%s", len(forged), forged)

	status, body, _ := exportSinceRaw(t, s.tr, redteamAuditor, forged)
	t.Logf("export with the added signatures: %d, %d bytes", status, len(body))
	echoed := 0
	for _, p := range []string{email, planted[3]} {
		if bytes.Contains(body, []byte(p)) {
			echoed++
		}
	}
	v, err := note.NewVerifier(c.Room().VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	verified := false
	if status == http.StatusOK {
		h := sparseHeaderOf(t, body)
		for _, hh := range h.History {
			t.Logf("history checkpoint in the bundle:\n%s", hh.Checkpoint)
		}
		_, verr := bundle.Verify(bytes.NewReader(body), v, forged)
		verified = verr == nil
		t.Logf("bundle.Verify with since = the note as sent: %v", verr)
		// And a third party handed the bundle, with the room's own note.
		_, verr = bundle.Verify(bytes.NewReader(body), v, held)
		t.Logf("bundle.Verify with since = the note the room signed: %v", verr)
	}
	t.Logf("the room took a checkpoint with added signatures: %v; planted names echoed in its bundle: %d of 2; the bundle verifies: %v; bound: refused or 0 echoed",
		status == http.StatusOK, echoed, verified)
	if status == http.StatusOK && echoed > 0 {
		t.Errorf("the room echoed %d planted strings from since's unverified signature lines in its bundle", echoed)
	}
}

// TestAttackRedteamSinceMalformed: a range of checkpoints no room signed,
// or not as this room signs them, named as since: each must be refused
// with the same fixed problem, quickly, naming none of the reader's text.
func TestAttackRedteamSinceMalformed(t *testing.T) {
	s := attackRoom(t, attackOpts{noUpload: true})
	_, held := attackerAuditorCheckpoint(t, s)
	text, sigs, _ := bytes.Cut(held, []byte("\n\n"))
	lines := strings.SplitN(string(text), "\n", 3)
	marker := "person001500_at_example.org"
	cases := map[string][]byte{
		"garbage":             []byte(marker),
		"oversized":           append(bytes.Clone(held), bytes.Repeat([]byte("\u2014 "+marker+" AAAAAAAA\n"), 60)...),
		"size changed":        []byte(lines[0] + "\n99999\n" + lines[2] + "\n\n" + string(sigs)),
		"extra body line":     []byte(string(text) + "\n" + marker + "\n\n" + string(sigs)),
		"no signature":        []byte(string(text) + "\n\n"),
		"origin of the names": []byte(marker + "\n" + lines[1] + "\n" + lines[2] + "\n\n" + string(sigs)),
		"nul":                 append(bytes.Clone(held), 0),
	}
	// Signed by a key of the reader's, under the room's origin.
	k, _, _ := note.GenerateKey(nil, lines[0])
	signer, _ := note.NewSigner(k)
	own, _ := note.Sign(&note.Note{Text: string(text) + "\n"}, signer)
	cases["signed by the reader under the room's origin"] = own
	problems := map[string]int{}
	for name, raw := range cases {
		status, body, took := exportSinceRaw(t, s.tr, redteamAuditor, raw)
		echo := bytes.Contains(body, []byte(marker))
		t.Logf("%-45s %d bytes: %d in %v, echoes marker: %v: %s", name, len(raw), status, took, echo, bytes.TrimSpace(body[:min(len(body), 200)]))
		if status == http.StatusOK {
			t.Errorf("%s: the room took it", name)
		}
		if echo {
			t.Errorf("%s: the refusal echoes the reader's text", name)
		}
		problems[string(body)]++
	}
	t.Logf("%d distinct refusal bodies over %d checkpoints", len(problems), len(cases))
}

// attackerAuditorCheckpoint registers the attacker's auditor and returns
// its client and the checkpoint of its first export.
func attackerAuditorCheckpoint(t *testing.T, s *attackScene) (*client.Client, []byte) {
	t.Helper()
	s.tr.partner(redteamAuditor, policy.RoleAuditor, atkAttacker)
	c, err := reconnect(s.tr, redteamAuditor)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.ExportAuditRange(s.ctx, &buf, 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	held := []byte(sparseHeaderOf(t, buf.Bytes()).Checkpoint)
	return c, held
}
