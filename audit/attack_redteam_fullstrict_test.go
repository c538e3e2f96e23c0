package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

func leafText(entry string) string {
	h := tlog.RecordHash([]byte(entry))
	return base64.StdEncoding.EncodeToString(h[:])
}

// TestAttackRedteamFullBundleStrictness: a full bundle with data after its
// end line, or indexes and counts not in canonical decimal ("+3", "03"),
// would make one signed log into many "verified" files, one of which may
// carry, after its end line, lines a reader of the file (a script, a grep,
// a second tool) takes for entries. Both verifiers refuse them.
func TestAttackRedteamFullBundleStrictness(t *testing.T) {
	l := openLog(t, t.TempDir(), testOpts())
	appendN(t, l, 0, 8)
	var buf bytes.Buffer
	if err := l.Export(context.Background(), &buf, 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	lines := strings.Split(strings.TrimSuffix(good, "\n"), "\n")
	// Entry 2 as it is not in the log: its request id changed, with its
	// own leaf hash beside it.
	forged := strings.SplitN(lines[3], " ", 3)[2]
	forged = strings.Replace(forged, `"req-2"`, `"req-9"`, 1)
	cases := map[string]string{
		"data after the end line": good + "2 " + leafText(forged) + " " + forged + "\nend 1\n",
		"index with a plus sign":  strings.Replace(good, "\n3 ", "\n+3 ", 1),
		"index with a zero":       strings.Replace(good, "\n3 ", "\n03 ", 1),
		"end count with a plus":   strings.Replace(good, "\nend 8\n", "\nend +8\n", 1),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if b == good {
				t.Fatal("no change made")
			}
			if rep, err := Verify(strings.NewReader(b), testVerifier(t), nil); err == nil {
				t.Errorf("a full bundle that is not the room's export verifies: %+v", *rep)
			}
		})
	}
}
