package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

func readKey(t *testing.T, path string) *crypto.PartnerKey {
	t.Helper()
	b, err := crypto.ReadSecretFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypto.ParsePartnerKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestAttackCreateSealsToNamedMembersOnly: collab create delivers the
// secret only to the members it names. A lying room (a proxy) shows the
// created collaboration with one more member, charlie, a real partner with
// its real keys, whom the creator has verified too. With charlie among the
// pins, create sealed the secret to charlie, who opened it (1 of 1 partners
// not named). Pins name the other members now: a pin for a partner not in
// --members is refused before anything is made, and a member the room adds
// unpinned is refused before anything is sealed: 0 sealed to charlie.
func TestAttackCreateSealsToNamedMembersOnly(t *testing.T) {
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit", "charlie")
	charlie := readKey(t, r.path("charlie.key"))
	charliePub, _ := json.Marshal(charlie.Public())
	u, _ := url.Parse(r.url)
	rp := httputil.NewSingleHostReverseProxy(u)
	var (
		mu     sync.Mutex
		sealed int
	)
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		switch {
		case req.Method == "PUT" && strings.HasPrefix(req.URL.Path, "/v1/collaborations/") && strings.HasSuffix(req.URL.Path, "/secrets/charlie"):
			mu.Lock()
			sealed++
			mu.Unlock()
			rw.WriteHeader(http.StatusNoContent)
		case req.Method == "GET" && strings.HasPrefix(req.URL.Path, "/v1/collaborations/") && strings.Count(req.URL.Path, "/") == 3:
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, req)
			var v map[string]any
			if json.Unmarshal(rec.Body.Bytes(), &v) != nil || v["members"] == nil {
				rw.WriteHeader(rec.Code)
				rw.Write(rec.Body.Bytes())
				return
			}
			v["members"] = append(v["members"].([]any), "charlie")
			v["keys"].(map[string]any)["charlie"] = json.RawMessage(charliePub)
			rw.Header().Set("Content-Type", "application/json")
			json.NewEncoder(rw).Encode(v)
		default:
			rp.ServeHTTP(rw, req)
		}
	}))
	defer proxy.Close()
	for _, tc := range []struct{ collab, pins, says string }{
		{"alliance", "pulsefit=" + r.fingerprint("pulsefit") + ",charlie=" + r.fingerprint("charlie"), "--pin names charlie, who is not in --members"},
		{"alliance2", "pulsefit=" + r.fingerprint("pulsefit"), "member charlie has no pin"},
	} {
		code, _, errs := cli("collab", "create", "--collab", tc.collab, "--members", "coursely,pulsefit", "--kind", "email",
			"--mode", "hashed", "--pin", tc.pins, "--room", proxy.URL, "--key", r.path("coursely.key"))
		if code == 0 || !strings.Contains(errs, tc.says) {
			t.Errorf("create %s with --pin %s: exit %d, %s; want a refusal saying %q", tc.collab, tc.pins[:20], code, errs, tc.says)
		}
	}
	t.Logf("secrets sealed to charlie, who is not in --members: %d (bound 0)", sealed)
	if sealed != 0 {
		t.Errorf("LEAK: %d secrets sealed to a partner not named", sealed)
	}
}

// TestCreateAgainAfterPinRefusal: collab create makes the collaboration at
// the room before it checks the pins against the keys the room shows; after
// a wrong pin, the same command with the right pin takes the collaboration
// up and delivers its secret, and the member accepts it. The same command
// with other terms is refused.
func TestCreateAgainAfterPinRefusal(t *testing.T) {
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit", "charlie")
	create := func(members, pin string) (int, string) {
		code, _, errs := cli(r.as("coursely", "collab", "create", "--collab", "alliance", "--members", members,
			"--kind", "email", "--mode", "hashed", "--pin", "pulsefit="+pin)...)
		return code, errs
	}
	if code, errs := create("coursely,pulsefit", r.fingerprint("charlie")); code == 0 || !strings.Contains(errs, "compare the fingerprint") {
		t.Fatalf("create with a wrong pin: exit %d, %s", code, errs)
	}
	if code, errs := create("coursely,pulsefit,charlie", r.fingerprint("pulsefit")); code == 0 || !strings.Contains(errs, "choose another id") {
		t.Errorf("create again with other members: exit %d, %s", code, errs)
	}
	if code, errs := create("coursely,pulsefit", r.fingerprint("pulsefit")); code != 0 || !strings.Contains(errs, "made by you with these terms") {
		t.Fatalf("create again with the right pin: exit %d, %s", code, errs)
	}
	r.must(r.as("pulsefit", "collab", "accept", "--collab", "alliance", "--settings-digest", settingsDigestOf(t, r, "pulsefit", "alliance"),
		"--pin", "coursely="+r.fingerprint("coursely"))...)
}

// settingsDigestOf is the settings digest that partner p reads of collab.
func settingsDigestOf(t *testing.T, r *cliRoom, p, collab string) string {
	t.Helper()
	out, _ := r.must(r.as(p, "status", "--collab", collab, "--json")...)
	var v api.Collaboration
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.SettingsDigest == "" {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return v.SettingsDigest
}

// TestStateFromEarlierClient: a collaboration made and accepted by an
// earlier client, whose state kept every room's collaborations in
// KEYFILE.d itself (the secret as hex in <collab>.secret) and whose seal
// did not name the room, goes on working: the creator and the member
// upload, the member accepts again, and the creator runs create again.
// Each partner's secret moves into its room's directory, and the old file
// goes.
func TestStateFromEarlierClient(t *testing.T) {
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	r.collab("alliance", api.ModeHashed)
	var saved struct{ Secret string }
	b, err := os.ReadFile(r.state("coursely", "alliance.secret"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &saved)
	for _, p := range []string{"coursely", "pulsefit"} {
		os.RemoveAll(filepath.Join(r.dir, p+".key.d", r.id))
		if err := os.WriteFile(filepath.Join(r.dir, p+".key.d", "alliance.secret"), []byte(saved.Secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The earlier client's seal to pulsefit, under a key the member's
	// state does not hold yet.
	os.Remove(filepath.Join(r.dir, "pulsefit.key.d", "alliance.secret"))
	ks, _ := crypto.ParseSecret(saved.Secret)
	ck, pk := readKey(t, r.path("coursely.key")), readKey(t, r.path("pulsefit.key"))
	sealed, err := crypto.SealSecret(nil, ks, ck, pk.Public(), []byte("cleanroom.dev/v1/seal\x00alliance\x00coursely\x00pulsefit"))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := api.SignRequestToken(ck.SigningKey(), "coursely", r.id, hex.EncodeToString([]byte(time.Now().String()))[:32], time.Now())
	body, _ := json.Marshal(api.SealedSecret{From: "coursely", To: "pulsefit", Sealed: sealed})
	req, _ := http.NewRequest("PUT", r.url+"/v1/collaborations/alliance/secrets/pulsefit", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode >= 300 {
		t.Fatalf("sealing as the earlier client: %v %v", err, resp)
	}
	list := r.list("coursely.csv", "", 0, cliMinList+100)
	r.must(r.as("coursely", "upload", "--collab", "alliance", "--input", list, "--id-column", "email", "--columns", "age_band")...)
	r.must(r.as("coursely", "collab", "create", "--collab", "alliance", "--members", "coursely,pulsefit", "--kind", "email", "--mode", "hashed",
		"--settings", r.path("alliance.settings.json"))...)
	r.must(r.as("pulsefit", "collab", "accept", "--collab", "alliance", "--settings", r.path("alliance.settings.json"))...)
	r.must(r.as("pulsefit", "upload", "--collab", "alliance", "--input", list, "--id-column", "email")...)
	for _, p := range []string{"coursely", "pulsefit"} {
		if _, err := os.Stat(filepath.Join(r.dir, p+".key.d", "alliance.secret")); err == nil {
			t.Errorf("%s's old secret file stayed", p)
		}
		var now struct{ Secret, Creator string }
		b, _ := os.ReadFile(r.state(p, "alliance.secret"))
		if json.Unmarshal(b, &now); now.Secret != saved.Secret || now.Creator != "coursely" {
			t.Errorf("%s's secret in its room's state: %+v", p, now)
		}
	}
}

// TestRoomKeyRecorded: the first command a partner runs against a room
// records the room's key for its id in the partner's state; a room showing
// that id with another key is refused before any token is sent.
func TestRoomKeyRecorded(t *testing.T) {
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	r.collab("alliance", api.ModeHashed)
	path := r.state("coursely", "room.key")
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(b), "cleanroom/"+r.id+"+") {
		t.Fatalf("the recorded key: %q, %v", b, err)
	}
	r.must(r.as("coursely", "status", "--collab", "alliance")...)
	os.WriteFile(path, []byte("cleanroom/"+r.id+"+00000000+AAAA\n"), 0o600) // another room's key

	code, _, errs := cli(r.as("coursely", "status", "--collab", "alliance")...)
	if code == 0 || !strings.Contains(errs, "not the room you used before") {
		t.Errorf("a room with another key than the recorded one: exit %d, %s", code, errs)
	}
}
