package pipeline

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/opencleanroom/cleanroom/cleanroom/job"
)

func init() {
	register.DoFn3x0[string, int64, func(string, StatValue)](&tagCountFn{})
	register.DoFn3x0[string, float64, func(string, StatValue)](&tagSumFn{})
	register.DoFn3x0[string, int64, func(string, StatValue)](&tagLiftFn{})
	register.Emitter2[string, StatValue]()
	register.Function2x1[string, func(*StatValue) bool, string](groupLine)
	register.Iter1[StatValue]()
	register.Function2x0[string, func(string)](expandCells)
	register.Emitter1[string]()
	beam.RegisterType(reflect.TypeOf((*StatValue)(nil)).Elem())
}

// StatValue is one noisy statistic of a group.
type StatValue struct {
	Stat  int
	Value float64
}

type tagCountFn struct{ Stat int }

func (f *tagCountFn) ProcessElement(group string, n int64, emit func(string, StatValue)) {
	emit(group, StatValue{Stat: f.Stat, Value: float64(n)})
}

type tagSumFn struct{ Stat int }

func (f *tagSumFn) ProcessElement(group string, x float64, emit func(string, StatValue)) {
	emit(group, StatValue{Stat: f.Stat, Value: x})
}

// tagLiftFn tags a lift's cell counts: the partition is the group and the
// cell, the statistic the lift's first plus the cell.
type tagLiftFn struct{ Stat int }

func (f *tagLiftFn) ProcessElement(key string, n int64, emit func(string, StatValue)) {
	i := strings.LastIndexByte(key, 0)
	cell, err := strconv.Atoi(key[i+1:])
	if i < 0 || err != nil || cell < 0 || cell > 3 {
		panic("pipeline: a lift partition without its cell")
	}
	emit(key[:i], StatValue{Stat: f.Stat + cell, Value: float64(n)})
}

// line is one output line: a group's partition key and its statistics.
type line struct {
	Group string          `json:"g"`
	Stats map[int]float64 `json:"s"`
}

func groupLine(group string, values func(*StatValue) bool) string {
	l := line{Group: group, Stats: map[int]float64{}}
	var v StatValue
	for values(&v) {
		l.Stats[v.Stat] = v.Value
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// lines joins the statistics' outputs into one line per group.
func lines(s beam.Scope, outs []beam.PCollection) beam.PCollection {
	s = s.Scope("lines")
	return beam.ParDo(s, groupLine, beam.GroupByKey(s, beam.Flatten(s, outs...)))
}

// Collect reads a query's output lines, from all its passes, and makes
// the plan's result (job.Finish): every group's statistics in the order
// of job.GroupStats.
func (c *Collector) Collect(rs ...io.Reader) (*job.Result, error) {
	stats := map[string]map[int]float64{} // group → its statistics, from every pass
	for _, r := range rs {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var ln line
			if err := json.Unmarshal(sc.Bytes(), &ln); err != nil {
				return nil, fmt.Errorf("pipeline: an output line: %w", err)
			}
			have := stats[ln.Group]
			if have == nil {
				have = map[int]float64{}
				stats[ln.Group] = have
			}
			for i, v := range ln.Stats {
				if _, ok := have[i]; ok {
					return nil, fmt.Errorf("pipeline: a group's statistic %d twice", i)
				}
				have[i] = v
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	groups := make([]job.GroupStats, 0, len(stats))
	for g, s := range stats {
		gs, err := c.groupStats(line{Group: g, Stats: s})
		if err != nil {
			return nil, err
		}
		groups = append(groups, gs)
	}
	// A stable input order for Finish (which sorts rows by their values).
	sort.Slice(groups, func(i, j int) bool {
		return strings.Join(groups[i].Values, "\x00") < strings.Join(groups[j].Values, "\x00")
	})
	return job.Finish(c.plan, groups, c.eps)
}

// Collector makes a query's result from its pipeline's output.
type Collector struct {
	stats []stat
	first []int
	plan  *job.Plan
	eps   float64 // the epsilon of each statistic's noise (privacy)
}

// groupStats turns a line into a group's statistics. A sum the pipeline
// did not compute (bounds [0, 0]) is exactly 0.
func (l *Collector) groupStats(ln line) (job.GroupStats, error) {
	vals, err := parseGroupKey(ln.Group)
	if err != nil {
		return job.GroupStats{}, err
	}
	n, ok := ln.Stats[0]
	if !ok {
		return job.GroupStats{}, fmt.Errorf("pipeline: a group without its count")
	}
	g := job.GroupStats{Values: vals, Count: int64(n), Metrics: make([][]float64, len(l.plan.Metrics))}
	for mi := range l.plan.Metrics {
		end := len(l.stats)
		if mi+1 < len(l.first) {
			end = l.first[mi+1]
		}
		g.Metrics[mi] = []float64{}
		for i := l.first[mi]; i < end; i++ {
			v, ok := ln.Stats[i]
			if !ok && !(l.stats[i].kind == statSum && l.stats[i].lo == 0 && l.stats[i].hi == 0) {
				return job.GroupStats{}, fmt.Errorf("pipeline: a group without statistic %d", i)
			}
			g.Metrics[mi] = append(g.Metrics[mi], v)
		}
	}
	return g, nil
}
