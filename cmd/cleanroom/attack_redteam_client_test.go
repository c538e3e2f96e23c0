package main

// Red-team attacks on what the CLI prints and leaves behind when a
// partner's input is wrong: every identifier and value of the crafted
// inputs carries a marker ("MK"), and everything the verbs print, on stdout
// and stderr, is searched for it.
//
// Expected to FAIL while the weakness is in the product:
//   - TestAttackRedteamClientCLIEchoesNoValues/upload_headerless and
//     .../activate_headerless (a file without a header row has its first
//     row, an identifier and a value, printed in the error)

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// cliIn runs the CLI with stdin.
func cliIn(stdin string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(&env{ctx: context.Background(), stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

func TestAttackRedteamClientCLIEchoesNoValues(t *testing.T) {
	r := startCLIRoom(t)
	r.partners("coursely", "pulsefit")
	r.collab("alliance", api.ModeHashed)
	write := func(name, body string) string {
		p := r.path(name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var good strings.Builder
	for i := range cliMinList + 20 {
		fmt.Fprintf(&good, "ok%05d@example.com,%d,MKSPEND%d\n", i, 20+i%4*10, i)
	}
	bad := "MKID1-no-at-sign,20,MKV1\nMKID2@@example.com,30,MKV2\n\"MKID3 x@example.com\",20,MKV3\n" +
		"+44 MKID4 20 7946 0958,20,MKV4\n" + strings.Repeat("MKID5", 60) + "@example.com,20,MKV5\n"
	withBad := write("bad.csv", "email,age_band,spend\n"+good.String()+bad)
	headerless := write("headerless.csv", "mkid6@example.com,20,MKV6\n"+good.String())
	bareQuote := write("quote.csv", "email,age_band,spend\n"+good.String()+"mkid7@example.com,20,MK\"V7\n")
	oversize := write("oversize.csv", "email,age_band,spend\n"+good.String()+"mkid8@example.com,20,é"+strings.Repeat("MKV8", 80)+"\n")
	segment := write("segment.json", `{"version":"`+api.SegmentVersion+`","filters":[{"column":"coursely.age_band","op":"eq","value":"20"}]}`)
	audience := r.path("audience-out")
	if err := os.Mkdir(audience, 0o700); err != nil {
		t.Fatal(err)
	}
	upload := func(in string) []string {
		return r.as("coursely", "upload", "--collab", "alliance", "--input", in, "--id-column", "email", "--columns", "age_band,spend")
	}
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
	}{
		{"upload invalid identifiers", "", upload(withBad)},
		{"upload headerless", "", upload(headerless)},
		{"upload bare quote", "", upload(bareQuote)},
		{"upload oversize value", "", upload(oversize)},
		{"activate headerless", "", r.as("coursely", "activate", "--collab", "alliance", "--segment", segment, "--input", headerless,
			"--id-column", "email", "--out", filepath.Join(audience, "aud.csv"))},
		{"normalize", "MKID1-no-at-sign\nMKID2@@example.com\n" + strings.Repeat("MKID5", 60) + "@example.com\n", []string{"normalize", "--kind", "email"}},
		{"normalize strict", "MKID1-no-at-sign\n", []string{"normalize", "--kind", "email", "--strict"}},
		{"normalize phone", "+44 MKID4 20 7946 0958\n", []string{"normalize", "--kind", "phone"}},
		{"pair encrypt", "MKID1-not-a-match-key\n", nil}, // its files are made below
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.name == "pair encrypt" {
				salt := write("salt.hex", strings.Repeat("ab", 32)+"\n")
				code, key, _ := cli("pair", "keygen")
				if code != 0 {
					t.Fatal("pair keygen")
				}
				args = []string{"pair", "encrypt", "--salt-file", salt, "--key-file", write("k.b64", key)}
			}
			code, out, errs := cliIn(tc.stdin, args...)
			all := out + errs
			t.Logf("exit %d; stderr: %q", code, strings.TrimSpace(errs[max(0, len(errs)-200):]))
			if i := strings.Index(strings.ToUpper(all), "MK"); i >= 0 {
				t.Errorf("LEAK: the CLI printed input data (%q ...):\n%s", all[i:min(len(all), i+40)], all)
			}
		})
	}
	// A failed activation leaves no file behind in --out's directory.
	if e, _ := os.ReadDir(audience); len(e) > 0 {
		t.Errorf("LEAK: a failed activation left %d files in the output's directory", len(e))
	}
}
