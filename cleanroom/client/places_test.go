package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// TestPlaces holds the spilled places to a plain sort of every record by
// place, ties in file order: in memory, and spilled to groups of 64 and of
// 7 records (many more groups than records, and many records a group).
func TestPlaces(t *testing.T) {
	const rows = 20_000
	rng := rand.New(rand.NewPCG(1, 2))
	ats := make([]uint64, rows)
	for i := range ats {
		ats[i] = rng.Uint64()
		if i%97 == 5 {
			ats[i] = ats[i/2] // a tie: the same identifier listed again
		}
	}
	ref := make([]orderedRow, rows)
	for i, at := range ats {
		ref[i] = orderedRow{at: at, n: 3 * i}
	}
	slices.SortFunc(ref, func(a, b orderedRow) int {
		if a.less(b) {
			return -1
		}
		return 1
	})
	var ranks []uint32
	for r := range uint32(rows) {
		if rng.IntN(7) == 0 || r == 0 || r == rows-1 {
			ranks = append(ranks, r)
		}
	}
	var want []int64
	for _, r := range ranks {
		want = append(want, int64(ref[r].n))
	}
	slices.Sort(want)
	rng.Shuffle(len(ranks), func(i, j int) { ranks[i], ranks[j] = ranks[j], ranks[i] })

	for _, tc := range []struct {
		groupRows int64
		files     int
	}{{1 << 16, 0}, {64, 1 << maxSpillBits}, {7, 1 << maxSpillBits}, {rows / 3, 4}} {
		t.Run(fmt.Sprint(tc.groupRows), func(t *testing.T) {
			dir := t.TempDir()
			stale := filepath.Join(dir, "c1.audience-123")
			if err := os.WriteFile(stale, []byte("left by a killed run"), 0o600); err != nil {
				t.Fatal(err)
			}
			p, err := newPlaces(dir, "c1", rows, tc.groupRows)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(stale); !os.IsNotExist(err) {
				t.Errorf("a killed run's spill file is still there: %v", err)
			}
			if got := len(spillFiles(t, dir)); got != tc.files {
				t.Errorf("%d spill files, want %d", got, tc.files)
			}
			for i, at := range ats {
				if err := p.add(at, int64(3*i)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := p.pick(slices.Clone(ranks))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("picked %d indices, %d differ from a plain sort's", len(got), countDiff(got, want))
			}
			if tc.files > 0 && len(p.rows) > 2*int(tc.groupRows)+64 {
				t.Errorf("a group held %d records, about %d wanted", len(p.rows), tc.groupRows)
			}
			p.remove()
			if left := spillFiles(t, dir); len(left) != 0 {
				t.Errorf("spill files left: %v", left)
			}
		})
	}
}

func TestPlacesRefused(t *testing.T) {
	fill := func(t *testing.T, groupRows int64) *places {
		p, err := newPlaces(t.TempDir(), "c1", 1000, groupRows)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.remove)
		for i := range 1000 {
			if err := p.add(uint64(i)*0x9e3779b97f4a7c15, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	for _, tc := range []struct {
		name  string
		ranks []uint32
		want  string
	}{
		{"twice", []uint32{3, 9, 3}, "names a row twice"},
		{"past the upload", []uint32{3, 1000}, "row 1000 of an upload of 1000"},
	} {
		for _, groupRows := range []int64{1 << 16, 16} {
			_, err := fill(t, groupRows).pick(tc.ranks)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s, groups of %d: %v, want %q", tc.name, groupRows, err, tc.want)
			}
		}
	}
	// A spill file cut short, or one holding a place of another group.
	for _, damage := range []func(f *os.File) error{
		func(f *os.File) error { return f.Truncate(5) },
		func(f *os.File) error { _, err := f.WriteAt([]byte{0, 0, 0, 0, 0, 0, 0, 0xff}, 0); return err },
	} {
		p := fill(t, 16)
		for _, w := range p.w {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		if err := damage(p.files[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := p.pick([]uint32{0}); err == nil || !strings.Contains(err.Error(), "spill file") {
			t.Errorf("a damaged spill file: %v", err)
		}
	}
}

// TestWriteAudienceSpilled maps an audience of a list longer than a
// group, whose places are spilled, and holds it to a plain sort of the
// file's valid records by place.
func TestWriteAudienceSpilled(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and maps a list of 150,000 rows")
	}
	const rows = 150_000 // more than two groups' worth
	dir := t.TempDir()
	path := filepath.Join(dir, "in.csv")
	var buf bytes.Buffer
	buf.WriteString("email,plan\n")
	for i := range rows {
		switch {
		case i%1000 == 7:
			buf.WriteString("not an email,gold\n")
		case i%500 == 3:
			fmt.Fprintf(&buf, "customer%07d@example.com,gold\n", i-1) // listed again
		default:
			fmt.Fprintf(&buf, "customer%07d@example.com,p%d\n", i, i)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	p, root, ks, fingerprint := uploadedState(t, path)
	state, err := root.Room("room-1")
	if err != nil {
		t.Fatal(err)
	}

	// The reference: every valid record's place, sorted outright.
	order := newRowOrder(ks, fingerprint)
	var ref []orderedRow
	r := csv.NewReader(bufio.NewReader(bytes.NewReader(buf.Bytes())))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for j, rec := range recs[1:] {
		kb := p.NewKeyBatch(1)
		if kb.Add(crypto.KindEmail, rec[0]) != nil {
			continue
		}
		ref = append(ref, orderedRow{at: order.at(&kb.Keys()[0]), n: j})
	}
	slices.SortFunc(ref, func(a, b orderedRow) int {
		if a.less(b) {
			return -1
		}
		return 1
	})
	aud := &api.Audience{Collaboration: "c1", Upload: "up-1", Rows: int64(len(ref))}
	var want []int
	for r := 0; r < len(ref); r += 13 {
		aud.Audience = append(aud.Audience, uint32(r))
		want = append(want, ref[r].n)
	}
	slices.Sort(want)

	var out bytes.Buffer
	in := AudienceInput{Collab: "c1", Room: "room-1", Input: path, IDColumn: "email", Kind: crypto.KindEmail, State: root}
	n, err := WriteAudience(context.Background(), p, in, aud, &out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) || len(got) != len(want)+1 {
		t.Fatalf("%d records written (%d lines), want %d", n, len(got), len(want))
	}
	for i, j := range want {
		if !slices.Equal(got[i+1], recs[j+1]) {
			t.Fatalf("record %d of the audience is not the file's record %d", i, j)
		}
	}
	if left := spillFiles(t, string(state)); len(left) != 0 {
		t.Errorf("spill files left: %v", left)
	}
}

func spillFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, placesPattern("c1")))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func countDiff(a, b []int64) int {
	n := max(len(a), len(b)) - min(len(a), len(b))
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}
