package cleanroom

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/api/openapitest"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestOpenAPIClientFlow proves openapi.yaml is a contract a partner can
// generate a working client from: a real room, driven only through the
// client oapi-codegen generated from the document (openapitest), through
// every operation the document lists, each answer (refusals included)
// checked against the document's status codes, media types and schemas.
// The flow is a blinded collaboration from registration to revocation.
func TestOpenAPIClientFlow(t *testing.T) {
	f := newAPIFlow(t)
	ctx := f.ctx
	op := f.as[OperatorID]

	// The public routes, and a request without a token.
	health, err := f.anon.GetHealthWithResponse(ctx)
	check(f, "healthz", health, err, http.StatusOK)
	jwks, err := f.anon.GetJWKSWithResponse(ctx)
	check(f, "jwks", jwks, err, http.StatusOK)
	if len(jwks.JSON200.Keys) != 1 || jwks.JSON200.Keys[0].Kty != "OKP" {
		t.Errorf("the room's JWK set: %+v", jwks.JSON200)
	}
	noToken, err := f.anon.ListCollaborationsWithResponse(ctx)
	check(f, "no token", noToken, err, http.StatusUnauthorized)
	refused(t, "no token", noToken.ApplicationproblemJSON401, api.ProblemUnauthenticated)
	if h := noToken.Headers401; h == nil || h.WWWAuthenticate == nil || !strings.HasPrefix(*h.WWWAuthenticate, "Bearer") {
		t.Errorf("a 401 without its WWW-Authenticate header: %+v", h)
	}

	// The operator registers the principals; no one else may.
	f.register("alpha", policy.RolePartner, "")
	f.register("beta", policy.RolePartner, "")
	f.register("gamma", policy.RolePartner, "")
	f.register("alpha-audit", policy.RoleAuditor, "alpha")
	noKeys, err := op.RegisterPrincipalWithResponse(ctx, openapitest.Principal{Id: "delta", Role: "partner", Keys: openapitest.JWKSet{Keys: []openapitest.JWK{}}})
	check(f, "register with no keys", noKeys, err, http.StatusBadRequest)
	refused(t, "register with no keys", noKeys.ApplicationproblemJSON400, api.ProblemBadRequest)
	var alphaKeys openapitest.JWKSet
	recode(t, f.keys["alpha"].Public(), &alphaKeys)
	dup, err := op.RegisterPrincipalWithResponse(ctx, openapitest.Principal{Id: "alpha", Role: "partner", Keys: alphaKeys})
	check(f, "register alpha again", dup, err, http.StatusConflict)
	refused(t, "register alpha again", dup.ApplicationproblemJSON409, api.ProblemConflict)
	notOp, err := f.as["alpha"].RegisterPrincipalWithResponse(ctx, openapitest.Principal{Id: "delta", Role: "partner", Keys: alphaKeys})
	check(f, "a partner registers", notOp, err, http.StatusForbidden)
	refused(t, "a partner registers", notOp.ApplicationproblemJSON403, api.ProblemDenied)
	principals, err := op.ListPrincipalsWithResponse(ctx)
	check(f, "principals", principals, err, http.StatusOK)
	if len(*principals.JSON200) != 5 {
		t.Errorf("%d principals, want the operator and 4", len(*principals.JSON200))
	}
	self, err := f.as["alpha-audit"].GetSelfWithResponse(ctx)
	check(f, "me", self, err, http.StatusOK)
	if self.JSON200.Role != policy.RoleAuditor || self.JSON200.Partner == nil || *self.JSON200.Partner != "alpha" {
		t.Errorf("alpha-audit is %+v", self.JSON200)
	}
	rk, err := f.as["alpha-audit"].GetRequestKeyWithResponse(ctx)
	check(f, "request key", rk, err, http.StatusOK)
	if rk.JSON200.Principal != "alpha-audit" || len(rk.JSON200.Key) != 32 {
		t.Errorf("alpha-audit's request key is %+v", rk.JSON200)
	}

	bands := []string{"18-24", "25-34", "35-44", "45-54"}
	collab := f.createAndAccept(bands)
	f.deliverSecret(collab)
	f.uploadAndRelay()
	f.matchAndQuery(bands)
	f.trainModel(bands)
	f.activate(bands)
	f.policyModule()
	f.audit()

	rv, err := f.as["beta"].RevokeCollaborationWithResponse(ctx, "c1")
	check(f, "revoke", rv, err, http.StatusOK)
	rv2, err := f.as["beta"].RevokeCollaborationWithResponse(ctx, "c1")
	check(f, "revoke again", rv2, err, http.StatusConflict)
	refused(t, "revoke again", rv2.ApplicationproblemJSON409, api.ProblemConflict)

	if missing := slicesMinus(f.contract.Operations(), f.contract.Seen()); len(missing) > 0 {
		t.Errorf("operations the flow did not exercise: %v", missing)
	}
}

// createAndAccept: alpha creates c1 with beta, with settings that let alpha
// receive audiences; beta accepts it by the digest of the terms it read,
// which it checks against the room's answer.
func (f *apiFlow) createAndAccept(bands []string) *openapitest.Collaboration {
	t, ctx := f.t, f.ctx
	mode := openapitest.Mode(api.ModeBlinded)
	dims := []string{"alpha.band", "beta.tier"} // beta.tier: the model's label
	domains := map[string][]string{"alpha.band": bands}
	body := openapitest.CreateCollaboration{Id: "c1", Mode: &mode, Kind: "email", Members: []string{"alpha", "beta"},
		Settings: &openapitest.Settings{AllowedDimensions: &dims, Domains: &domains,
			Activation: &openapitest.Activation{Members: []string{"alpha"}}}}
	created, err := f.as["alpha"].CreateCollaborationWithResponse(ctx, body)
	check(f, "create", created, err, http.StatusCreated)
	if c := created.JSON201; !c.Accepted["alpha"] || c.Accepted["beta"] || c.Profile != crypto.ProfilePAIRv1 {
		t.Errorf("created %+v", c)
	}

	read, err := f.as["beta"].GetCollaborationWithResponse(ctx, "c1")
	check(f, "read", read, err, http.StatusOK)
	var raw api.Collaboration
	if err := json.Unmarshal(read.Body, &raw); err != nil {
		t.Fatal(err)
	}
	digest := read.JSON200.SettingsDigest
	if api.TermsDigest(&raw) != digest {
		t.Error("settings_digest is not the terms digest of the collaboration as read")
	}
	wrong, err := f.as["beta"].AcceptCollaborationWithResponse(ctx, "c1", openapitest.AcceptCollaboration{SettingsDigest: strings.Repeat("0", 64)})
	check(f, "accept another digest", wrong, err, http.StatusConflict)
	refused(t, "accept another digest", wrong.ApplicationproblemJSON409, api.ProblemConflict)
	ok, err := f.as["beta"].AcceptCollaborationWithResponse(ctx, "c1", openapitest.AcceptCollaboration{SettingsDigest: digest})
	check(f, "accept", ok, err, http.StatusOK)

	read, err = f.as["alpha"].GetCollaborationWithResponse(ctx, "c1")
	check(f, "read", read, err, http.StatusOK)
	if c := read.JSON200; !c.Accepted["alpha"] || !c.Accepted["beta"] {
		t.Errorf("accepted: %v", c.Accepted)
	}
	outsider, err := f.as["gamma"].GetCollaborationWithResponse(ctx, "c1")
	check(f, "a non-member reads", outsider, err, http.StatusForbidden)
	refused(t, "a non-member reads", outsider.ApplicationproblemJSON403, api.ProblemDenied, api.ReasonNotMember)

	for who, want := range map[string]int{"alpha": 1, "gamma": 0} {
		l, err := f.as[who].ListCollaborationsWithResponse(ctx)
		check(f, who+" lists", l, err, http.StatusOK)
		if len(*l.JSON200) != want {
			t.Errorf("%s lists %d collaborations, want %d", who, len(*l.JSON200), want)
		}
	}
	budget, err := f.as["beta"].GetBudgetWithResponse(ctx, "c1")
	check(f, "budget", budget, err, http.StatusOK)
	if b := budget.JSON200; b.Total != policy.DefaultConstraints().EpsilonBudget || b.Spent != 0 || b.Remaining != b.Total {
		t.Errorf("a new budget: %+v", b)
	}
	return read.JSON200
}

// deliverSecret: alpha seals the collaboration secret to beta's key as the
// room shows it; beta opens it with alpha's.
func (f *apiFlow) deliverSecret(c *openapitest.Collaboration) {
	t, ctx := f.t, f.ctx
	ks, err := crypto.NewSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("openapi-test/c1/alpha/beta")
	sealed, err := crypto.SealSecret(nil, ks, f.keys["alpha"], publicKeys(t, c, "beta"), aad)
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.as["alpha"].DeliverSecretWithResponse(ctx, "c1", "beta", openapitest.SealedSecret{Sealed: sealed})
	check(f, "deliver", d, err, http.StatusOK)
	got, err := f.as["beta"].GetSecretWithResponse(ctx, "c1")
	check(f, "receive", got, err, http.StatusOK)
	s := got.JSON200
	if *s.From != "alpha" || *s.To != "beta" {
		t.Errorf("a secret from %s to %s", *s.From, *s.To)
	}
	opened, err := crypto.OpenSecret(s.Sealed, f.keys["beta"], publicKeys(t, c, "alpha"), aad)
	if err != nil || !opened.Equal(ks) {
		t.Fatalf("beta cannot open the secret: %v", err)
	}
	none, err := f.as["alpha"].GetSecretWithResponse(ctx, "c1")
	check(f, "no secret for alpha", none, err, http.StatusNotFound)
	refused(t, "no secret for alpha", none.ApplicationproblemJSON404, api.ProblemNotFound)
	f.secret = ks
}

// uploadAndRelay: alpha uploads binary parts, beta gzip NDJSON; each
// re-encrypts the other's set until both are ready.
func (f *apiFlow) uploadAndRelay() {
	t, ctx := f.t, f.ctx
	band := func(i int) string { _, b := person(i); return b }
	tier := func(i int) string { return []string{"gold", "silver"}[i%2] }
	lists := map[string]list{
		"alpha": blindedList(t, f.secret, f.keys["alpha"], span(0, 1200), band),
		"beta":  blindedList(t, f.secret, f.keys["beta"], span(200, 1400), tier),
	}
	columns := map[string]string{"alpha": "band", "beta": "tier"}
	uploads := map[string]string{}
	for _, who := range []string{"alpha", "beta"} {
		l, c := lists[who], f.as[who]
		rows := int64(len(l.tokens))
		cols := []string{columns[who]}
		start, err := c.StartUploadWithResponse(ctx, "c1", openapitest.StartUpload{Kind: "email", Profile: crypto.ProfilePAIRv1,
			Columns: &cols, Rows: &rows, RowsPerPart: partRows, Canary: l.canary})
		check(f, who+" starts", start, err, http.StatusCreated)
		up := start.JSON201.Id
		uploads[who] = up
		if who == "alpha" {
			bad, err := c.PutUploadPartWithBodyWithResponse(ctx, "c1", up, 0, api.PartContentType, strings.NewReader("not a part"))
			check(f, "a bad part", bad, err, http.StatusUnprocessableEntity)
			refused(t, "a bad part", bad.ApplicationproblemJSON422, api.ProblemInvalidData)
		}
		var digests []string
		for p := range l.parts() {
			body, digest, ct := []byte(nil), "", ""
			if who == "alpha" {
				body, digest = l.binaryPart(t, p)
				ct = api.PartContentType
			} else {
				body, digest = l.ndjsonPart(t, p)
				ct = "application/x-ndjson+gzip"
			}
			r, err := c.PutUploadPartWithBodyWithResponse(ctx, "c1", up, p, ct, bytes.NewReader(body))
			check(f, who+" sends a part", r, err, http.StatusOK)
			if r.JSON200.Digest != digest {
				t.Errorf("%s part %d: the room's digest is not the document's", who, p)
			}
			digests = append(digests, digest)
		}
		progress, err := c.GetUploadWithResponse(ctx, "c1", up)
		check(f, who+" reads its upload", progress, err, http.StatusOK)
		if !slices.Equal(progress.JSON200.Received, []int{0, 1, 2}) || progress.JSON200.Committed {
			t.Errorf("%s's upload: %+v", who, progress.JSON200)
		}
		wrong, err := c.CommitUploadWithResponse(ctx, "c1", up, openapitest.CommitUpload{Digest: strings.Repeat("0", 64)})
		check(f, who+" commits another digest", wrong, err, http.StatusConflict)
		refused(t, who+" commits another digest", wrong.ApplicationproblemJSON409, api.ProblemDigestMismatch)
		done, err := c.CommitUploadWithResponse(ctx, "c1", up, openapitest.CommitUpload{Digest: api.DatasetDigest(digests)})
		check(f, who+" commits", done, err, http.StatusOK)
		if done.JSON200.Rows != rows {
			t.Errorf("%s's dataset: %+v", who, done.JSON200)
		}
	}
	other, err := f.as["alpha"].GetUploadWithResponse(ctx, "c1", uploads["beta"])
	check(f, "another member's upload", other, err, http.StatusNotFound)

	// An upload in progress is its member's to discard; a committed one,
	// or another member's, is not.
	committed, err := f.as["alpha"].DiscardUploadWithResponse(ctx, "c1", uploads["alpha"])
	check(f, "discard a committed upload", committed, err, http.StatusConflict)
	refused(t, "discard a committed upload", committed.ApplicationproblemJSON409, api.ProblemConflict)
	theirs, err := f.as["beta"].DiscardUploadWithResponse(ctx, "c1", uploads["alpha"])
	check(f, "discard another member's upload", theirs, err, http.StatusNotFound)
	refused(t, "discard another member's upload", theirs.ApplicationproblemJSON404, api.ProblemNotFound)
	cols := []string{"band"}
	again, err := f.as["alpha"].StartUploadWithResponse(ctx, "c1", openapitest.StartUpload{Kind: "email", Profile: crypto.ProfilePAIRv1,
		Columns: &cols, RowsPerPart: partRows, Canary: lists["alpha"].canary})
	check(f, "alpha starts again", again, err, http.StatusCreated)
	body, _ := lists["alpha"].binaryPart(t, 0)
	sent, err := f.as["alpha"].PutUploadPartWithBodyWithResponse(ctx, "c1", again.JSON201.Id, 0, api.PartContentType, bytes.NewReader(body))
	check(f, "alpha sends a part", sent, err, http.StatusOK)
	discarded, err := f.as["alpha"].DiscardUploadWithResponse(ctx, "c1", again.JSON201.Id)
	check(f, "discard", discarded, err, http.StatusOK)
	gone, err := f.as["alpha"].GetUploadWithResponse(ctx, "c1", again.JSON201.Id)
	check(f, "a discarded upload", gone, err, http.StatusNotFound)
	late, err := f.as["alpha"].PutUploadPartWithBodyWithResponse(ctx, "c1", again.JSON201.Id, 1, api.PartContentType, bytes.NewReader(body))
	check(f, "a part of a discarded upload", late, err, http.StatusNotFound)

	for round := 0; ; round++ {
		pending := 0
		for _, who := range []string{"alpha", "beta"} {
			c := f.as[who]
			tasks, err := c.ListTasksWithResponse(ctx, "c1")
			check(f, who+" lists tasks", tasks, err, http.StatusOK)
			for _, task := range *tasks.JSON200 {
				pending++
				for p := range task.Parts {
					part, err := c.GetTaskPartWithResponse(ctx, "c1", task.Id, p)
					check(f, who+" reads a relay part", part, err, http.StatusOK)
					if p == 0 {
						short, err := c.PutTaskPartWithBodyWithResponse(ctx, "c1", task.Id, p, "application/octet-stream", bytes.NewReader(part.Body[1:]))
						check(f, "a short relay part", short, err, http.StatusUnprocessableEntity)
					}
					back, err := c.PutTaskPartWithBodyWithResponse(ctx, "c1", task.Id, p, "application/octet-stream",
						bytes.NewReader(reencrypt(t, f.keys[who], part.Body)))
					check(f, who+" returns a relay part", back, err, http.StatusOK)
				}
			}
		}
		if pending == 0 {
			break
		}
		if round > 3 {
			t.Fatal("the relay did not finish")
		}
	}
	read, err := f.as["alpha"].GetCollaborationWithResponse(ctx, "c1")
	check(f, "read", read, err, http.StatusOK)
	for who, ds := range read.JSON200.Datasets {
		if !ds.Ready || ds.Layers != 2 {
			t.Errorf("%s's dataset after the relay: %+v", who, ds)
		}
	}
}

// slicesMinus returns the members of a not in b.
func slicesMinus(a, b []string) []string {
	return slices.DeleteFunc(slices.Clone(a), func(s string) bool { return slices.Contains(b, s) })
}

// firstLine is a text answer's first line.
func firstLine(b []byte) string {
	s := bufio.NewScanner(bytes.NewReader(b))
	s.Buffer(nil, 1<<20)
	s.Scan()
	return s.Text()
}
