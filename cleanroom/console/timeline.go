package console

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencleanroom/cleanroom/audit/bundle"
)

// The audit log as a timeline, newest first, filtered by principal, action,
// collaboration, decision and time. Filters are names from the log (never a
// data value), so they go in the URL and a filtered view can be bookmarked.

// timelinePage lists at most pageSize entries at a time.
const pageSize = 200

// inputTime is the format of a datetime-local field; the console reads and
// shows times in UTC.
const inputTime = "2006-01-02T15:04"

type auditFilter struct {
	Principal, Action, Collab, Decision string
	From, To                            string // inputTime, UTC
	Before                              int64  // show entries below this index (paging); 0: from the newest
}

func parseAuditFilter(q url.Values) auditFilter {
	f := auditFilter{Principal: q.Get("principal"), Action: q.Get("action"), Collab: q.Get("collab"),
		Decision: q.Get("decision"), From: q.Get("from"), To: q.Get("to")}
	f.Before, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	return f
}

// keep reports whether e passes the filter.
func (f auditFilter) keep(e indexedEntry) bool {
	switch {
	case f.Principal != "" && e.E.Principal != f.Principal,
		f.Action != "" && e.E.Action != f.Action,
		f.Collab != "" && e.E.Collaboration != f.Collab,
		f.Decision == "allowed" && !e.E.Decision.Allow,
		f.Decision == "denied" && e.E.Decision.Allow:
		return false
	}
	if t, err := time.Parse(inputTime, f.From); err == nil && e.E.Time.Before(t) {
		return false
	}
	if t, err := time.Parse(inputTime, f.To); err == nil && !e.E.Time.Before(t.Add(time.Minute)) {
		return false
	}
	return true
}

// query is the filter as a URL query, with before set to the next page.
func (f auditFilter) query(before int64) string {
	q := url.Values{}
	for k, v := range map[string]string{"principal": f.Principal, "action": f.Action, "collab": f.Collab, "decision": f.Decision, "from": f.From, "to": f.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if before > 0 {
		q.Set("before", strconv.FormatInt(before, 10))
	}
	return q.Encode()
}

type timelinePage struct {
	Snap                        *auditSnapshot
	Filter                      auditFilter
	Principals, Actions, Collab []string
	Shown                       []indexedEntry
	Matching, Denied            int
	Next                        string // the next page's address, if any
	Strip                       template.HTML
	VerifierKey                 string
}

func (s *Server) timeline(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.roomContext(r)
	defer cancel()
	snap := s.currentAudit(ctx)
	p := timelinePage{Snap: snap, Filter: parseAuditFilter(r.URL.Query()), VerifierKey: s.verifierKey()}
	seen := map[string]map[string]bool{"p": {}, "a": {}, "c": {}}
	var matching []indexedEntry
	for _, e := range snap.Entries {
		seen["p"][e.E.Principal], seen["a"][e.E.Action] = true, true
		if e.E.Collaboration != "" {
			seen["c"][e.E.Collaboration] = true
		}
		if p.Filter.keep(e) {
			matching = append(matching, e)
			if !e.E.Decision.Allow {
				p.Denied++
			}
		}
	}
	p.Principals, p.Actions, p.Collab = sortedKeys(seen["p"]), sortedKeys(seen["a"]), sortedKeys(seen["c"])
	p.Matching = len(matching)
	p.Strip = auditStrip(matching)
	for i := len(matching) - 1; i >= 0 && len(p.Shown) < pageSize; i-- {
		if p.Filter.Before > 0 && matching[i].Index >= p.Filter.Before {
			continue
		}
		p.Shown = append(p.Shown, matching[i])
	}
	if n := len(p.Shown); n == pageSize && p.Shown[n-1].Index > matching[0].Index {
		p.Next = s.link("/audit?") + p.Filter.query(p.Shown[n-1].Index)
	}
	s.render(w, http.StatusOK, "timeline", "Audit log", "audit", p)
}

// verifierKey is the key the bundle is checked with, as cleanroom audit
// verify --key takes it.
func (s *Server) verifierKey() string {
	if s.cfg.VerifierKey != "" {
		return s.cfg.VerifierKey
	}
	return s.cfg.Client.Room().VerifierKey
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// auditStrip draws the entries on a time axis: a short grey tick for each
// allowed action, a tall red one for each denial.
func auditStrip(entries []indexedEntry) template.HTML {
	if len(entries) == 0 {
		return ""
	}
	const left, right, h = 8, 8, 64
	t0, t1 := entries[0].E.Time, entries[len(entries)-1].E.Time
	span := math.Max(t1.Sub(t0).Seconds(), 1)
	denied := 0
	var ticks strings.Builder
	for _, e := range entries {
		x := left + e.E.Time.Sub(t0).Seconds()/span*float64(chartWidth-left-right)
		if e.E.Decision.Allow {
			fmt.Fprintf(&ticks, `<line class="tick-allow" x1="%s" y1="22" x2="%s" y2="38"/>`, num(x), num(x))
		} else {
			denied++
			fmt.Fprintf(&ticks, `<line class="tick-deny" x1="%s" y1="10" x2="%s" y2="46"/>`, num(x), num(x))
		}
	}
	label := fmt.Sprintf("%d entries from %s to %s; %d denied", len(entries), formatTime(t0), formatTime(t1), denied)
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart strip" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartWidth, h, svgText(label))
	fmt.Fprintf(&sb, `<line class="axis" x1="%d" y1="30" x2="%d" y2="30"/>`, left, chartWidth-right)
	sb.WriteString(ticks.String())
	fmt.Fprintf(&sb, `<text class="label" x="%d" y="%d">%s</text>`, left, h-4, svgText(formatTime(t0)))
	fmt.Fprintf(&sb, `<text class="label" x="%d" y="%d" text-anchor="end">%s</text>`, chartWidth-right, h-4, svgText(formatTime(t1)))
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

// reconcileRow compares what the log charged a collaboration with what the
// room's ledger says it spent.
type reconcileRow struct {
	Collab       string
	LogMicro     int64
	RoomSpent    float64
	RoomErr      string
	Agrees       bool
	RoomReported bool
	Under        bool // the room reports less than its log charged
}

type budgetPage struct {
	Snap *auditSnapshot
	Rows []reconcileRow
}

func (s *Server) reconcile(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.roomContext(r)
	defer cancel()
	snap := s.currentAudit(ctx)
	entries := make([]bundle.Entry, len(snap.Entries))
	for i, e := range snap.Entries {
		entries[i] = e.E
	}
	ledger := bundle.ReconcileBudget(entries)
	collabs := map[string]bool{}
	for c := range ledger {
		collabs[c] = true
	}
	if list, err := s.cfg.Client.Collaborations(ctx); err == nil {
		for _, c := range list {
			collabs[c.ID] = true
		}
	}
	p := budgetPage{Snap: snap}
	for _, c := range sortedKeys(collabs) {
		row := reconcileRow{Collab: c, LogMicro: ledger[c]}
		if b, err := s.cfg.Client.Budget(ctx, c); err != nil {
			row.RoomErr = refusalText(err)
		} else {
			room := int64(math.Round(b.Spent * bundle.MicroEpsilon))
			row.RoomReported, row.RoomSpent = true, b.Spent
			row.Agrees, row.Under = room == row.LogMicro, room < row.LogMicro
		}
		p.Rows = append(p.Rows, row)
	}
	s.render(w, http.StatusOK, "budget", "Budgets reconciled", "budget", p)
}
