package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/opencleanroom/cleanroom/audit/bundle"
)

// scopedEntry i belongs to collaboration "c<i%4>" (c0 .. c3, and c10 for
// every 7th entry, whose name begins with c1's), except every 5th, which is
// room-level, made by principal "p<i%3>".
func scopedEntry(i int) Entry {
	e := entry(i)
	e.Principal = fmt.Sprintf("p%d", i%3)
	switch {
	case i%5 == 0:
		e.Collaboration = ""
	case i%7 == 0:
		e.Collaboration = "c10"
	default:
		e.Collaboration = fmt.Sprintf("c%d", i%4)
	}
	return e
}

func inScope(e Entry, i int64, s Scope) bool {
	if e.Collaboration != "" {
		return slices.Contains(s.Collaborations, e.Collaboration) && i >= s.Since[e.Collaboration]
	}
	return slices.Contains(s.Principals, e.Principal)
}

// buildScopedLog makes a closed log of n scoped entries with checkpoints
// along the way, and returns its directory.
func buildScopedLog(t testing.TB, n int) string {
	t.Helper()
	dir := t.TempDir()
	l := openLog(t, dir, testOpts())
	for i := range n {
		if _, err := l.Append(context.Background(), scopedEntry(i)); err != nil {
			t.Fatal(err)
		}
		if i == n/3 || i == n/2 {
			if _, err := l.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func exportScopedDir(t *testing.T, dir string, s Scope) []byte {
	t.Helper()
	l, err := Open(context.Background(), dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var buf bytes.Buffer
	if err := l.ExportScoped(context.Background(), &buf, s); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// verifyScoped verifies a sparse bundle of the log in dir and returns the
// indexes of its entries, checking each against what scopedEntry appended.
func verifyScoped(t *testing.T, dir string, b []byte) ([]int64, *Report) {
	t.Helper()
	l, err := Open(context.Background(), dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var got []int64
	rep, err := VerifyEntries(bytes.NewReader(b), testVerifier(t), nil, func(i int64, e Entry) error {
		want := scopedEntry(int(i))
		key, err := l.RequestKey(e.Principal)
		if err != nil {
			return err
		}
		if e.Collaboration != want.Collaboration || e.Principal != want.Principal || !IsRequestToken(e, RequestToken(key, e.Principal, want.RequestID)) {
			return fmt.Errorf("entry %d is not the one appended", i)
		}
		got = append(got, i)
		return nil
	})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Format != SparseBundleFormat || rep.Entries != int64(len(got)) {
		t.Fatalf("report %+v for %d entries", rep, len(got))
	}
	return got, rep
}

func TestExportScoped(t *testing.T) {
	const n = 300
	dir := buildScopedLog(t, n)
	tests := []struct {
		name string
		s    Scope
	}{
		{"one collaboration", Scope{Collaborations: []string{"c1"}}},
		{"collaborations and a principal's room-level entries", Scope{Collaborations: []string{"c2", "c10"}, Principals: []string{"p1"}}},
		{"a range", Scope{Collaborations: []string{"c3"}, Principals: []string{"p0"}, From: 50, To: 120}},
		{"a collaboration nobody used", Scope{Collaborations: []string{"c9"}, Principals: []string{"nobody"}}},
		{"a collaboration since an index", Scope{Collaborations: []string{"c1", "c2"}, Principals: []string{"p0"}, Since: map[string]int64{"c1": 150}}},
		{"kept by a filter", Scope{Collaborations: []string{"c1", "c2"}, Keep: func(i int64, e Entry) bool { return e.Decision.Allow && i%2 == 0 }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []int64
			for i := range n {
				e := scopedEntry(i)
				in := inScope(e, int64(i), tt.s) && int64(i) >= tt.s.From && (tt.s.To <= 0 || int64(i) < tt.s.To)
				if in && tt.s.Keep != nil {
					in = tt.s.Keep(int64(i), e)
				}
				if in {
					want = append(want, int64(i))
				}
			}
			got, rep := verifyScoped(t, dir, exportScopedDir(t, dir, tt.s))
			if !slices.Equal(got, want) {
				t.Fatalf("exported %v\nwant %v", got, want)
			}
			if rep.TreeSize != n || rep.Checkpoints != 1 {
				t.Errorf("report %+v: want the checkpoint of %d alone (a sparse bundle carries only the reader's earlier one)", rep, n)
			}
		})
	}
}

// TestExportScopedUnindexed: a log written before the scope index existed
// exports the same sparse bundle read-only (by reading its entries), and is
// indexed when next opened for writing.
func TestExportScopedUnindexed(t *testing.T) {
	dir := buildScopedLog(t, 200)
	s := Scope{Collaborations: []string{"c1"}, Principals: []string{"p2"}, Since: map[string]int64{"c1": 90}}
	indexed := exportScopedDir(t, dir, s)
	drop := func() {
		editStore(t, dir, func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("audit/i/")})
			var keys [][]byte
			for it.Rewind(); it.Valid(); it.Next() {
				keys = append(keys, it.Item().KeyCopy(nil))
			}
			it.Close()
			for _, k := range keys {
				txn.Delete(k)
			}
			return txn.Delete(keyIndexed)
		})
	}
	drop()
	if got := exportScopedDir(t, dir, s); !bytes.Equal(got, indexed) {
		t.Fatal("a read-only export of the unindexed log differs")
	}
	l := openLog(t, dir, testOpts()) // indexes it
	var count int
	l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("audit/i/")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			count++
		}
		return nil
	})
	if count != 200 {
		t.Fatalf("%d index keys after reopening, want 200", count)
	}
	appendN(t, l, 200, 5) // entry(i) is in collab-1
	var buf bytes.Buffer
	if err := l.ExportScoped(context.Background(), &buf, Scope{Collaborations: []string{"collab-1"}}); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(bytes.NewReader(buf.Bytes()), testVerifier(t), nil)
	if err != nil || rep.Entries != 5 || rep.From != 200 {
		t.Fatalf("Verify = %+v, %v; want the 5 new entries", rep, err)
	}
}

func TestTamperSparseBundle(t *testing.T) {
	dir := buildScopedLog(t, 120)
	good := exportScopedDir(t, dir, Scope{Collaborations: []string{"c1"}, Principals: []string{"p0"}})
	lines := strings.Split(strings.TrimSuffix(string(good), "\n"), "\n")
	header, entries, end := lines[0], lines[1:len(lines)-1], lines[len(lines)-1]
	if len(entries) < 10 {
		t.Fatalf("only %d entries in scope", len(entries))
	}
	third := entries[3]
	idx := func(line string) int64 {
		var i int64
		fmt.Sscan(line, &i)
		return i
	}
	at := idx(third)
	fields := func(line string) []string { return strings.SplitN(line, " ", 4) }
	join := func(es []string, end string) []byte {
		return []byte(strings.Join(append(append([]string{header}, es...), end), "\n") + "\n")
	}
	with := func(line string) []byte {
		es := slices.Clone(entries)
		es[3] = line
		return join(es, end)
	}
	// An entry edited and its leaf hash recomputed, as someone rewriting
	// the bundle would: only the proof can catch it.
	f := fields(third)
	edited := strings.Replace(f[3], `"principal":"p`, `"principal":"x`, 1)
	leaf := tlog.RecordHash([]byte(edited))
	rehashed := strings.Join([]string{f[0], base64.StdEncoding.EncodeToString(leaf[:]), f[2], edited}, " ")
	// A genuine proof of another entry.
	other := fields(entries[4])
	wrongProof := strings.Join([]string{f[0], f[1], other[2], f[3]}, " ")
	// One hash of the proof changed.
	hashes := strings.Split(f[2], ",")
	hashes[0] = base64.StdEncoding.EncodeToString(make([]byte, 32))
	badHash := strings.Join([]string{f[0], f[1], strings.Join(hashes, ","), f[3]}, " ")

	tests := []struct {
		name   string
		bundle []byte
		index  int64
		reason string
	}{
		{"entry changed", with(strings.Replace(third, `"principal":"p`, `"principal":"x`, 1)), at, "does not match the leaf hash"},
		{"entry changed, leaf hash recomputed", with(rehashed), at, "inclusion proof does not lead to the signed checkpoint"},
		{"another entry's proof", with(wrongProof), at, "inclusion proof does not lead"},
		{"a proof hash changed", with(badHash), at, "inclusion proof does not lead"},
		{"proof cut short", with(strings.Join([]string{f[0], f[1], strings.Join(strings.Split(f[2], ",")[1:], ","), f[3]}, " ")), at, "inclusion proof does not lead"},
		{"proof malformed", with(strings.Join([]string{f[0], f[1], "AAAA", f[3]}, " ")), at, "malformed inclusion proof"},
		{"index moved", with(strings.Replace(third, fmt.Sprint(at)+" ", fmt.Sprint(at+1)+" ", 1)), at + 1, "does not lead"},
		{"entry duplicated", join(slices.Insert(slices.Clone(entries), 4, third), end), at, "out of order"},
		{"index past the checkpoint", with(strings.Replace(third, fmt.Sprint(at)+" ", "9999 ", 1)), 9999, "not in the signed checkpoint"},
		{"entry removed, end line kept", join(slices.Delete(slices.Clone(entries), 3, 4), end), -1, "end line says"},
		{"truncated", join(entries[:5], "")[:len(join(entries[:5], ""))-1], idx(entries[4]) + 1, "truncated"},
		{"leaf hash malformed", with(strings.Join([]string{f[0], "AAAA", f[2], f[3]}, " ")), at, "malformed leaf hash"},
		// 44 characters without padding decode to 33 bytes.
		{"leaf hash unpadded", with(strings.Join([]string{f[0], strings.Repeat("A", 44), f[2], f[3]}, " ")), at, "malformed leaf hash"},
		{"proof hash unpadded", with(strings.Join([]string{f[0], f[1], strings.Repeat("A", 44), f[3]}, " ")), at, "malformed inclusion proof"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerifyError(t, tt.bundle, nil, tt.index, tt.reason)
		})
	}

	t.Run("full bundle, leaf hash unpadded", func(t *testing.T) {
		full, err := exportDir(t, dir, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		ls := strings.Split(string(full), "\n")
		f := strings.SplitN(ls[8], " ", 3)
		ls[8] = f[0] + " " + strings.Repeat("A", 44) + " " + f[2]
		wantVerifyError(t, []byte(strings.Join(ls, "\n")), nil, 7, "malformed leaf hash")
	})
	t.Run("header of the full format", func(t *testing.T) {
		b := bytes.Replace(good, []byte(SparseBundleFormat), []byte(BundleFormat), 1)
		if _, err := Verify(bytes.NewReader(b), testVerifier(t), nil); err == nil {
			t.Fatal("a sparse bundle passed as a full one")
		}
	})
}

// TestSparseSince: a sparse bundle proves its log extends the auditor's
// earlier checkpoint, as a full one does.
func TestSparseSince(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, testOpts())
	ctx := context.Background()
	for i := range 40 {
		if _, err := l.Append(ctx, scopedEntry(i)); err != nil {
			t.Fatal(err)
		}
	}
	saved, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 40; i < 90; i++ {
		if _, err := l.Append(ctx, scopedEntry(i)); err != nil {
			t.Fatal(err)
		}
	}
	// A bundle that does not extend the reader's checkpoint says so.
	var plain bytes.Buffer
	if err := l.ExportScoped(ctx, &plain, Scope{Collaborations: []string{"c2"}, From: 40}); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(bytes.NewReader(plain.Bytes()), testVerifier(t), saved.Note); err == nil || !strings.Contains(err.Error(), "no consistency proof from your checkpoint of size 40") {
		t.Fatalf("a bundle exported without the reader's checkpoint, verified --since it: %v", err)
	}
	var buf bytes.Buffer
	if err := l.ExportScoped(ctx, &buf, Scope{Collaborations: []string{"c2"}, From: 40, Description: "partner p", Extends: saved}); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(bytes.NewReader(buf.Bytes()), testVerifier(t), saved.Note)
	if err != nil || rep.Since != 40 || rep.Scope != "partner p" || rep.From < 40 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	// A checkpoint of another log of the same size is a fork.
	other := openLog(t, t.TempDir(), testOpts())
	appendN(t, other, 0, 40)
	forked, err := other.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantVerifyError(t, buf.Bytes(), forked.Note, -1, "the log was rewritten")
}

func TestEntryBudgetFields(t *testing.T) {
	e := entry(1)
	old, err := e.MarshalCanonical()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(old, []byte(`{"v":1,`)) {
		t.Fatalf("an entry without a charge is not in the first encoding: %s", old)
	}
	e.EpsilonMicro, e.SpecDigest = 250_000, digest("spec")
	b, err := e.MarshalCanonical()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(`{"v":2,`)) || !bytes.Contains(b, []byte(`"epsilon_micro":250000,"spec_digest":"`)) {
		t.Fatalf("encoding %s", b)
	}
	back, err := ParseEntry(b)
	if err != nil || back.EpsilonMicro != 250_000 || back.SpecDigest != e.SpecDigest {
		t.Fatalf("ParseEntry = %+v, %v", back, err)
	}
	for name, bad := range map[string][]byte{
		"version 1 with a charge":    bytes.Replace(b, []byte(`"v":2`), []byte(`"v":1`), 1),
		"version 2 without a charge": bytes.Replace(old, []byte(`"v":1`), []byte(`"v":2`), 1),
		"version 3":                  bytes.Replace(b, []byte(`"v":2`), []byte(`"v":3`), 1),
		"negative epsilon":           bytes.Replace(b, []byte(`250000`), []byte(`-250000`), 1),
		"spec digest not hex":        bytes.Replace(b, []byte(`"spec_digest":"`), []byte(`"spec_digest":"X`), 1),
	} {
		if _, err := ParseEntry(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReconcileBudget(t *testing.T) {
	charge := func(collab string, micro int64, allow bool) Entry {
		e := entry(3)
		e.Action, e.Collaboration, e.EpsilonMicro = "query.run", collab, micro
		e.Decision = Decision{Allow: allow}
		return e
	}
	entries := []Entry{
		charge("alliance", 100_000, true),
		charge("alliance", 250_000, true),
		charge("alliance", 500_000, false), // denied: charged nothing
		charge("other", 1_000_000, true),
		charge("other", 0, true), // noise off, or an action that charges nothing
		entry(4),                 // an upload in collab-1
	}
	want := BudgetLedger{"alliance": 350_000, "other": 1 * MicroEpsilon}
	if got := ReconcileBudget(entries); !maps.Equal(got, want) {
		t.Fatalf("ReconcileBudget = %v, want %v", got, want)
	}

	// Through the log: the charges survive export and verification.
	l := openLog(t, t.TempDir(), testOpts())
	for _, e := range entries {
		if _, err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := l.ExportScoped(context.Background(), &buf, Scope{Collaborations: []string{"alliance", "other"}}); err != nil {
		t.Fatal(err)
	}
	ledger := BudgetLedger{}
	if _, err := VerifyEntries(&buf, testVerifier(t), nil, func(_ int64, e Entry) error { ledger.Add(e); return nil }); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(ledger, want) {
		t.Fatalf("ledger from the bundle = %v, want %v", ledger, want)
	}
}

// TestEntrySalt: the log salts every entry it appends, whatever the caller
// set, with a salt of its own per entry; the salted encoding is version 3,
// and a salt that is not 32 lowercase hex digits, or a version that does
// not match the fields, is refused.
func TestEntrySalt(t *testing.T) {
	l := openLog(t, t.TempDir(), testOpts())
	ctx := context.Background()
	seen := map[string]bool{}
	for i := range 8 {
		e := entry(1) // the same entry each time
		e.Salt = strings.Repeat("0", 32)
		if _, err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
		b, err := l.Entry(ctx, int64(i))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseEntry(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(`{"v":3,`)) || got.Salt == e.Salt || seen[got.Salt] {
			t.Fatalf("entry %d: %s", i, b)
		}
		seen[got.Salt] = true
		key, err := l.RequestKey(e.Principal)
		if err != nil {
			t.Fatal(err)
		}
		if got.RequestID != RequestDigest(RequestToken(key, e.Principal, e.RequestID), got.Salt) || !IsRequest(got, key, e.RequestID) ||
			IsRequest(got, nil, e.RequestID) || got.RequestID == bundle.SaltedRequestDigest(got.Salt, e.Principal, e.RequestID) {
			t.Fatalf("entry %d holds request id %q, not the keyed digest of %q", i, got.RequestID, e.RequestID)
		}
		got.Salt, got.RequestID = e.Salt, e.RequestID
		if fmt.Sprint(got) != fmt.Sprint(e) {
			t.Fatalf("entry %d changed beyond its salt and request id: %+v", i, got)
		}
	}

	e := entry(1)
	e.Salt = "0123456789abcdef0123456789abcdef"
	b, err := e.MarshalCanonical()
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"version 2 with a salt": bytes.Replace(b, []byte(`"v":3`), []byte(`"v":2`), 1),
		"version 4":             bytes.Replace(b, []byte(`"v":3`), []byte(`"v":4`), 1),
		"salt in capitals":      bytes.Replace(b, []byte(`abcdef"`), []byte(`ABCDEF"`), 1),
		"salt too short":        bytes.Replace(b, []byte(`abcdef"`), []byte(`abcde"`), 1),
		"salt too long":         bytes.Replace(b, []byte(`abcdef"`), []byte(`abcdef0"`), 1),
		"salt emptied":          bytes.Replace(b, []byte(`"salt":"`+e.Salt+`"`), []byte(`"salt":""`), 1),
		"salt dropped":          bytes.Replace(b, []byte(`,"salt":"`+e.Salt+`"`), nil, 1),
	} {
		if bytes.Equal(bad, b) {
			t.Fatalf("%s: the variant did not change the bytes", name)
		}
		if _, err := ParseEntry(bad); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("%s: ParseEntry = %v, want ErrInvalidEntry", name, err)
		}
	}
}
