package matcher_test

import (
	"context"
	"fmt"
	"log"

	"github.com/opencleanroom/cleanroom/matcher"
)

// Two members' tokens; the join pairs their row numbers for the shared ones.
func Example() {
	tok := func(b byte) [matcher.TokenSize]byte { return [matcher.TokenSize]byte{b, 1, 2, 3} }
	courses := &matcher.SliceReader{Pairs: []matcher.Pair{{tok(1), 0}, {tok(2), 1}, {tok(3), 2}, {tok(2), 3}}}
	fitness := &matcher.SliceReader{Pairs: []matcher.Pair{{tok(3), 0}, {tok(9), 1}, {tok(2), 2}}}
	var joined int
	res, err := matcher.Intersect(context.Background(), []matcher.Reader{courses, fitness}, matcher.Options{},
		func(rows []uint32) error { joined++; return nil })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Matches, joined, res.Sets[0].Duplicates)
	// Output: 2 2 1
}
