package cleanroom

// The victim's upload (its id is in status) read, given parts, committed
// and discarded by the attacker, against an id that does not exist: the
// same answers, nothing of the victim's upload.

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestAttackOtherMembersUpload(t *testing.T) {
	s := attackRoom(t, attackOpts{})
	_, body := atkRaw(t, s.tr, atkAttacker, "GET", "/v1/collaborations/"+s.collab, "", nil)
	var st struct {
		Datasets map[string]struct{ Upload string } `json:"datasets"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	victimUp := st.Datasets[atkVictim].Upload
	differ := 0
	for _, probe := range []struct{ method, suffix, ct, body string }{
		{"GET", "", "", ""},
		{"PUT", "/parts/0", "application/octet-stream", "x"},
		{"POST", "/commit", "application/json", "{}"},
		{"DELETE", "", "", ""},
	} {
		var got [2]string
		for i, id := range []string{victimUp, "up-doesnotexist0000000000000000"} {
			status, b := atkRaw(t, s.tr, atkAttacker, probe.method, "/v1/collaborations/"+s.collab+"/uploads/"+id+probe.suffix, probe.ct, []byte(probe.body))
			var pr map[string]any
			_ = json.Unmarshal(b, &pr)
			delete(pr, "instance") // echoes the path asked
			delete(pr, "request_id")
			got[i] = fmt.Sprintf("%d %v len=%d", status, pr, len(b)-len(id))
		}
		if got[0] != got[1] {
			differ++
			t.Errorf("%s %s: victim's upload: %s; none: %s", probe.method, probe.suffix, got[0], got[1])
		}
		t.Logf("%s %s: %s", probe.method, probe.suffix, got[0])
	}
	t.Logf("probes that tell the victim's upload from none: %d of 4, bound 0", differ)
}
