package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// resultCalls are the client's calls that return a result, each made so
// that it reaches the room.
var resultCalls = map[string]func(ctx context.Context, c *client.Client) (any, error){
	"CreateCollaboration": func(ctx context.Context, c *client.Client) (any, error) {
		return c.CreateCollaboration(ctx, api.CreateCollaboration{ID: "c9", Mode: api.ModeHashed, Kind: "email", Members: []string{"alpha", "bravo"}})
	},
	"Collaboration": func(ctx context.Context, c *client.Client) (any, error) { return c.Collaboration(ctx, "c1") },
	"Match":         func(ctx context.Context, c *client.Client) (any, error) { return c.Match(ctx, "c1") },
	"Query": func(ctx context.Context, c *client.Client) (any, error) {
		return c.Query(ctx, "c1", api.QuerySpec{})
	},
	"Me":             func(ctx context.Context, c *client.Client) (any, error) { return c.Me(ctx) },
	"Collaborations": func(ctx context.Context, c *client.Client) (any, error) { return c.Collaborations(ctx) },
	"BudgetHistory":  func(ctx context.Context, c *client.Client) (any, error) { return c.BudgetHistory(ctx, "c1") },
	"Budget":         func(ctx context.Context, c *client.Client) (any, error) { return c.Budget(ctx, "c1") },
	"JWKS":           func(ctx context.Context, c *client.Client) (any, error) { return c.JWKS(ctx) },
	"ProposePolicy": func(ctx context.Context, c *client.Client) (any, error) {
		return c.ProposePolicy(ctx, "c1", []byte("package cleanroom.collab\n"))
	},
	"ApprovePolicy": func(ctx context.Context, c *client.Client) (any, error) { return c.ApprovePolicy(ctx, "c1", "00") },
	"DigestKey":     func(ctx context.Context, c *client.Client) (any, error) { return c.DigestKey(ctx, "c1") },
	"RequestKey":    func(ctx context.Context, c *client.Client) (any, error) { return c.RequestKey(ctx) },
	"ExportAuditFresh": func(ctx context.Context, c *client.Client) (any, error) {
		fe, err := c.ExportAuditFresh(ctx, io.Discard, 0, nil)
		if fe.RequestID() == "" {
			return nil, err
		}
		return fe, err
	},
	"VerifyFresh": func(ctx context.Context, c *client.Client) (any, error) {
		var b bytes.Buffer
		fe, err := c.ExportAuditFresh(ctx, &b, 0, nil)
		if err != nil {
			return nil, err
		}
		return c.VerifyFresh(&b, fe, nil, nil)
	},
	"UploadCSV": func(ctx context.Context, c *client.Client) (any, error) {
		return c.UploadCSV(ctx, client.UploadSpec{Collab: "c1", Input: "unused.csv", IDColumn: "email", Kind: crypto.KindEmail})
	},
	"Activate": func(ctx context.Context, c *client.Client) (any, error) {
		return c.Activate(ctx, "c1", api.SegmentSpec{})
	},
	"Sync": func(ctx context.Context, c *client.Client) (any, error) { return c.Sync(ctx, "c1", false, 0) },
	"DiscardSaved": func(ctx context.Context, c *client.Client) (any, error) {
		state, err := os.MkdirTemp("", "discard")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(state)
		rs, err := client.StateDir(state).Room(c.Room().ID)
		if err != nil {
			return nil, err
		}
		os.MkdirAll(string(rs), 0o700)
		os.WriteFile(filepath.Join(string(rs), "c1.upload.json"), []byte(`{"upload":"up-1"}`), 0o600)
		return c.DiscardSaved(ctx, client.StateDir(state), "c1")
	},
	"SyncWith": func(ctx context.Context, c *client.Client) (any, error) {
		return c.SyncWith(ctx, "c1", client.SyncOptions{})
	},
}

// TestResultOrError: a call the room refuses returns its refusal and no
// result, as an *api.Problem (possibly wrapped), whether the refusal is
// the room's own (a principal it does not know) or comes from in front of
// it; and every client call with a result is in the table.
func TestResultOrError(t *testing.T) {
	typ := reflect.TypeFor[*client.Client]()
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		if n := m.Type.NumOut(); n == 2 && m.Type.Out(1) == reflect.TypeFor[error]() && resultCalls[m.Name] == nil {
			t.Errorf("(*client.Client).%s returns a result and an error, and is not in resultCalls", m.Name)
		}
	}

	rm := startRoom(t)
	ctx := context.Background()
	stranger, err := crypto.GeneratePartnerKey("stranger", nil)
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := client.New(ctx, rm.url, stranger, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A gateway that lets the room's description through and answers
	// everything else 503, asking to come back in a second.
	gateway := newFaultProxy(t, rm.url, func(r *http.Request, _, _ int) fault {
		if r.URL.Path == "/v1/room" {
			return fault{}
		}
		return fault{status: http.StatusServiceUnavailable, retryAfter: "1"}
	})
	behind, err := client.New(ctx, gateway.srv.URL, stranger, client.Options{})
	if err != nil {
		t.Fatal(err)
	}

	for _, rc := range []struct {
		name   string
		c      *client.Client
		public bool // the room's public calls (JWKS) pass
	}{
		{"a principal the room does not know", unknown, true},
		{"a gateway that refuses", behind, false},
	} {
		for name, call := range resultCalls {
			t.Run(rc.name+"/"+name, func(t *testing.T) {
				res, err := call(ctx, rc.c)
				got := reflect.ValueOf(res)
				switch {
				case err == nil && rc.public && name == "JWKS":
				case err == nil:
					t.Fatalf("no error, result %+v", res)
				case got.IsValid() && !got.IsZero():
					t.Fatalf("a result (%+v) came back with the error %v", res, err)
				}
				var p *api.Problem
				if err != nil && !errors.As(err, &p) {
					t.Fatalf("the error %v (%T) holds no *api.Problem", err, err)
				}
			})
		}
	}

	t.Run("New", func(t *testing.T) {
		shut := newFaultProxy(t, rm.url, func(*http.Request, int, int) fault { return fault{status: http.StatusForbidden} })
		c, err := client.New(ctx, shut.srv.URL, stranger, client.Options{})
		var p *api.Problem
		if c != nil || !errors.As(err, &p) || p.Status != http.StatusForbidden {
			t.Fatalf("New = %v, %v", c, err)
		}
	})
}
