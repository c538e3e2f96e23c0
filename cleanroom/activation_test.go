package cleanroom

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// laSegment is a segment of the scene and the test's own reading of it.
type laSegment struct {
	spec api.SegmentSpec
	keep func(id int) bool // of a person in the overlap
}

func segmentOf(keep func(id int) bool, filters ...api.Filter) laSegment {
	return laSegment{api.SegmentSpec{Version: api.SegmentVersion, Filters: filters}, keep}
}

// want is the file alpha should write for a segment: its header and the
// records of the matched people the segment keeps, in the file's order,
// each person at its first valid row.
func (s *laScene) want(t *testing.T, seg laSegment) (string, []int) {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"email", "age_band", "region", "spend", "exposed"})
	seen := map[int]bool{}
	var ids []int
	for _, r := range s.alphaRows {
		if r.email == "not an email" || seen[r.id] || !s.inBravo(r.id) || !seg.keep(r.id) {
			continue
		}
		seen[r.id] = true
		ids = append(ids, r.id)
		band, region, spend, exposed, _ := laPerson(r.id)
		w.Write([]string{r.email, band, region, spend, exposed})
	}
	w.Flush()
	return b.String(), ids
}

func (s *laScene) activate(seg laSegment) (*api.Audience, string, error) {
	var out bytes.Buffer
	aud, _, err := s.alpha.ActivateCSV(context.Background(), "c1", seg.spec,
		client.AudienceInput{Input: s.alphaFile, IDColumn: "email", Kind: crypto.KindEmail, State: s.states["alpha"]}, &out)
	return aud, out.String(), err
}

func young(id int) bool { band, _, _, _, _ := laPerson(id); return band == "18-24" || band == "25-34" }

func refusedWith(t *testing.T, err error, reason string) {
	t.Helper()
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != 403 || !strings.Contains(strings.Join(p.Reasons, "; "), reason) {
		t.Fatalf("error %v, want a refusal: %s", err, reason)
	}
}

// TestActivation: alpha, which the settings name, receives exactly the
// rows of its own list of the matched people in a segment (invalid
// identifiers skipped as the upload skipped them, a person written twice
// at its first row), audited with its size and the segment's keyed digest;
// the room refuses an audience below the minimum, one that differs from an
// earlier one by fewer than k people, one past the daily limit, and anyone
// the settings do not name.
func TestActivation(t *testing.T) {
	settings := laSettings()
	settings["activation"] = map[string]any{"members": []string{"alpha"}, "max_per_day": 5}
	s := newLAScene(t, settings)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	youngSeg := segmentOf(young, api.Filter{Column: "alpha.age_band", Op: "in", Values: []string{"18-24", "25-34"}})
	aud, got, err := s.activate(youngSeg)
	if err != nil {
		t.Fatal(err)
	}
	want, ids := s.want(t, youngSeg)
	if got != want || aud.Size != len(ids) {
		t.Fatalf("audience of %d rows, want %d; files equal: %v", aud.Size, len(ids), got == want)
	}
	invalid := 0
	for _, r := range s.alphaRows {
		if r.email == "not an email" {
			invalid++
		}
	}
	if aud.Rows != int64(len(s.alphaRows)-invalid) || aud.Member != "alpha" {
		t.Fatalf("the audience indexes %d rows of %s's upload, want %d", aud.Rows, aud.Member, len(s.alphaRows)-invalid)
	}
	// Audited: its size, the segment's keyed digest, a result digest.
	e := lastEntry(t, s.tr.room)
	key, err := s.alpha.DigestKey(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	segBody, _ := json.Marshal(&youngSeg.spec)
	if e.Action != "audience.activate" || !e.Decision.Allow || e.EpsilonMicro != 0 || len(e.Data) != 1 || e.Data[0].Rows != int64(aud.Size) ||
		e.SpecDigest != api.KeyedDigest(key.Key, api.SegmentDigestLabel, segBody) || e.SpecDigest != aud.SegmentDigest {
		t.Fatalf("entry %+v", e)
	}
	if err := client.CheckResult(key, e.ResultDigest, aud); err != nil {
		t.Fatalf("result digest: %v", err)
	}
	if b, _ := jsonMarshal(e); bytes.Contains(b, []byte("@example")) {
		t.Fatal("the entry names a person")
	}
	// Outside the privacy budget.
	if b, err := s.alpha.Budget(ctx, "c1"); err != nil || b.Spent != 0.1 {
		t.Fatalf("budget %+v %v (the match's 0.1 only)", b, err)
	}

	// The same audience again reveals nothing new: allowed.
	if _, got, err := s.activate(youngSeg); err != nil || got != want {
		t.Fatalf("the same segment again: %v", err)
	}
	// One that differs from it by a handful of people: refused.
	close := segmentOf(func(id int) bool { return young(id) && atkMix(id, 13)%2000 < 1990 },
		api.Filter{Column: "alpha.age_band", Op: "in", Values: []string{"18-24", "25-34"}},
		api.Filter{Column: "alpha.spend", Op: "lt", Value: "199"})
	if _, ids2 := s.want(t, close); len(ids) == len(ids2) || len(ids)-len(ids2) >= 50 {
		t.Fatalf("the test's close segment differs by %d people", len(ids)-len(ids2))
	}
	before := s.tr.room.audit.Size()
	_, err = s.alpha.Activate(ctx, "c1", close.spec)
	refusedWith(t, err, denyAudience)
	if e := lastEntry(t, s.tr.room); s.tr.room.audit.Size() != before+1 || e.Decision.Allow || e.Action != "audience.activate" {
		t.Fatalf("the refusal's entry %+v", e)
	}
	// Too small: old people of the north, about 330.
	small := segmentOf(func(id int) bool { b, r, _, _, _ := laPerson(id); return b == "65+" && r == "north" },
		api.Filter{Column: "alpha.age_band", Op: "eq", Value: "65+"}, api.Filter{Column: "alpha.region", Op: "eq", Value: "north"})
	_, _, err = s.activate(small)
	refusedWith(t, err, denyAudience)
	// A filter on bravo's column, an allowed dimension: the converters.
	conv := segmentOf(laConverted, api.Filter{Column: "bravo.converted", Op: "eq", Value: "1"})
	aud3, got, err := s.activate(conv)
	if want, _ := s.want(t, conv); err != nil || got != want {
		t.Fatalf("converters: %v (files equal %v)", err, got == want)
	}
	// Two answered, two refused by the guards (a refusal decided on the
	// data costs an activation too), and this one: 0 of 5 left.
	if aud3.ActivationsLeftToday != 0 {
		t.Fatalf("activations left today %d, want 0 of 5", aud3.ActivationsLeftToday)
	}
	old := segmentOf(func(id int) bool { b, _, _, _, _ := laPerson(id); return b == "65+" }, api.Filter{Column: "alpha.age_band", Op: "eq", Value: "65+"})
	_, _, err = s.activate(old)
	refusedWith(t, err, "your daily limit of activations is reached")

	// Nobody the settings do not name receives an audience.
	_, err = s.bravo.Activate(ctx, "c1", youngSeg.spec)
	refusedWith(t, err, "do not let bravo receive audiences")
	outsider := s.tr.partner("charlie", policy.RolePartner, "")
	_, err = outsider.Activate(ctx, "c1", youngSeg.spec)
	refusedWith(t, err, "only members of the collaboration may act on it")
	ana := s.tr.partner("ana", policy.RoleAnalyst, "alpha")
	_, err = ana.Activate(ctx, "c1", youngSeg.spec)
	refusedWith(t, err, "only a partner itself may do this")
	// A filter on a column that is not a dimension: refused as a query's.
	_, err = s.alpha.Activate(ctx, "c1", api.SegmentSpec{Version: api.SegmentVersion,
		Filters: []api.Filter{{Column: "bravo.revenue", Op: "ge", Value: "50"}}})
	refusedWith(t, err, "filtering by bravo.revenue is not allowed")

	// The activations' record and stored audiences pass the room's own
	// checks: at its next start, and by cleanroom doctor.
	s.tr.stop()
	diag, err := Diagnose(ctx, s.tr.dir)
	if err != nil || !diag.Healthy() {
		t.Fatalf("doctor: %+v %v", diag, err)
	}
	s.tr.serve()
}

// TestAudienceMapsOnlyItsUpload: an audience written against another file
// than the one uploaded is refused, not written wrong.
func TestAudienceMapsOnlyItsUpload(t *testing.T) {
	s := newLAScene(t, laSettings())
	aud, err := s.alpha.Activate(context.Background(), "c1", segmentOf(young,
		api.Filter{Column: "alpha.age_band", Op: "in", Values: []string{"18-24", "25-34"}}).spec)
	if err != nil {
		t.Fatal(err)
	}
	var valid []laRow
	for _, r := range s.alphaRows {
		if r.email != "not an email" {
			valid = append(valid, r)
		}
	}
	other := writeAlphaList(t, valid[:len(valid)-3])
	profile, err := crypto.LookupProfile(crypto.ProfilePAIRv1, crypto.ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = client.WriteAudience(context.Background(), profile, client.AudienceInput{Collab: "c1", Room: s.tr.op.Room().ID, Input: other, IDColumn: "email", Kind: crypto.KindEmail, State: s.states["alpha"]}, aud, &out)
	if !errors.Is(err, client.ErrNotTheUpload) {
		t.Fatalf("another file: %v", err)
	}
}

// TestActivationComparesAcrossUploads: a new upload does not reset the
// comparison with earlier audiences, since people are compared by their
// tokens, not their rows: alpha adds sixty of bravo's people to its list,
// and the same segment, now larger by about twenty, is refused.
func TestActivationComparesAcrossUploads(t *testing.T) {
	s := newLAScene(t, laSettings())
	ctx := context.Background()
	seg := segmentOf(young, api.Filter{Column: "alpha.age_band", Op: "in", Values: []string{"18-24", "25-34"}})
	if _, _, err := s.activate(seg); err != nil {
		t.Fatal(err)
	}
	rows := slices.Clone(s.alphaRows)
	for id := laAlpha; id < laAlpha+60; id++ {
		rows = append(rows, laRow{atkEmail(id), id})
	}
	s.alphaRows, s.alphaFile = rows, writeAlphaList(t, rows)
	if _, err := s.alpha.UploadCSV(ctx, client.UploadSpec{Collab: "c1", Input: s.alphaFile, IDColumn: "email", Kind: crypto.KindEmail,
		Columns: []string{"age_band", "region", "spend", "exposed"}, State: s.states["alpha"], RowsPerPart: 5000}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.alpha.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.activate(seg)
	refusedWith(t, err, denyAudience)
	if _, err := os.Stat(s.alphaFile); err != nil {
		t.Fatal(err)
	}
}
