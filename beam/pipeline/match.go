package pipeline

import (
	"context"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.DoFn3x1[context.Context, int, func(MatchCounts), error](&matchFn{})
	register.Emitter1[MatchCounts]()
	register.Function2x1[MatchCounts, MatchCounts, MatchCounts](addCounts)
	beam.RegisterType(reflect.TypeOf((*MatchCounts)(nil)).Elem())
}

// MatchCounts are a match's exact figures: the people in every member's
// list, and each member's rows and distinct identifiers. They are the
// operator's (what package matcher's Result holds), never a release: the
// room releases only noisy match rates.
type MatchCounts struct {
	Matched  int64
	Rows     []int64
	Distinct []int64
}

// matchFn joins one shard of every member's export and emits its counts.
type matchFn struct {
	Export string
}

func (f *matchFn) ProcessElement(ctx context.Context, shard int, emit func(MatchCounts)) error {
	m, err := readManifest(ctx, f.Export)
	if err != nil {
		return err
	}
	c := MatchCounts{Rows: make([]int64, len(m.Members)), Distinct: make([]int64, len(m.Members))}
	var lowest []map[[32]byte]uint32
	for i, mem := range m.Members {
		l, err := readLowest(ctx, f.Export, mem.Pairs[shard])
		if err != nil {
			return err
		}
		c.Rows[i] = (mem.Pairs[shard].Bytes - 8) / 36
		c.Distinct[i] = int64(len(l))
		lowest = append(lowest, l)
	}
	small := 0
	for i := range lowest {
		if len(lowest[i]) < len(lowest[small]) {
			small = i
		}
	}
next:
	for tok := range lowest[small] {
		for _, l := range lowest {
			if _, ok := l[tok]; !ok {
				continue next
			}
		}
		c.Matched++
	}
	emit(c)
	return nil
}

func addCounts(a, b MatchCounts) MatchCounts {
	if a.Rows == nil {
		return b
	}
	out := MatchCounts{Matched: a.Matched + b.Matched, Rows: append([]int64{}, a.Rows...), Distinct: append([]int64{}, a.Distinct...)}
	for i := range b.Rows {
		out.Rows[i] += b.Rows[i]
		out.Distinct[i] += b.Distinct[i]
	}
	return out
}

// Match adds to s the pipeline that matches the export at dir, shard by
// shard, and returns its counts (one element).
func Match(s beam.Scope, dir string, shards int) beam.PCollection {
	ids := make([]int, shards)
	for i := range ids {
		ids[i] = i
	}
	counts := beam.ParDo(s.Scope("match"), &matchFn{Export: dir}, beam.Reshuffle(s, beam.CreateList(s, ids)))
	return beam.Combine(s, addCounts, counts)
}
