package cleanroom

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/api/openapitest"
	"github.com/opencleanroom/cleanroom/crypto"
	"golang.org/x/mod/sumdb/note"
)

// apiFlow is a room driven through the client generated from openapi.yaml,
// as a partner that had only the document would: every principal a client
// of its own whose request editor signs the bearer token, every answer
// checked against the document by the transport (openapitest.Contract).
type apiFlow struct {
	t        *testing.T
	ctx      context.Context
	tr       *testRoom
	contract *openapitest.Contract
	roomID   string
	anon     *openapitest.ClientWithResponses
	as       map[string]*openapitest.ClientWithResponses
	keys     map[string]*crypto.PartnerKey
	secret   *crypto.Secret // the collaboration secret, once alpha made it
}

func newAPIFlow(t *testing.T) *apiFlow {
	tr := startRoom(t)
	contract, err := openapitest.LoadContract(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	f := &apiFlow{t: t, ctx: context.Background(), tr: tr, contract: contract,
		as: map[string]*openapitest.ClientWithResponses{}, keys: map[string]*crypto.PartnerKey{}}
	f.anon = f.client(nil)
	// The room proves, over a challenge, that it holds the key it shows.
	challenge := make([]byte, 32)
	rand.Read(challenge)
	enc := base64.RawURLEncoding.EncodeToString(challenge)
	r, err := f.anon.GetRoomWithResponse(f.ctx, &openapitest.GetRoomParams{Challenge: &enc})
	check(f, "GET /v1/room", r, err, http.StatusOK)
	f.roomID = r.JSON200.Id
	v, err := note.NewVerifier(r.JSON200.VerifierKey)
	if err != nil || r.JSON200.Proof == nil {
		t.Fatalf("the room's key %q, proof %v: %v", r.JSON200.VerifierKey, r.JSON200.Proof, err)
	}
	if sig, err := base64.StdEncoding.DecodeString(*r.JSON200.Proof); err != nil || !v.Verify(api.RoomProofMessage(f.roomID, challenge), sig) {
		t.Errorf("the room's proof does not verify under its key: %v", err)
	}
	short := enc[:10]
	bad, err := f.anon.GetRoomWithResponse(f.ctx, &openapitest.GetRoomParams{Challenge: &short})
	check(f, "GET /v1/room with a short challenge", bad, err, http.StatusBadRequest)
	f.keys[OperatorID] = tr.op.Key()
	f.as[OperatorID] = f.client(f.signer(OperatorID))
	return f
}

// client makes a generated client whose requests edit signs (nil: none).
func (f *apiFlow) client(edit openapitest.RequestEditorFn) *openapitest.ClientWithResponses {
	opts := []openapitest.ClientOption{openapitest.WithHTTPClient(f.contract.Doer(&http.Client{Timeout: time.Minute}))}
	if edit != nil {
		opts = append(opts, openapitest.WithRequestEditorFn(edit))
	}
	c, err := openapitest.NewClientWithResponses(f.tr.url, opts...)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// signer signs every request as the principal: a fresh token, as the
// document's security scheme describes it (api.SignRequestToken).
func (f *apiFlow) signer(principal string) openapitest.RequestEditorFn {
	key := f.keys[principal]
	return func(_ context.Context, req *http.Request) error {
		var jti [16]byte
		rand.Read(jti[:])
		tok, err := api.SignRequestToken(key.SigningKey(), principal, f.roomID, hex.EncodeToString(jti[:]), time.Now())
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}
}

// register has the operator register a principal with a new key.
func (f *apiFlow) register(id, role, partner string) {
	f.t.Helper()
	k, err := crypto.GeneratePartnerKey(id, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	var keys openapitest.JWKSet
	recode(f.t, k.Public(), &keys)
	p := openapitest.Principal{Id: id, Role: openapitest.Role(role), Keys: keys}
	if partner != "" {
		p.Partner = &partner
	}
	r, err := f.as[OperatorID].RegisterPrincipalWithResponse(f.ctx, p)
	check(f, "register "+id, r, err, http.StatusCreated)
	if r.JSON201.Id != id || string(r.JSON201.Role) != role {
		f.t.Fatalf("registered %+v", r.JSON201)
	}
	f.keys[id] = k
	f.as[id] = f.client(f.signer(id))
}

// publicKeys reads a member's public keys from a collaboration's answer.
func publicKeys(t *testing.T, c *openapitest.Collaboration, member string) *crypto.PublicKeys {
	t.Helper()
	set, ok := (*c.Keys)[member]
	if !ok {
		t.Fatalf("no keys for %s", member)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypto.ParsePublicKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// check fails the test unless the call answered status. A problem's text
// goes into the message: it never holds identifiers or data values.
func check[R interface{ StatusCode() int }](f *apiFlow, what string, r R, err error, status int) {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("%s: %v", what, err)
	}
	if r.StatusCode() != status {
		body := reflect.ValueOf(r).Elem().FieldByName("Body").Bytes()
		f.t.Fatalf("%s: status %d, want %d: %s", what, r.StatusCode(), status, body)
	}
}

// refused checks a problem document, parsed by the generated client, for
// its type and, if given, its reasons.
func refused(t *testing.T, what string, p *openapitest.Problem, typ string, reasons ...string) {
	t.Helper()
	switch {
	case p == nil:
		t.Fatalf("%s: no problem document", what)
	case string(p.Type) != typ:
		t.Errorf("%s: problem %s (%s), want %s", what, p.Type, p.Title, typ)
	case p.RequestId == nil || p.Instance == nil:
		t.Errorf("%s: the problem names no request id or instance", what)
	case len(reasons) > 0 && (p.Reasons == nil || !reflect.DeepEqual(*p.Reasons, reasons)):
		t.Errorf("%s: reasons %v, want %v", what, p.Reasons, reasons)
	}
}

// recode converts between two types by their JSON.
func recode(t *testing.T, from, to any) {
	t.Helper()
	b, err := json.Marshal(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, to); err != nil {
		t.Fatal(err)
	}
}

// list is one member's upload: a blinded token (k·P) and one attribute per
// person, in parts of partRows.
type list struct {
	tokens [][api.TokenSize]byte
	attrs  [][]string
	canary [][]byte
}

const partRows = 500

func blindedList(t *testing.T, ks *crypto.Secret, k *crypto.PartnerKey, ids []int, attr func(int) string) list {
	t.Helper()
	prof, err := crypto.LookupProfile(crypto.ProfilePAIRv1, crypto.ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	blind := func(raw string) [api.TokenSize]byte {
		mk, err := prof.MatchKey(crypto.KindEmail, raw)
		if err != nil {
			t.Fatal(err)
		}
		e, err := k.BlindingKey().Encrypt(ks, mk)
		if err != nil {
			t.Fatal(err)
		}
		return e.Bytes()
	}
	var l list
	for _, id := range ids {
		email, _ := person(id)
		l.tokens = append(l.tokens, blind(email))
		l.attrs = append(l.attrs, []string{attr(id)})
	}
	for _, c := range api.CanaryIdentifiers(string(crypto.KindEmail)) {
		tok := blind(c)
		l.canary = append(l.canary, tok[:])
	}
	return l
}

func (l list) parts() int { return (len(l.tokens) + partRows - 1) / partRows }

func (l list) span(part int) (int, int) {
	return part * partRows, min((part+1)*partRows, len(l.tokens))
}

// binaryPart encodes a part as application/vnd.cleanroom.part; its digest
// is the SHA-256 of the body.
func (l list) binaryPart(t *testing.T, part int) ([]byte, string) {
	t.Helper()
	p := api.Part{Columns: 1}
	lo, hi := l.span(part)
	for i := lo; i < hi; i++ {
		p.AppendToken(l.tokens[i])
		if err := p.AppendValues(l.attrs[i]); err != nil {
			t.Fatal(err)
		}
	}
	b, err := p.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// ndjsonPart encodes a part as gzip NDJSON, by hand, as the document
// describes it; its digest is the SHA-256 of the uncompressed lines.
func (l list) ndjsonPart(t *testing.T, part int) ([]byte, string) {
	t.Helper()
	var raw bytes.Buffer
	enc := json.NewEncoder(&raw)
	lo, hi := l.span(part)
	for i := lo; i < hi; i++ {
		row := struct {
			T string   `json:"t"`
			A []string `json:"a"`
		}{base64.StdEncoding.EncodeToString(l.tokens[i][:]), l.attrs[i]}
		if err := enc.Encode(row); err != nil {
			t.Fatal(err)
		}
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(raw.Bytes())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw.Bytes())
	return gz.Bytes(), hex.EncodeToString(sum[:])
}

// reencrypt multiplies every 32-byte element by the member's blinding key.
func reencrypt(t *testing.T, k *crypto.PartnerKey, elems []byte) []byte {
	t.Helper()
	if len(elems)%api.TokenSize != 0 {
		t.Fatalf("a relay part of %d bytes", len(elems))
	}
	out := make([]byte, 0, len(elems))
	for i := 0; i < len(elems); i += api.TokenSize {
		e, err := crypto.DecodeElement(elems[i : i+api.TokenSize])
		if err != nil {
			t.Fatal(err)
		}
		r, err := k.BlindingKey().Reencrypt(e)
		if err != nil {
			t.Fatal(err)
		}
		b := r.Bytes()
		out = append(out, b[:]...)
	}
	return out
}
