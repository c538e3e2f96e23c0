package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemoData(t *testing.T) {
	const rows, overlap, seed = 3000, 1200, 7
	dir := t.TempDir()
	files, got, err := writeDemoData(dir, rows, overlap, seed)
	if err != nil {
		t.Fatal(err)
	}
	if got != overlap {
		t.Fatalf("overlap %d, want %d", got, overlap)
	}
	emails := map[string]map[string]bool{}
	for brand, header := range map[string]string{
		brandA: "email,age_band,region,revenue,exposed,campaign_cost",
		brandB: "email,age_band,conversions,revenue",
	} {
		raw, err := os.ReadFile(files[brand])
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
		if err != nil {
			t.Fatalf("%s: not CSV: %v", brand, err)
		}
		if strings.Join(recs[0], ",") != header || len(recs) != rows+1 {
			t.Fatalf("%s: header %q and %d rows", brand, recs[0], len(recs)-1)
		}
		emails[brand] = map[string]bool{}
		quoted := 0
		for _, r := range recs[1:] {
			if len(r) != len(recs[0]) {
				t.Fatalf("%s: a row of %d fields", brand, len(r))
			}
			if r[0] != strings.TrimSpace(r[0]) {
				quoted++
			}
			e := strings.ToLower(strings.TrimSpace(r[0])) // what the email profile undoes
			if emails[brand][e] {
				t.Fatalf("%s: %s twice", brand, e)
			}
			emails[brand][e] = true
		}
		if brand == brandB && quoted == 0 {
			t.Fatalf("%s: no email needs normalizing", brand)
		}
	}
	shared := 0
	for e := range emails[brandA] {
		if emails[brandB][e] {
			shared++
		}
	}
	if shared != overlap {
		t.Fatalf("%d emails in both lists, want %d", shared, overlap)
	}

	// The same seed writes the same lists; another seed, others.
	for _, c := range []struct {
		seed uint64
		same bool
	}{{seed, true}, {seed + 1, false}} {
		again, _, err := writeDemoData(t.TempDir(), rows, overlap, c.seed)
		if err != nil {
			t.Fatal(err)
		}
		for _, brand := range []string{brandA, brandB} {
			a, _ := os.ReadFile(files[brand])
			b, _ := os.ReadFile(again[brand])
			if bytes.Equal(a, b) != c.same {
				t.Errorf("seed %d, %s: same bytes = %v", c.seed, brand, !c.same)
			}
		}
	}
}

// TestPeopleReseeded: reseeding one generator per person gives what a fresh
// generator per person would, so a person is the same in both lists
// whatever order they are written in.
func TestPeopleReseeded(t *testing.T) {
	p := newPeople(7)
	for _, i := range []int{5, 0, 5, 12_000_000, 1} {
		h := rand.New(rand.NewPCG(7, uint64(i)))
		c := p.person(i)
		if c.age != ageBands[h.IntN(len(ageBands))] || c.region != regions[h.IntN(len(regions))] || c.revenue != 20+h.Float64()*160 || c.exposed != (h.IntN(2) == 0) {
			t.Fatalf("person %d differs from a fresh generator's", i)
		}
	}
}

func TestAppendEmail(t *testing.T) {
	for _, i := range []int{0, 42, 9_999_999, 12_345_678} {
		if got, want := string(appendEmail([]byte("x"), i)), "x"+fmt.Sprintf("customer%07d@example.com", i); got != want {
			t.Errorf("appendEmail(%d) = %q, want %q", i, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { appendEmail(make([]byte, 0, 64), 42) }); n > 1 {
		t.Errorf("appendEmail allocates %.0f times", n)
	}
}

// BenchmarkWriteDemoData: both lists, as the demo writes them.
func BenchmarkWriteDemoData(b *testing.B) {
	const rows = 200_000
	dir := b.TempDir()
	for b.Loop() {
		if _, _, err := writeDemoData(dir, rows, rows/2, 1); err != nil {
			b.Fatal(err)
		}
	}
	st, _ := os.Stat(filepath.Join(dir, brandA+".csv"))
	b.ReportMetric(float64(2*rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(st.Size()), "bytes/list")
}
