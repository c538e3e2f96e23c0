package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
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
			"mode": cmdMode,
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
