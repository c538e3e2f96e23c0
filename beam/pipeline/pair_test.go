package pipeline

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/matcher"
)

// TestPAIRPipeline: a list split into files, encrypted by the pipeline,
// equals the crypto package's EncryptBatch of it line for line, file for
// file; re-encrypted by a second partner's pipeline it equals
// ReencryptBatch; a bad line fails the job, naming its file and line.
func TestPAIRPipeline(t *testing.T) {
	work := t.TempDir()
	ks, err := crypto.NewSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	k1, _ := crypto.GenerateBlindingKey(nil)
	k2, _ := crypto.GenerateBlindingKey(nil)
	salt, key1, key2 := filepath.Join(work, "salt"), filepath.Join(work, "k1"), filepath.Join(work, "k2")
	for f, text := range map[string]string{salt: ks.Hex(), key1: k1.Base64(), key2: k2.Base64()} {
		if err := crypto.WriteSecretFile(f, []byte(text+"\n"), false); err != nil {
			t.Fatal(err)
		}
	}
	in, enc, re := filepath.Join(work, "in"), filepath.Join(work, "enc"), filepath.Join(work, "re")
	for _, d := range []string{in, enc, re} {
		os.Mkdir(d, 0o700)
	}
	// Three files of match keys, of 20,000, 8,192 and 1 lines.
	var keys []crypto.MatchKey
	for f, n := range []int{20000, 8192, 1} {
		var b strings.Builder
		for range n {
			h := sha256.Sum256([]byte(fmt.Sprint(len(keys))))
			keys = append(keys, crypto.MatchKey(h))
			b.WriteString(hex.EncodeToString(h[:]) + "\n")
		}
		if err := os.WriteFile(filepath.Join(in, fmt.Sprintf("part-%d", f)), []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	n, err := RunPAIR(ctx, "prism", OpEncrypt, key1, salt, in, enc, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := make([]crypto.Element, len(keys))
	if err := k1.EncryptBatch(ctx, ks, want, keys); err != nil {
		t.Fatal(err)
	}
	if n != int64(len(keys)) {
		t.Fatalf("%d lines encrypted, of %d", n, len(keys))
	}
	checkFiles(t, enc, want)

	if _, err := RunPAIR(ctx, "prism", OpReencrypt, key2, "", enc, re, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := k2.ReencryptBatch(ctx, want, want); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, re, want)

	bad := filepath.Join(work, "bad")
	os.Mkdir(bad, 0o700)
	os.WriteFile(filepath.Join(bad, "x"), []byte(strings.Repeat("00", 32)+"\nnot a key\n"), 0o600)
	_, err = RunPAIR(ctx, "prism", OpEncrypt, key1, salt, bad, t.TempDir(), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a bad line: %v", err)
	}
}

// checkFiles reads dir's part-0, part-1, part-2 in order and compares
// their lines with want.
func checkFiles(t *testing.T, dir string, want []crypto.Element) {
	t.Helper()
	i := 0
	for f := range 3 {
		file, err := os.Open(filepath.Join(dir, fmt.Sprintf("part-%d", f)))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			if i >= len(want) || sc.Text() != want[i].String() {
				t.Fatalf("%s part-%d: line %d differs", dir, f, i)
			}
			i++
		}
		file.Close()
	}
	if i != len(want) {
		t.Fatalf("%s: %d lines of %d", dir, i, len(want))
	}
}

// TestMatchCounts: the match pipeline's exact figures are package
// matcher's.
func TestMatchCounts(t *testing.T) {
	members := twoMembers(3000, 5)
	dir := writeExport(t, 8, members)
	var sets []matcher.Reader
	for _, m := range members {
		var pairs []matcher.Pair
		for r, tok := range m.tokens {
			pairs = append(pairs, matcher.Pair{Token: tok, Row: uint32(r)})
		}
		sets = append(sets, &matcher.SliceReader{Pairs: pairs})
	}
	want, err := matcher.Intersect(context.Background(), sets, matcher.Options{CardinalityOnly: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := RunMatch(context.Background(), "prism", dir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got.Matched != want.Matches {
		t.Errorf("matched %d, matcher %d", got.Matched, want.Matches)
	}
	for i, s := range want.Sets {
		if got.Rows[i] != s.Rows || got.Distinct[i] != s.Rows-s.Duplicates {
			t.Errorf("member %d: rows %d distinct %d, matcher %d and %d", i, got.Rows[i], got.Distinct[i], s.Rows, s.Rows-s.Duplicates)
		}
	}
}
