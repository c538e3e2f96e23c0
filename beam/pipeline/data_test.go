package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
	"github.com/opencleanroom/cleanroom/cleanroom/columnar"
	"github.com/opencleanroom/cleanroom/cleanroom/job"
	"github.com/opencleanroom/cleanroom/matcher"
)

// member is one member's list for the tests: a token and values per row.
type member struct {
	name    string
	columns []string
	tokens  [][32]byte
	values  [][]string // per row, per column
}

func tokenOf(person int) [32]byte {
	return sha256.Sum256(binary.LittleEndian.AppendUint64([]byte("person"), uint64(person)))
}

// twoMembers makes alpha and bravo: n people each, alpha's 0..n-1 and
// bravo's n/3..n/3+n-1 in a shuffled order, alpha naming some people
// twice (a duplicate identifier at a later row), with values that exercise
// the parsing rules.
func twoMembers(n int, seed uint64) []*member {
	rng := rand.New(rand.NewPCG(seed, 2))
	bands := []string{"18-24", "25-34", "35-44", "45+", "unknown"}
	nums := []string{"10", " 20 ", "abc", "-5", "1e9", "250", "", "42.5", "Inf", "99"}
	truth := []string{"true", "YES", "0", "1", "no", " y ", "2"}
	a := &member{name: "alpha", columns: []string{"band", "revenue", "cost", "exposed"}}
	b := &member{name: "bravo", columns: []string{"band", "revenue", "converted"}}
	for i := range n {
		a.tokens = append(a.tokens, tokenOf(i))
		a.values = append(a.values, []string{bands[rng.IntN(len(bands))], nums[rng.IntN(len(nums))], fmt.Sprint(rng.IntN(5)), truth[rng.IntN(len(truth))]})
	}
	for i := 0; i < n; i += 17 { // duplicates, at later rows
		a.tokens = append(a.tokens, tokenOf(i))
		a.values = append(a.values, []string{"dup", "1000", "1", "1"})
	}
	for _, i := range rng.Perm(n) {
		b.tokens = append(b.tokens, tokenOf(i+n/3))
		b.values = append(b.values, []string{bands[rng.IntN(len(bands))], nums[rng.IntN(len(nums))], truth[rng.IntN(len(truth))]})
	}
	return []*member{a, b}
}

// writeExport writes the members as a room exports them.
func writeExport(t testing.TB, shards int, members []*member) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "export")
	w, err := columnar.Create(dir, shards)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		mw, err := w.Member(m.name, int64(len(m.tokens)), m.columns)
		if err != nil {
			t.Fatal(err)
		}
		for r, tok := range m.tokens {
			if err := mw.Pair(tok[:], uint32(r)); err != nil {
				t.Fatal(err)
			}
		}
		vals := make([][]byte, len(m.columns))
		for r, row := range m.values {
			for j, v := range row {
				vals[j] = []byte(v)
			}
			if err := mw.Values(uint32(r), vals); err != nil {
				t.Fatal(err)
			}
		}
		if err := mw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// local is the room's local engine on the same members: the join as
// package matcher makes it, the columns as package analytics holds them.
type local struct {
	members []*member
	table   *analytics.Table
	dups    [][]uint32
	cols    map[string]*analytics.Column
}

func newLocal(t testing.TB, members []*member) *local {
	t.Helper()
	var sets []matcher.Reader
	for _, m := range members {
		pairs := make([]matcher.Pair, len(m.tokens))
		for r, tok := range m.tokens {
			pairs[r] = matcher.Pair{Token: tok, Row: uint32(r)}
		}
		sets = append(sets, &matcher.SliceReader{Pairs: pairs})
	}
	rows := make([][]uint32, len(members))
	res, err := matcher.Intersect(context.Background(), sets, matcher.Options{DuplicateRows: true}, func(r []uint32) error {
		for i, x := range r {
			rows[i] = append(rows[i], x)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	l := &local{members: members, table: analytics.NewTable(rows), cols: map[string]*analytics.Column{}}
	for _, s := range res.Sets {
		l.dups = append(l.dups, s.DuplicateRows)
	}
	return l
}

func (l *local) member(name string) (int, *member) {
	for i, m := range l.members {
		if m.name == name {
			return i, m
		}
	}
	panic("no member " + name)
}

func (l *local) ref(r job.Ref) analytics.Ref {
	i, m := l.member(r.Member)
	if l.cols[r.Name()] == nil {
		j := slices.Index(m.columns, r.Column)
		cb := analytics.NewColumnBuilder(len(m.values))
		for _, row := range m.values {
			cb.Add(row[j])
		}
		l.cols[r.Name()] = cb.Column()
	}
	return analytics.Ref{Member: i, Col: l.cols[r.Name()], Name: r.Name()}
}

// plan is p for package analytics, with the given noise, as the room's
// planner resolves it.
func (l *local) plan(p *job.Plan, noise analytics.Noise) *analytics.Plan {
	bounded := func(b *job.Bounded) analytics.Bounded {
		return analytics.Bounded{Ref: l.ref(b.Ref), Lo: b.Lo, Hi: b.Hi}
	}
	ap := &analytics.Plan{Table: l.table, Members: p.Members, MinGroup: p.MinGroup, Epsilon: p.Epsilon, Delta: p.Delta, Noise: noise}
	for _, g := range p.GroupBy {
		ap.GroupBy = append(ap.GroupBy, analytics.Group{Ref: l.ref(g.Ref), Domain: g.Domain})
	}
	for _, f := range p.Filters {
		r := l.ref(f.Ref)
		keep := make([]bool, len(r.Col.Dict))
		k := f.Keeper()
		for i, v := range r.Col.Dict {
			keep[i] = k([]byte(v))
		}
		ap.Filters = append(ap.Filters, analytics.Filter{Ref: r, Keep: keep})
	}
	for _, m := range p.Metrics {
		am := analytics.Metric{Kind: m.Kind}
		switch m.Kind {
		case job.Sum, job.Avg:
			am.Column = bounded(m.Column)
		case job.MatchRate:
			i, mem := l.member(m.Member)
			am.Member, am.MemberRows, am.Duplicates = i, len(mem.tokens), l.dups[i]
		case job.ROI:
			for i := range m.Revenue {
				am.Revenue = append(am.Revenue, bounded(&m.Revenue[i]))
			}
			am.CostValue = m.CostValue
			if m.Cost != nil {
				c := bounded(m.Cost)
				am.Cost = &c
			}
		case job.Lift:
			am.Exposed, am.Converted = l.ref(*m.Exposed), l.ref(*m.Converted)
		}
		ap.Metrics = append(ap.Metrics, am)
	}
	return ap
}
