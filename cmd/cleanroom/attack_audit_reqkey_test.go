package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestAttackRedteamRequestKeyFreshness: a dishonest front end replays the
// auditor's first bundle to its later exports, and answers the
// request-key fetch as it likes: 404 (the client's fallback to the
// unkeyed digest), a key of zeros, a key of 0xff, the principal's real key,
// or a key with another principal's name. Bound: 0 replays accepted, each
// refused for what it is: the key named for another principal as no key
// of the auditor's, every other as a bundle without the export's entry.
func TestAttackRedteamRequestKeyFreshness(t *testing.T) {
	r, rp := auditedRoom(t)
	var mu sync.Mutex
	var first []byte
	mode := "honest"
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		m := mode
		mu.Unlock()
		switch {
		case req.URL.Path == "/v1/principals/me/request-key" && m != "honest" && m != "real":
			var key []byte
			principal := "aud"
			switch m {
			case "404":
				w.Header().Set("Content-Type", api.ProblemContentType)
				w.WriteHeader(404)
				json.NewEncoder(w).Encode(api.Problem{Type: api.ProblemNotFound, Title: "not found", Status: 404})
				return
			case "zeros":
				key = make([]byte, 32)
			case "ff":
				key = bytes.Repeat([]byte{0xff}, 32)
			case "other-name":
				key, principal = make([]byte, 32), "coursely"
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(api.RequestKey{Principal: principal, Key: key})
			return
		case req.URL.Path != "/v1/audit/export" || m == "honest":
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, req)
			if req.URL.Path == "/v1/audit/export" && first == nil {
				first = rec.Body.Bytes()
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(first)
	}))
	defer front.Close()
	via := exportThenMore(r, front.URL)
	accepted, tried := 0, 0
	for i, m := range []struct{ mode, refusal string }{
		{"404", "older bundle, replayed"},
		{"zeros", "older bundle, replayed"},
		{"ff", "older bundle, replayed"},
		{"real", "older bundle, replayed"},
		{"other-name", "not a request key of aud's"},
	} {
		mu.Lock()
		mode = m.mode
		mu.Unlock()
		tried++
		outFile := r.path("replay" + string(rune('a'+i)) + ".txt")
		code, stdout, errs := cli(via(front.URL, "aud", "audit", "export", "--out", outFile)...)
		t.Logf("mode %s: exit %d %s%s", m.mode, code, stdout, errs)
		if code == 0 {
			accepted++
			t.Errorf("mode %s: the replayed bundle was accepted", m.mode)
		} else if !strings.Contains(errs, m.refusal) {
			t.Errorf("mode %s: refused otherwise than %q: %s", m.mode, m.refusal, errs)
		}
	}
	t.Logf("replayed bundles accepted as fresh: %d of %d (bound 0)", accepted, tried)
	if accepted > 0 {
		t.Errorf("%d of %d replayed bundles accepted as fresh, bound 0", accepted, tried)
	}
}
