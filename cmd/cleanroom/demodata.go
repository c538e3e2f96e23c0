package main

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
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

// person returns person i. Young people who spend more on courses buy
// fitness subscriptions more often (what a lookalike model can find), and
// the campaign works: an exposed person converts half again as often.
func (p *people) person(i int) customer {
	p.pcg.Seed(p.seed, uint64(i))
	h := p.rng
	age := h.IntN(len(ageBands))
	c := customer{id: i, age: ageBands[age], region: regions[h.IntN(len(regions))]}
	c.revenue = 20 + h.Float64()*160
	c.exposed = h.IntN(2) == 0
	prob := 0.10 + 0.10*(c.revenue-20)/160
	if age <= 1 {
		prob += 0.14
	}
	if c.exposed {
		prob *= 1.5
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

// demoIDs says who is in each brand's list: person ids [0, overlap) are
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

// writeDemoData writes the two brands' customer lists: rows customers
// each, of which overlap are customers of both, each list in its own order.
// The fitness app writes some emails in another letter case and with
// spaces, which normalization undoes. No value needs CSV quoting but those
// emails, which are quoted as encoding/csv would.
//
// Both lists are cut into chunks that every core formats, each list's
// chunks written in order by a goroutine of its own: a goroutine a list
// left a core idle whenever one list was done first (the course platform's
// rows are longer).
func writeDemoData(dir string, rows, overlap int, seed uint64) (map[string]string, int, error) {
	brands := [2]string{brandA, brandB}
	headers := [2]string{"email,age_band,region,revenue,exposed,campaign_cost", "email,age_band,conversions,revenue"}
	files := map[string]string{}
	var ids [2][]uint32
	var wg sync.WaitGroup
	for k, brand := range brands {
		files[brand] = filepath.Join(dir, brand+".csv")
		wg.Go(func() {
			ids[k] = demoIDs(brand, rows, overlap)
			order := rand.New(rand.NewPCG(seed, 0x636c65616e726f6f+uint64(k)))
			order.Shuffle(len(ids[k]), func(i, j int) { ids[k][i], ids[k][j] = ids[k][j], ids[k][i] })
		})
	}
	wg.Wait()

	const chunkRows = 1 << 16
	type chunk struct {
		brand int
		ids   []uint32
		out   chan []byte // buffered: a worker never waits for the writer
	}
	var (
		jobs   = make(chan *chunk)
		queues = [2]chan *chunk{make(chan *chunk, 4), make(chan *chunk, 4)} // in order, and how far ahead
		bufs   = sync.Pool{New: func() any { return make([]byte, 0, chunkRows*64) }}
		errs   [2]error
	)
	go func() {
		for lo := 0; lo < rows; lo += chunkRows {
			for k := range brands {
				c := &chunk{brand: k, ids: ids[k][lo:min(lo+chunkRows, rows)], out: make(chan []byte, 1)}
				queues[k] <- c // before jobs: a writer only waits for chunks a worker will get
				jobs <- c
			}
		}
		close(jobs)
		close(queues[0])
		close(queues[1])
	}()
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			who := newPeople(seed)
			for c := range jobs {
				b := bufs.Get().([]byte)[:0]
				for _, id := range c.ids {
					p := who.person(int(id))
					b = append(appendRow(b, brands[c.brand], &p), '\n')
				}
				c.out <- b
			}
		})
	}
	for k := range brands {
		wg.Go(func() {
			f, err := os.Create(files[brands[k]])
			if err == nil {
				_, err = f.WriteString(headers[k] + "\n")
			}
			for c := range queues[k] {
				b := <-c.out
				if err == nil {
					_, err = f.Write(b)
				}
				bufs.Put(b)
			}
			if f != nil {
				err = errors.Join(err, f.Close())
			}
			errs[k] = err
		})
	}
	wg.Wait()
	return files, overlap, errors.Join(errs[:]...)
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
