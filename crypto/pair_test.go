package crypto

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	r255 "github.com/bwesterb/go-ristretto"
	"github.com/cloudflare/circl/group"
	gtank "github.com/gtank/ristretto255"
)

type pairVectors struct {
	Advertiser string `json:"ka_advertiser_scalar_b64"`
	Publisher  string `json:"kp_publisher_scalar_b64"`
	Salt       string `json:"ks_salt_hex"`
	Vectors    []struct {
		Raw        string `json:"raw_email"`
		Normalized string `json:"normalized"`
		MatchKey   string `json:"match_key_sha256_hex"`
		AdvEnc     string `json:"advertiser_encrypted_b64"`
		PubEnc     string `json:"publisher_encrypted_b64"`
		PairID     string `json:"pair_id_b64"`
		PairID2    string `json:"pair_id_b64_other_order"`
		PubID      string `json:"publisher_identifier_b64"`
	} `json:"vectors"`
}

func readJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func loadPAIR(t testing.TB) (pv pairVectors, ka, kp *BlindingKey, ks *Secret) {
	t.Helper()
	readJSON(t, "pair-ristretto255.json", &pv)
	var err error
	if ka, err = ParseBlindingKey(pv.Advertiser); err != nil {
		t.Fatal(err)
	}
	if kp, err = ParseBlindingKey(pv.Publisher); err != nil {
		t.Fatal(err)
	}
	if ks, err = ParseSecret(pv.Salt); err != nil {
		t.Fatal(err)
	}
	return pv, ka, kp, ks
}

func parseEl(t testing.TB, s string) Element {
	t.Helper()
	e, err := ParseElement([]byte(s))
	if err != nil {
		t.Fatalf("ParseElement(%q): %v", s, err)
	}
	return e
}

func TestPAIRVectors(t *testing.T) {
	pv, ka, kp, ks := loadPAIR(t)
	if len(pv.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	if ka.Base64() != pv.Advertiser || kp.Base64() != pv.Publisher || ks.Hex() != pv.Salt {
		t.Fatal("key encodings do not round-trip")
	}
	p := mustProfile(t, ProfilePAIRv1, 0)
	for _, v := range pv.Vectors {
		t.Run(v.Normalized, func(t *testing.T) {
			if n, err := p.Normalize(KindEmail, v.Raw); err != nil || n != v.Normalized {
				t.Fatalf("Normalize = %q, %v; want %q", n, err, v.Normalized)
			}
			mk, err := p.MatchKey(KindEmail, v.Raw)
			if err != nil || mk.String() != v.MatchKey {
				t.Fatalf("MatchKey = %s, %v; want %s", mk, err, v.MatchKey)
			}
			check := func(what string, got Element, err error, want string) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if got.String() != want {
					t.Fatalf("%s = %s, want %s", what, got, want)
				}
			}
			adv, err := ka.Encrypt(ks, mk)
			check("advertiser Encrypt", adv, err, v.AdvEnc)
			pub, err := kp.Encrypt(ks, mk)
			check("publisher Encrypt", pub, err, v.PubEnc)
			id, err := kp.Reencrypt(parseEl(t, v.AdvEnc))
			check("publisher Reencrypt", id, err, v.PairID)
			id2, err := ka.Reencrypt(parseEl(t, v.PubEnc))
			check("advertiser Reencrypt", id2, err, v.PairID2)
			pubID, err := ka.Decrypt(parseEl(t, v.PairID))
			check("advertiser Decrypt", pubID, err, v.PubID)
		})
	}

	// The batch API gives the same answers.
	keys := make([]MatchKey, len(pv.Vectors))
	for i, v := range pv.Vectors {
		keys[i], _ = ParseMatchKey(v.MatchKey)
	}
	got := make([]Element, len(keys))
	ctx := context.Background()
	if err := ka.EncryptBatch(ctx, ks, got, keys); err != nil {
		t.Fatal(err)
	}
	if err := kp.ReencryptBatch(ctx, got, got); err != nil {
		t.Fatal(err)
	}
	for i, v := range pv.Vectors {
		if got[i].String() != v.PairID {
			t.Errorf("batch %d = %s, want %s", i, got[i], v.PairID)
		}
	}
	if err := ka.DecryptBatch(ctx, got, got); err != nil {
		t.Fatal(err)
	}
	for i, v := range pv.Vectors {
		if got[i].String() != v.PubID {
			t.Errorf("batch decrypt %d = %s, want %s", i, got[i], v.PubID)
		}
	}
}

type rfc9496Vectors struct {
	Multiples []string `json:"multiples_of_generator"`
	Invalid   struct {
		NonCanonical []string `json:"non_canonical"`
		NotAnElement []string `json:"not_an_element"`
	} `json:"invalid_encodings"`
	OneWayMap []struct {
		Label   string `json:"label"`
		Element string `json:"element"`
	} `json:"one_way_map"`
}

func TestRFC9496Vectors(t *testing.T) {
	var v rfc9496Vectors
	readJSON(t, "rfc9496.json", &v)
	if len(v.Multiples) != 16 || len(v.OneWayMap) != 7 {
		t.Fatal("vector file incomplete")
	}
	var acc, base r255.Point
	acc.SetZero()
	base.SetBase()
	for i, h := range v.Multiples {
		b, _ := hex.DecodeString(h)
		e, err := DecodeElement(b)
		if i == 0 {
			if !errors.Is(err, ErrIdentity) {
				t.Fatalf("identity: got %v, want ErrIdentity", err)
			}
		} else {
			if err != nil {
				t.Fatalf("%d·B: %v", i, err)
			}
			if elementOf(&acc) != e {
				t.Fatalf("%d·B encodes as %x, want %s", i, elementOf(&acc).b, h)
			}
		}
		acc.Add(&acc, &base)
	}
	for _, h := range v.Invalid.NonCanonical {
		b, _ := hex.DecodeString(h)
		if _, err := DecodeElement(b); !errors.Is(err, ErrNonCanonical) {
			t.Errorf("%s: got %v, want ErrNonCanonical", h, err)
		}
	}
	for _, h := range v.Invalid.NotAnElement {
		b, _ := hex.DecodeString(h)
		if _, err := DecodeElement(b); !errors.Is(err, ErrNotAnElement) {
			t.Errorf("%s: got %v, want ErrNotAnElement", h, err)
		}
	}
	// The one-way map PAIR uses, on RFC 9496's inputs (SHA-512 of a label).
	for _, m := range v.OneWayMap {
		var p r255.Point
		p.DeriveDalek([]byte(m.Label))
		if e := elementOf(&p); hex.EncodeToString(e.b[:]) != m.Element {
			t.Errorf("map(%q) = %x, want %s", m.Label, e.b, m.Element)
		}
	}
}

func TestElementRejects(t *testing.T) {
	valid := parseEl(t, "NHd2q1BNFcB3SgMZRF48IoWpujsIe7YrUbcI8tL9CTg=")
	vb := valid.Bytes()
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrElementLength},
		{"31 bytes", vb[:31], ErrElementLength},
		{"33 bytes", append(vb[:], 0), ErrElementLength},
		{"identity", make([]byte, 32), ErrIdentity},
		{"high bit", func() []byte { b := vb; b[31] |= 0x80; return b[:] }(), ErrNonCanonical},
		{"negative", func() []byte { b := vb; b[0] |= 1; return b[:] }(), ErrNonCanonical},
		{"p", hexBytes("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), ErrNonCanonical},
		{"p+2", hexBytes("efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), ErrNonCanonical},
		{"p-1 (s = -1)", hexBytes("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), ErrNotAnElement},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeElement(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("DecodeElement = %v, want %v", err, tt.want)
			}
		})
	}
	texts := []struct{ name, in string }{
		{"not base64", "NHd2q1BNFcB3SgMZRF48IoWpujsIe7YrUbcI8tL9CT*="},
		{"url alphabet", "NHd2q1BNFcB3SgMZRF48IoWpujsIe7YrUbcI8tL9CTg_"},
		{"no padding", "NHd2q1BNFcB3SgMZRF48IoWpujsIe7YrUbcI8tL9CTg"},
		{"too long", "NHd2q1BNFcB3SgMZRF48IoWpujsIe7YrUbcI8tL9CTgNHd2q1BNFcB3SgMZRF48IoWpujsIe7YrUbcI8tL9CTg="},
		{"short", "NHd2q1BNFcB3SgMZ"},
		{"identity", base64.StdEncoding.EncodeToString(make([]byte, 32))},
		{"space", " NHd2q1BNFcB3SgMZRF48IoWpujsIe7YrUbcI8tL9CTg="},
	}
	for _, tt := range texts {
		t.Run("text/"+tt.name, func(t *testing.T) {
			if _, err := ParseElement([]byte(tt.in)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	// The zero Element is the identity and every operation refuses it.
	k, _ := GenerateBlindingKey(nil)
	if _, err := k.Reencrypt(Element{}); !errors.Is(err, ErrIdentity) {
		t.Errorf("Reencrypt(zero) = %v", err)
	}
	if _, err := k.Decrypt(Element{}); !errors.Is(err, ErrIdentity) {
		t.Errorf("Decrypt(zero) = %v", err)
	}
}

func hexBytes(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestBlindingKeyRejects(t *testing.T) {
	order := hexBytes("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010") // ℓ
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short", make([]byte, 31)},
		{"long", make([]byte, 33)},
		{"zero", make([]byte, 32)},
		{"order", order},
		{"order+1", func() []byte { b := append([]byte(nil), order...); b[0]++; return b }()},
		{"all ones", hexBytes("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewBlindingKey(tt.in); !errors.Is(err, ErrInvalidScalar) {
				t.Fatalf("NewBlindingKey = %v, want ErrInvalidScalar", err)
			}
		})
	}
	minus1 := append([]byte(nil), order...)
	minus1[0]--
	if _, err := NewBlindingKey(minus1); err != nil {
		t.Fatalf("ℓ-1 rejected: %v", err)
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(make([]byte, 32))} {
		if _, err := ParseBlindingKey(bad); !errors.Is(err, ErrInvalidScalar) {
			t.Errorf("ParseBlindingKey(%q) = %v", bad, err)
		}
	}
	if _, err := GenerateBlindingKey(&zeroReader{left: 5}); !errors.Is(err, errExhausted) {
		// 64 zero bytes reduce to the zero scalar; a reader that only
		// gives zeros must not produce a key.
		t.Error("GenerateBlindingKey accepted an all-zero source")
	}
}

// zeroReader gives zeros for a few reads, then fails, so a generator that
// retries on a zero scalar terminates.
type zeroReader struct{ left int }

var errExhausted = errors.New("exhausted")

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.left == 0 {
		return 0, errExhausted
	}
	z.left--
	clear(p)
	return len(p), nil
}

// TestDifferential compares Encrypt with gtank/ristretto255 (its
// FromUniformBytes and ScalarMult) and Reencrypt/Decrypt with circl's group
// package, on random keys and inputs. CLEANROOM_DIFF_N raises the count.
func TestDifferential(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 50
	}
	if s := os.Getenv("CLEANROOM_DIFF_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	rng := rand.NewChaCha8([32]byte{'c', 'l', 'e', 'a', 'n'}) // deterministic, so a failure reproduces
	for i := range n {
		k, err := GenerateBlindingKey(rng)
		if err != nil {
			t.Fatal(err)
		}
		ks, _ := NewSecret(rng)
		var mk MatchKey
		rng.Read(mk[:])

		got, err := k.Encrypt(ks, mk)
		if err != nil {
			t.Fatal(err)
		}
		// gtank: P = FromUniformBytes(SHA-512(SHA-256(Ks || hex(mk)))), C = k·P.
		h := sha256.Sum256(append(ks.Bytes(), mk.String()...))
		u := sha512.Sum512(h[:])
		gp := gtank.NewElement().FromUniformBytes(u[:])
		gs := gtank.NewScalar()
		if err := gs.Decode(k.Bytes()); err != nil {
			t.Fatal(err)
		}
		want := gtank.NewElement().ScalarMult(gs, gp).Encode(nil)
		if gb := got.Bytes(); string(gb[:]) != string(want) {
			t.Fatalf("case %d: Encrypt disagrees with gtank", i)
		}

		// circl: decode C, multiply by a second key, encode.
		k2, _ := GenerateBlindingKey(rng)
		re, err := k2.Reencrypt(got)
		if err != nil {
			t.Fatal(err)
		}
		ce := group.Ristretto255.NewElement()
		if err := ce.UnmarshalBinary(want); err != nil {
			t.Fatal(err)
		}
		cs := group.Ristretto255.NewScalar()
		if err := cs.UnmarshalBinary(k2.Bytes()); err != nil {
			t.Fatal(err)
		}
		cw, _ := group.Ristretto255.NewElement().Mul(ce, cs).MarshalBinary()
		if rb := re.Bytes(); string(rb[:]) != string(cw) {
			t.Fatalf("case %d: Reencrypt disagrees with circl", i)
		}

		// Commutativity and decryption.
		other, _ := k2.Encrypt(ks, mk)
		other, _ = k.Reencrypt(other)
		if other != re {
			t.Fatalf("case %d: k·k2·P != k2·k·P", i)
		}
		back, err := k2.Decrypt(re)
		if err != nil || back != got {
			t.Fatalf("case %d: Decrypt(Reencrypt(C)) != C", i)
		}
	}
}

func TestBatch(t *testing.T) {
	ctx := context.Background()
	k, _ := GenerateBlindingKey(nil)
	ks, _ := NewSecret(nil)
	const n = 3*batchChunk + 17 // several chunks and a ragged end
	keys := make([]MatchKey, n)
	for i := range keys {
		keys[i] = sha256.Sum256([]byte(strconv.Itoa(i)))
	}
	enc := make([]Element, n)
	if err := k.EncryptBatch(ctx, ks, enc, keys); err != nil {
		t.Fatal(err)
	}
	// The batches run sixteen lanes at a time (crypto/internal/r255x8); every
	// element must equal the serial path's, ragged end included.
	re := make([]Element, n)
	if err := k.ReencryptBatch(ctx, re, enc); err != nil {
		t.Fatal(err)
	}
	back := make([]Element, n)
	if err := k.DecryptBatch(ctx, back, re); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if want, _ := k.Encrypt(ks, keys[i]); enc[i] != want {
			t.Fatalf("EncryptBatch[%d] differs from Encrypt", i)
		}
		if want, _ := k.Reencrypt(enc[i]); re[i] != want {
			t.Fatalf("ReencryptBatch[%d] differs from Reencrypt", i)
		}
		if back[i] != enc[i] {
			t.Fatalf("DecryptBatch[%d] does not undo ReencryptBatch", i)
		}
	}
	if err := k.EncryptBatch(ctx, ks, enc[:1], keys); err == nil {
		t.Fatal("length mismatch accepted")
	}

	// Invalid elements: the lowest bad index is reported, whatever the
	// scheduling.
	bad := append([]Element(nil), enc...)
	bad[2*batchChunk+3] = Element{}
	bad[batchChunk+5].b[0] |= 1
	err := k.ReencryptBatch(ctx, make([]Element, n), bad)
	if !errors.Is(err, ErrNonCanonical) || err.Error() != "crypto: element "+strconv.Itoa(batchChunk+5)+": "+ErrNonCanonical.Error() {
		t.Fatalf("ReencryptBatch = %v", err)
	}

	// ReencryptBytes: the same results on raw encodings, in place.
	raw := make([]byte, 0, n*ElementSize)
	for _, e := range enc {
		b := e.Bytes()
		raw = append(raw, b[:]...)
	}
	if err := k.ReencryptBytes(ctx, raw, raw); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if [ElementSize]byte(raw[i*ElementSize:]) != re[i].b {
			t.Fatalf("ReencryptBytes element %d differs from ReencryptBatch", i)
		}
	}
	if err := k.ReencryptBytes(ctx, raw[:31], raw[:31]); !errors.Is(err, ErrElementLength) {
		t.Fatalf("ragged ReencryptBytes = %v", err)
	}
	// DecryptBytes undoes it, into another buffer.
	undone := make([]byte, len(raw))
	if err := k.DecryptBytes(ctx, undone, raw); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if [ElementSize]byte(undone[i*ElementSize:]) != enc[i].b {
			t.Fatalf("DecryptBytes element %d does not undo ReencryptBytes", i)
		}
	}
	if err := k.DecryptBytes(ctx, undone[:ElementSize], raw); err == nil {
		t.Fatal("DecryptBytes accepted a length mismatch")
	}
	if err := CheckElements(raw); err != nil {
		t.Fatalf("CheckElements on %d valid elements: %v", n, err)
	}
	// CheckElements spreads long runs over all cores; the lowest bad index
	// still wins, in the same words as a short run's.
	late, early := 3*batchChunk+9, batchChunk+2
	for _, c := range []struct {
		at   []int
		want int
	}{{[]int{late}, late}, {[]int{late, early}, early}, {[]int{early, late}, early}} {
		bad := append([]byte(nil), raw...)
		for _, i := range c.at {
			clear(bad[i*ElementSize : (i+1)*ElementSize]) // the identity
		}
		err := CheckElements(bad)
		if !errors.Is(err, ErrIdentity) || err.Error() != "element "+strconv.Itoa(c.want)+": "+ErrIdentity.Error() {
			t.Fatalf("CheckElements with identities at %v = %v", c.at, err)
		}
	}
	raw[5*ElementSize] |= 1 // odd: non-canonical
	if err := k.ReencryptBytes(ctx, raw, raw); !errors.Is(err, ErrNonCanonical) || !strings.Contains(err.Error(), "element 5:") {
		t.Fatalf("ReencryptBytes with a bad element = %v", err)
	}

	// Each kind of invalid element keeps its own error, in the last, ragged
	// group of lanes too.
	for _, c := range []struct {
		hex  string
		want error
	}{
		{"0000000000000000000000000000000000000000000000000000000000000000", ErrIdentity},
		{"26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371", ErrNotAnElement},
		{"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", ErrNonCanonical},
	} {
		bad := append([]Element(nil), enc...)
		copy(bad[n-2].b[:], hexBytes(c.hex))
		err := k.DecryptBatch(ctx, make([]Element, n), bad)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), "element "+strconv.Itoa(n-2)+":") {
			t.Errorf("element %s at %d: %v, want %v", c.hex[:8], n-2, err, c.want)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := k.ReencryptBatch(cctx, make([]Element, n), enc); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled batch = %v", err)
	}

	toks := make([]Token, n)
	if err := HashTokens(ctx, ks, toks, keys); err != nil {
		t.Fatal(err)
	}
	if toks[n-1] != HashToken(ks, keys[n-1]) {
		t.Fatal("HashTokens differs from HashToken")
	}
}

func TestBatchAllocations(t *testing.T) {
	k, _ := GenerateBlindingKey(nil)
	const n = 8 * batchChunk
	src := make([]Element, n)
	ks, _ := NewSecret(nil)
	keys := make([]MatchKey, n)
	ctx := context.Background()
	if err := k.EncryptBatch(ctx, ks, src, keys); err != nil {
		t.Fatal(err)
	}
	dst := make([]Element, n)
	allocs := testing.AllocsPerRun(3, func() {
		if err := k.ReencryptBatch(ctx, dst, src); err != nil {
			t.Fatal(err)
		}
	})
	// A few allocations per call (goroutines, closure) are fine; one per
	// element is not.
	if allocs > 32 {
		t.Fatalf("ReencryptBatch made %.0f allocations for %d elements", allocs, n)
	}
	allocs = testing.AllocsPerRun(3, func() {
		if err := k.EncryptBatch(ctx, ks, dst, keys); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 32 {
		t.Fatalf("EncryptBatch made %.0f allocations for %d elements", allocs, n)
	}
	// The room checks short runs (a part's canaries, small parts) on the
	// calling goroutine, without allocating.
	raw := make([]byte, 0, batchChunk*ElementSize)
	for _, e := range dst[:batchChunk] {
		b := e.Bytes()
		raw = append(raw, b[:]...)
	}
	if allocs := testing.AllocsPerRun(3, func() {
		if err := CheckElements(raw); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Fatalf("CheckElements made %.0f allocations for %d elements", allocs, batchChunk)
	}
}

// tokenVector is one of testdata/hmac-tokens.json's tokens.
type tokenVector struct {
	MatchKey string `json:"match_key"`
	Token    string `json:"token_hex"`
}

// readTokenVectors reads testdata/hmac-tokens.json: a secret and tokens
// made under it.
func readTokenVectors(t *testing.T) (*Secret, []tokenVector) {
	t.Helper()
	var v struct {
		KS      string        `json:"ks_hex"`
		Vectors []tokenVector `json:"vectors"`
	}
	readJSON(t, "hmac-tokens.json", &v)
	ks, err := ParseSecret(v.KS)
	if err != nil {
		t.Fatal(err)
	}
	return ks, v.Vectors
}

func TestTokenVectors(t *testing.T) {
	ks, vectors := readTokenVectors(t)
	tk := NewTokenizer(ks)
	for _, x := range vectors {
		mk, _ := ParseMatchKey(x.MatchKey)
		if got := tk.Token(mk); hex.EncodeToString(got[:]) != x.Token {
			t.Errorf("Token(%s) = %x, want %s", x.MatchKey, got, x.Token)
		}
	}
	var mk MatchKey
	if a := testing.AllocsPerRun(100, func() { tk.Token(mk) }); a != 0 {
		t.Errorf("Tokenizer.Token allocates %.0f times", a)
	}
}
