package cleanroom

// Red team: the one unmasked offer, a member's first list under its own key
// alone (relay.go), as a member would try to have it made twice. The room
// marks a dataset First when the member has none at the commit's start
// (commitUpload) and refuses, in the commit's transaction, a First whose
// member got a dataset meanwhile (installDataset). Here the victim's client
// commits two first uploads at once, as a retrying or parallel client would;
// if both were installed as First, the member that re-encrypts the victim's
// sets would be shown two of its lists under its key alone, unmasked, and
// compare them element by element (attack_redteam_life_test.go's re-upload
// attack).

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// stagedUpload is an upload whose parts are all in, ready to commit.
type stagedUpload struct {
	id     string
	commit []byte
}

// stageTokens starts an upload of tokens as who and sends its parts,
// without committing it.
func (b *blindScene) stageTokens(who string, tokens [][32]byte, canary [][]byte) stagedUpload {
	b.t.Helper()
	start, _ := json.Marshal(api.StartUpload{Kind: "email", Profile: crypto.ProfilePAIRv1, Columns: []string{},
		Rows: int64(len(tokens)), RowsPerPart: api.MaxRowsPerPart, Canary: canary})
	st, body := b.raw(who, "POST", "/v1/collaborations/"+b.collab+"/uploads", "application/json", start)
	if st != http.StatusCreated {
		b.t.Fatalf("start upload: %d %s", st, body)
	}
	var up api.Upload
	if err := json.Unmarshal(body, &up); err != nil {
		b.t.Fatal(err)
	}
	var digests []string
	for p := 0; p*api.MaxRowsPerPart < len(tokens); p++ {
		part := api.Part{Columns: 0}
		for _, tok := range tokens[p*api.MaxRowsPerPart : min(len(tokens), (p+1)*api.MaxRowsPerPart)] {
			if err := part.AppendValues(nil); err != nil {
				b.t.Fatal(err)
			}
			part.AppendToken(tok)
		}
		enc, err := part.AppendBinary(nil)
		if err != nil {
			b.t.Fatal(err)
		}
		sum := sha256.Sum256(enc)
		digests = append(digests, hex.EncodeToString(sum[:]))
		st, body := b.raw(who, "PUT", fmt.Sprintf("/v1/collaborations/%s/uploads/%s/parts/%d", b.collab, up.ID, p), api.PartContentType, enc)
		if st/100 != 2 {
			b.t.Fatalf("upload part %d: %d %s", p, st, body)
		}
	}
	commit, _ := json.Marshal(api.CommitUpload{Digest: api.DatasetDigest(digests)})
	return stagedUpload{id: up.ID, commit: commit}
}

// rawStatus makes one request as who and returns its status, or 0 if it
// could not be made; safe from any goroutine.
func (b *blindScene) rawStatus(who, method, path, contentType string, body []byte) int {
	tok, err := api.SignRequestToken(b.tr.keys[who].SigningKey(), who, b.tr.op.Room().ID, randID(), b.clock.Now())
	if err != nil {
		return 0
	}
	req, err := http.NewRequestWithContext(b.ctx, method, b.tr.url+path, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestAttackRedteamMaskFirstRace: in 20 fresh collaborations the victim
// commits two first uploads (different people, so the second differs from
// the first by more than min_upload_difference) at the same moment. Counted:
// collaborations where both commits were taken and the dataset that stands
// (the later) is still marked First, and those where the relay task the
// attacker is shown is unmasked (it holds k_v·P of the canaries, checked
// with the victim's key, which the attacker does not hold) while the
// dataset is not First. Both must be 0.
func TestAttackRedteamMaskFirstRace(t *testing.T) {
	b := newBlindScene(t, nil)
	b.ctx = lifeContext(t)
	trials := envInt("ATTACK_MASK_RACES", 20)
	both, twoFirsts, wrongMask, unmasked := 0, 0, 0, 0
	for j := range trials {
		s := maskCollab(b, fmt.Sprintf("f%d", j))
		kv := s.victim.BlindingKey(s.collab)
		canary := s.canary(kv)
		var staged [2]stagedUpload
		for u := range staged {
			tokens := make([][32]byte, 0, 1001)
			for i := range 1001 {
				tokens = append(tokens, s.blind(kv, atkEmail(10_000*(u+1)+i)))
			}
			staged[u] = s.stageTokens(atkVictim, tokens, canary)
		}
		var wg sync.WaitGroup
		var status [2]int
		gate := make(chan struct{})
		for u := range staged {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				status[u] = s.rawStatus(atkVictim, "POST", fmt.Sprintf("/v1/collaborations/%s/uploads/%s/commit", s.collab, staged[u].id), "application/json", staged[u].commit)
			}()
		}
		close(gate)
		wg.Wait()
		ok := 0
		for u := range staged {
			switch {
			case status[u]/100 == 2:
				ok++
			case status[u] == http.StatusConflict:
			default:
				t.Fatalf("trial %d: commit %d: status %d", j, u, status[u])
			}
		}
		c, err := s.tr.room.collab(s.collab)
		if err != nil {
			t.Fatal(err)
		}
		ds := c.Datasets[atkVictim]
		if ds == nil {
			t.Fatalf("trial %d: no dataset after commits %v", j, status)
		}
		if ok == 2 {
			both++
			if ds.First {
				twoFirsts++
			}
		}
		// What the attacker is shown.
		_, elems := s.victimTask()
		have := map[[32]byte]bool{}
		for i := 0; i+api.TokenSize <= len(elems); i += api.TokenSize {
			have[[32]byte(elems[i:])] = true
		}
		plain := true
		for _, e := range canary {
			plain = plain && have[[32]byte(e)]
		}
		if plain {
			unmasked++
		}
		if plain != ds.First {
			wrongMask++
		}
	}
	t.Logf("two first commits at once in %d collaborations: both taken in %d, the later still First in %d; the attacker shown an unmasked set in %d, a mask that disagrees with First in %d",
		trials, both, twoFirsts, unmasked, wrongMask)
	if twoFirsts > 0 || wrongMask > 0 {
		t.Errorf("a member's second list was offered as its first (unmasked): %d of %d races, %d tasks whose mask disagrees with First", twoFirsts, trials, wrongMask)
	}
}
