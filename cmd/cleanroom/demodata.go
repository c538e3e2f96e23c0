package main

import (
	"bufio"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// The demo's synthetic customers: two brands' lists with a known overlap,
// written as CSV files the brands then upload like any other.

var (
	ageBands = []string{"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}
	regions  = []string{"north", "south", "east", "west"}
)

// customer is one synthetic person: the same in both brands' lists.
type customer struct {
	id          int
	age, region string
	revenue     float64 // spent on courses (coursely)
	exposed     bool    // reached by coursely's joint campaign
	conversions int     // pulsefit subscriptions bought
	fitRevenue  float64 // pulsefit's revenue from them
}

// people derives each person from the seed and their id alone, so that a
// person is the same in both lists. One generator is reseeded per person:
// a fresh one each would cost two allocations a row, at tens of millions
// of rows.
type people struct {
	seed uint64
	pcg  rand.PCG
	rng  *rand.Rand
}

func newPeople(seed uint64) *people {
	p := &people{seed: seed}
	p.rng = rand.New(&p.pcg)
	return p
}

// person returns person i. The campaign works: an exposed person converts
// at the fitness app half again as often.
func (p *people) person(i int) customer {
	p.pcg.Seed(p.seed, uint64(i))
	h := p.rng
	c := customer{id: i, age: ageBands[h.IntN(len(ageBands))], region: regions[h.IntN(len(regions))]}
	c.revenue = 20 + h.Float64()*160
	c.exposed = h.IntN(2) == 0
	prob := 0.20
	if c.exposed {
		prob = 0.30
	}
	if h.Float64() < prob {
		c.conversions = 1 + h.IntN(2)
		c.fitRevenue = float64(c.conversions) * (9.99 + h.Float64()*30)
	}
	return c
}

// appendEmail appends person i's email, customer0000042@example.com (as
// fmt.Sprintf("customer%07d@example.com", i) would, without allocating).
func appendEmail(b []byte, i int) []byte {
	b = append(b, "customer"...)
	var digits [20]byte
	n := strconv.AppendInt(digits[:0], int64(i), 10)
	for range 7 - len(n) {
		b = append(b, '0')
	}
	b = append(b, n...)
	return append(b, "@example.com"...)
}

// appendMoney appends x with two decimals; most amounts in the lists are 0.
func appendMoney(b []byte, x float64) []byte {
	if x == 0 {
		return append(b, "0.00"...)
	}
	return strconv.AppendFloat(b, x, 'f', 2, 64)
}

// demoLists says who is in each brand's list: person ids [0, overlap) are
// customers of both; A alone has [overlap, rows), B alone
// [rows, 2*rows-overlap).
func demoIDs(brand string, rows, overlap int) []uint32 {
	ids := make([]uint32, rows)
	for i := range ids {
		ids[i] = uint32(i)
		if brand == brandB && i >= overlap {
			ids[i] = uint32(rows + i - overlap)
		}
	}
	return ids
}

// writeDemoData writes the two brands' customer lists, both at once: rows
// customers each, of which overlap are customers of both, each list in its
// own order. The fitness app writes some emails in another letter case and
// with spaces, which normalization undoes. No value needs CSV quoting but
// those emails, which are quoted as encoding/csv would.
func writeDemoData(dir string, rows, overlap int, seed uint64) (map[string]string, int, error) {
	files := map[string]string{brandA: filepath.Join(dir, brandA+".csv"), brandB: filepath.Join(dir, brandB+".csv")}
	headers := map[string]string{
		brandA: "email,age_band,region,revenue,exposed,campaign_cost",
		brandB: "email,age_band,conversions,revenue",
	}
	var errs [2]error
	var wg sync.WaitGroup
	for k, brand := range []string{brandA, brandB} {
		wg.Go(func() {
			ids := demoIDs(brand, rows, overlap)
			order := rand.New(rand.NewPCG(seed, 0x636c65616e726f6f+uint64(k)))
			order.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
			errs[k] = writeList(files[brand], headers[brand], ids, newPeople(seed), brand)
		})
	}
	wg.Wait()
	return files, overlap, errors.Join(errs[:]...)
}

// writeList writes one brand's list of the people ids.
func writeList(path, header string, ids []uint32, who *people, brand string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(header + "\n")
	line := make([]byte, 0, 128)
	for _, id := range ids {
		c := who.person(int(id))
		line = appendRow(line[:0], brand, &c)
		w.Write(append(line, '\n'))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// appendRow appends c's row in brand's list, without the newline.
func appendRow(b []byte, brand string, c *customer) []byte {
	if brand == brandA {
		b = append(appendEmail(b, c.id), ',')
		b = append(append(append(append(b, c.age...), ','), c.region...), ',')
		b = append(strconv.AppendBool(append(appendMoney(b, c.revenue), ','), c.exposed), ',')
		if c.exposed {
			return append(b, "3.50"...) // the campaign's cost per person reached
		}
		return append(b, "0.00"...)
	}
	start := len(b)
	b = appendEmail(b, c.id)
	if n := len(b) - start; n%3 == 0 || c.conversions > 0 {
		// " Customer0000042@example.com ", quoted for its spaces.
		b = append(b, 0, 0)
		copy(b[start+2:], b[start:start+n])
		b[start], b[start+1] = '"', ' '
		b[start+2] -= 'a' - 'A'
		b = append(b, ` "`...)
	}
	b = append(append(append(b, ','), c.age...), ',')
	b = append(strconv.AppendInt(b, int64(c.conversions), 10), ',')
	return appendMoney(b, c.fitRevenue)
}
