package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"cleanroom": func() { main() },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata/script",
		Setup: writePAIRVectors,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"mode":     cmdMode,
			"auditlog": cmdAuditLog,
			"edit":     cmdEdit,
		},
	})
}

// writePAIRVectors puts the shared PAIR vectors into each script's work
// directory as the files the CLI reads, so scripts check the CLI against the
// same data as the crypto package's tests, not a retyped copy.
func writePAIRVectors(env *testscript.Env) error {
	b, err := os.ReadFile("../../crypto/testdata/pair-ristretto255.json")
	if err != nil {
		return err
	}
	var v struct {
		KA      string `json:"ka_advertiser_scalar_b64"`
		KP      string `json:"kp_publisher_scalar_b64"`
		Salt    string `json:"ks_salt_hex"`
		Vectors []struct {
			Raw    string `json:"raw_email"`
			Key    string `json:"match_key_sha256_hex"`
			Adv    string `json:"advertiser_encrypted_b64"`
			PairID string `json:"pair_id_b64"`
			PubID  string `json:"publisher_identifier_b64"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	files := map[string]string{"salt.hex": v.Salt + "\n", "ka.b64": v.KA + "\n", "kp.b64": v.KP + "\n"}
	cols := map[string]*strings.Builder{}
	for _, name := range []string{"emails.txt", "keys.txt", "adv.txt", "pairid.txt", "pubid.txt"} {
		cols[name] = new(strings.Builder)
	}
	for _, x := range v.Vectors {
		fmt.Fprintln(cols["emails.txt"], x.Raw)
		fmt.Fprintln(cols["keys.txt"], x.Key)
		fmt.Fprintln(cols["adv.txt"], x.Adv)
		fmt.Fprintln(cols["pairid.txt"], x.PairID)
		fmt.Fprintln(cols["pubid.txt"], x.PubID)
	}
	for name, sb := range cols {
		files[name] = sb.String()
	}
	dir := filepath.Join(env.WorkDir, "vectors")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// cmdMode checks a file's permission bits: mode FILE 0600.
func cmdMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: mode FILE PERM")
	}
	st, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	if got := uint64(st.Mode().Perm()); (got == want) == neg {
		ts.Fatalf("%s has mode %04o; want %s%04o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// cmdAuditLog makes a room data directory with an audit log:
// auditlog DIR N SINCE writes N entries, a checkpoint after SINCE of them
// (saved as DIR/since.ckpt) and at the end, and the room's public key as
// DIR/room.vkey (signed-note verifier key) and DIR/room.jwks.
func cmdAuditLog(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: auditlog DIR N SINCE")
	}
	dir := ts.MkAbs(args[0])
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	since, err := strconv.Atoi(args[2])
	ts.Check(err)
	const origin = "cleanroom.test/room/cli"
	seed := sha256.Sum256([]byte(args[0])) // one room key per directory name
	key := ed25519.NewKeyFromSeed(seed[:])
	ctx := context.Background()
	l, err := audit.Open(ctx, cleanroom.DataDir(dir).Database(), audit.Options{
		Origin: origin, Key: key, CheckpointEvery: -1, CheckpointInterval: -1})
	ts.Check(err)
	for i := range n {
		d := fmt.Sprintf("%064x", i)
		_, err := l.Append(ctx, audit.Entry{
			Time:      time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
			Principal: "coursely", Role: "partner", Action: "dataset.upload", Collaboration: "alliance",
			Decision: audit.Decision{Allow: true, PolicyHash: d},
			Data:     []audit.DataRef{{Name: fmt.Sprintf("dataset/%d", i), Digest: d, Bytes: 100, Rows: 10}},
		})
		ts.Check(err)
		if i+1 == since {
			c, err := l.Checkpoint(ctx)
			ts.Check(err)
			ts.Check(os.WriteFile(filepath.Join(dir, "since.ckpt"), c.Note, 0o644))
		}
	}
	ts.Check(l.Close())
	vkey, err := audit.VerifierKey(origin, key.Public().(ed25519.PublicKey))
	ts.Check(err)
	ts.Check(os.WriteFile(filepath.Join(dir, "room.vkey"), []byte(vkey+"\n"), 0o644))
	set, err := audit.PublicJWKS(key.Public().(ed25519.PublicKey))
	ts.Check(err)
	b, err := json.Marshal(set)
	ts.Check(err)
	ts.Check(os.WriteFile(filepath.Join(dir, "room.jwks"), b, 0o644))
}

// cmdEdit replaces the first occurrence of OLD in FILE: edit FILE OLD NEW.
func cmdEdit(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: edit FILE OLD NEW")
	}
	path := ts.MkAbs(args[0])
	b, err := os.ReadFile(path)
	ts.Check(err)
	if !bytes.Contains(b, []byte(args[1])) {
		ts.Fatalf("%s does not contain %q", args[0], args[1])
	}
	ts.Check(os.WriteFile(path, bytes.Replace(b, []byte(args[1]), []byte(args[2]), 1), 0o644))
}
