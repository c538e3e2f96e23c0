package analytics

import (
	"context"
	"math"
	"math/rand/v2"
)

// kmeans runs DP-Lloyd on the filtered matched people: points are the
// bounded columns scaled to [0, 1]; the initial centroids are drawn from
// the seed, not the data; every iteration releases only noisy counts and
// noisy coordinate sums per cluster (epsilon split evenly among the
// iterations, and within one between counts and sums). Clusters whose
// final noisy size is below k are withheld.
func (p *Plan) kmeans(ctx context.Context, eps float64) ([]Cluster, int, error) {
	km := p.KMeans
	d, k := len(km.Columns), km.K
	n := p.Table.Len()

	// Points, scaled, for the people the filters keep.
	readers := make([]reader, d)
	vals := make([][]float64, d)
	for j, c := range km.Columns {
		readers[j] = c.reader(c.inJoin())
		vals[j] = make([]float64, blockRows)
	}
	pts := make([]float64, 0, n*d)
	b := p.newBlock(true)
	for lo := 0; lo < n; lo += blockRows {
		if lo%checkEvery == 0 && ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		b.at(p.Table, lo, min(lo+blockRows, n))
		clear(b.slots)
		p.filter(b, 1)
		for j := range km.Columns {
			_, rows := b.col(&km.Columns[j].Ref)
			readers[j].gather(vals[j], rows)
		}
		for i, s := range b.slots {
			if s != 0 {
				continue
			}
			for j, c := range km.Columns {
				v := 0.0
				if w := c.Hi - c.Lo; w > 0 {
					v = (vals[j][i] - c.Lo) / w
				}
				pts = append(pts, v)
			}
		}
	}
	rng := rand.New(rand.NewPCG(p.Seed, 0x6b6d65616e73))
	cent := make([]float64, k*d)
	for i := range cent {
		cent[i] = rng.Float64()
	}
	epsIter := eps / float64(km.Iterations)
	counts := make([]int64, k)
	sums := make([]float64, k*d)
	noisy := make([]int64, k)
	for range km.Iterations {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		clear(counts)
		clear(sums)
		for off := 0; off < len(pts); off += d {
			pt := pts[off : off+d]
			best, bestDist := 0, math.Inf(1)
			for c := range k {
				dist := 0.0
				for j, v := range pt {
					dv := v - cent[c*d+j]
					dist += dv * dv
				}
				if dist < bestDist {
					best, bestDist = c, dist
				}
			}
			counts[best]++
			for j, v := range pt {
				sums[best*d+j] += v
			}
		}
		// A person is in one cluster (counts compose in parallel) and adds
		// at most 1 to each of d coordinate sums.
		for c := range k {
			noisy[c] = p.Noise.Count(counts[c], epsIter/2)
			if noisy[c] <= 0 {
				continue
			}
			for j := range d {
				s := p.Noise.Sum(sums[c*d+j], 1, epsIter/2/float64(d))
				cent[c*d+j] = math.Min(math.Max(s/float64(noisy[c]), 0), 1)
			}
		}
	}
	var out []Cluster
	withheld := 0
	for c := range k {
		if noisy[c] < int64(p.MinGroup) {
			withheld++
			continue
		}
		cl := Cluster{Centroid: make([]float64, d), Size: noisy[c]}
		for j, col := range km.Columns {
			cl.Centroid[j] = round(col.Lo+cent[c*d+j]*(col.Hi-col.Lo), 4)
		}
		out = append(out, cl)
	}
	return out, withheld, nil
}
