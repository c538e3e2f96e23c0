package cleanroom

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestStatusAnswerFollowsChanges: the status answer a room keeps encoded
// is never that of before a change: after each kind of change to what it
// shows (a policy proposed, then approved, which tightens k; a match run;
// a member's new keys; a revocation), the very next read shows it, and is
// exactly the view rendered afresh from the stored records. A read with
// nothing changed is answered from the kept answer, not rendered again.
func TestStatusAnswerFollowsChanges(t *testing.T) {
	tr, a, b, _ := readyPair(t, api.ModeHashed, map[string]any{"noise_off": true})
	ctx := context.Background()
	var newKeys json.RawMessage
	steps := []struct {
		name   string
		change func() error
		shows  func(v *api.Collaboration) bool
	}{
		{"a policy proposed", func() error {
			_, err := a.ProposePolicy(ctx, "c1", []byte(strictModule))
			return err
		}, func(v *api.Collaboration) bool { return v.Policy != nil && len(v.Policy.Pending) == 1 }},
		{"the policy approved", func() error {
			v, err := a.Collaboration(ctx, "c1")
			if err != nil {
				return err
			}
			for h := range v.Policy.Pending {
				_, err = b.ApprovePolicy(ctx, "c1", h)
			}
			return err
		}, func(v *api.Collaboration) bool {
			return v.Policy.Active != "" && v.Constraints.MinGroupSize == 400
		}},
		{"a match run", func() error {
			_, err := a.Match(ctx, "c1")
			return err
		}, func(v *api.Collaboration) bool { return v.Match != nil }},
		{"a member's new keys", func() error {
			k, err := crypto.GeneratePartnerKey("bravo", nil)
			if err != nil {
				return err
			}
			if newKeys, err = json.Marshal(k.Public()); err != nil {
				return err
			}
			return setPrincipalKeys(tr.room, "bravo", newKeys)
		}, func(v *api.Collaboration) bool {
			got, err := json.Marshal(v.Keys["bravo"])
			return err == nil && jsonEqual(got, newKeys)
		}},
		{"revoked", func() error { return a.Revoke(ctx, "c1") }, func(v *api.Collaboration) bool { return v.Revoked }},
	}
	for _, s := range steps {
		statusOf(t, tr, "alpha", "c1") // the answer of before is kept
		if err := s.change(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		body := statusOf(t, tr, "alpha", "c1")
		var v api.Collaboration
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		if !s.shows(&v) {
			t.Errorf("%s: the next status read does not show it: %s", s.name, body)
		}
		if want := freshStatus(t, tr, "alpha", "c1"); !bytes.Equal(body, want) {
			t.Errorf("%s: the status answer\n%s\nis not the view rendered afresh\n%s", s.name, body, want)
		}
		kept := tr.room.statusViews.m["c1"]
		if again := statusOf(t, tr, "alpha", "c1"); !bytes.Equal(again, body) || tr.room.statusViews.m["c1"] != kept {
			t.Errorf("%s: an unchanged collaboration's status was rendered again, or differs", s.name)
		}
	}
}

// statusOf reads collab's status over HTTP as member, with a fresh token,
// and returns the body.
func statusOf(t *testing.T, tr *testRoom, member, collab string) []byte {
	t.Helper()
	tok, err := api.SignRequestToken(tr.keys[member].SigningKey(), member, tr.room.Info().ID, newRequestID(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", tr.url+"/v1/collaborations/"+collab, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d (%s), %v: %s", resp.StatusCode, resp.Header.Get("Content-Type"), err, body)
	}
	return body
}

// freshStatus renders collab's view for member from the stored records,
// without the kept answers, as the answer encodes it.
func freshStatus(t *testing.T, tr *testRoom, member, collab string) []byte {
	t.Helper()
	r := tr.room
	p, err := r.principal(member)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.sharedCollab(collab)
	if err != nil {
		t.Fatal(err)
	}
	d := r.decide(context.Background(), &actor{principalRecord: *p}, act{action: policy.ActionCollaborationRead, collab: c})
	v, err := r.view(c, d.Constraints)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// setPrincipalKeys replaces id's registered keys, as the operator would
// rotate them: recorded in the log with the change.
func setPrincipalKeys(r *Room, id string, keys json.RawMessage) error {
	op, err := r.principal(OperatorID)
	if err != nil {
		return err
	}
	who := &actor{principalRecord: *op, requestID: newRequestID()}
	d := policy.Decision{Allow: true}
	return r.commit(context.Background(), who, act{action: policy.ActionPartnerRegister}, d, nil, "", func(tx *store.Tx) error {
		p, err := principals.Get(tx.Txn, id)
		if err != nil {
			return err
		}
		p.Keys = keys
		return principals.Put(tx, id, p)
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	x2, _ := json.Marshal(x)
	y2, _ := json.Marshal(y)
	return bytes.Equal(x2, y2)
}

// TestSameConstraintsComparesEveryField: two constraints that differ in
// any one field are not the same, so a status answer kept for one is never
// served for the other.
func TestSameConstraintsComparesEveryField(t *testing.T) {
	base := policy.DefaultConstraints()
	if c := base; !sameConstraints(&base, &c) {
		t.Fatal("equal constraints compare different")
	}
	typ := reflect.TypeFor[policy.Constraints]()
	for i := range typ.NumField() {
		t.Run(typ.Field(i).Name, func(t *testing.T) {
			c := base
			c.AllowedDimensions = slices.Clone(base.AllowedDimensions)
			c.AllowedMetrics = slices.Clone(base.AllowedMetrics)
			c.NeverOutputColumns = slices.Clone(base.NeverOutputColumns)
			f := reflect.ValueOf(&c).Elem().Field(i)
			switch f.Kind() {
			case reflect.Int, reflect.Int64:
				f.SetInt(f.Int() + 1)
			case reflect.Float64:
				f.SetFloat(f.Float() + 0.5)
			case reflect.String:
				f.SetString(f.String() + "x")
			case reflect.Bool:
				f.SetBool(!f.Bool())
			case reflect.Slice:
				f.Set(reflect.Append(f, reflect.ValueOf("x")))
			default:
				t.Fatalf("a field of kind %s: teach this test (and sameConstraints) to change it", f.Kind())
			}
			if sameConstraints(&base, &c) {
				t.Errorf("constraints that differ in %s compare the same", typ.Field(i).Name)
			}
		})
	}
}
