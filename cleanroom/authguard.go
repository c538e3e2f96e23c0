package cleanroom

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// Failed authentications are what anyone who can reach the port can make,
// so they are throttled and recorded in aggregate, not one by one:
//
//   - Each source (the connection's remote address; an IPv6 address by its
//     /64, which one host usually holds whole) has a token bucket of
//     AuthLimits.Burst failures refilled at AuthLimits.PerMinute. A failure
//     takes a token; a source with no token left is answered 429 with
//     Retry-After, without its token being verified, until one refills.
//     Good requests take no token, so a source's own successes never throttle
//     it and other sources' failures never do either.
//   - At most AuthLimits.Sources sources are tracked apart; sources beyond
//     share one bucket ("other"), so the table stays bounded however many
//     addresses an attacker holds. A source whose bucket is full again and
//     that has nothing left to record is forgotten at each flush.
//   - Every AuthLimits.Interval, and when the room closes, each source with
//     refusals gets one audit entry counting them by reason (see
//     flushAuthFailures): the log grows with the number of sources an
//     interval, not with the number of requests.

// AuthLimits throttles failed authentications; zero fields take the defaults.
type AuthLimits struct {
	// PerMinute failed authentications a source may make, sustained, after
	// a burst of Burst (defaults 60 and 20).
	PerMinute, Burst int
	// Sources is how many sources are tracked apart (default 4096).
	Sources int
	// Interval is how often the failures are recorded in the audit log,
	// one entry per source (default one minute).
	Interval time.Duration
}

func (l AuthLimits) withDefaults() AuthLimits {
	if l.PerMinute <= 0 {
		l.PerMinute = 60
	}
	if l.Burst <= 0 {
		l.Burst = 20
	}
	if l.Sources <= 0 {
		l.Sources = 4096
	}
	if l.Interval <= 0 {
		l.Interval = time.Minute
	}
	return l
}

// otherSource names the bucket shared by the sources beyond the table.
const otherSource = "other"

// authGuard holds the buckets and the counts not yet recorded.
type authGuard struct {
	limits AuthLimits
	now    func() time.Time

	mu      sync.Mutex
	sources map[string]*sourceState
	other   sourceState
}

type sourceState struct {
	tokens  float64
	last    time.Time
	refused map[string]int64 // by reason, since the last flush
}

// sourceReport is what one source's audit entry records.
type sourceReport struct {
	source  string
	refused map[string]int64
}

func newAuthGuard(l AuthLimits, now func() time.Time) *authGuard {
	l = l.withDefaults()
	g := &authGuard{limits: l, now: now, sources: map[string]*sourceState{}}
	g.other.tokens = float64(l.Burst)
	return g
}

// sourceOf returns the source a request is throttled by: the remote
// address of its connection (never a header, which the caller writes),
// an IPv6 address by its /64.
func sourceOf(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return otherSource
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// state returns src's state; create adds src to the table if it has room.
// Sources not tracked share g.other. g.mu is held.
func (g *authGuard) state(src string, create bool) *sourceState {
	if s := g.sources[src]; s != nil {
		return s
	}
	if !create || src == otherSource || len(g.sources) >= g.limits.Sources {
		return &g.other
	}
	s := &sourceState{tokens: float64(g.limits.Burst), last: g.now()}
	g.sources[src] = s
	return s
}

// refill adds the tokens earned since s.last. g.mu is held.
func (g *authGuard) refill(s *sourceState, now time.Time) {
	if el := now.Sub(s.last); el > 0 {
		s.tokens = math.Min(float64(g.limits.Burst), s.tokens+el.Minutes()*float64(g.limits.PerMinute))
	}
	s.last = now
}

// admit reports whether src may have its token verified; if not, it
// counts the request as refused with reason and says when to retry.
func (g *authGuard) admit(src, reason string) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	s := g.state(src, false)
	if s == &g.other && src != otherSource && len(g.sources) < g.limits.Sources {
		return 0, true // not tracked, and room to track it when it fails
	}
	g.refill(s, now)
	if s.tokens >= 1 {
		return 0, true
	}
	s.count(reason)
	perToken := time.Minute / time.Duration(g.limits.PerMinute)
	return time.Duration((1 - s.tokens) * float64(perToken)), false
}

// fail takes a token from src's bucket and counts a refusal with reason.
func (g *authGuard) fail(src, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.state(src, true)
	g.refill(s, g.now())
	s.tokens = math.Max(0, s.tokens-1)
	s.count(reason)
}

func (s *sourceState) count(reason string) {
	if s.refused == nil {
		s.refused = map[string]int64{}
	}
	s.refused[reason]++
}

// drain returns the refusals counted since the last drain, by source in
// order, and forgets the sources whose buckets are full again.
func (g *authGuard) drain() []sourceReport {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	var out []sourceReport
	for src, s := range g.sources {
		if len(s.refused) > 0 {
			out = append(out, sourceReport{src, s.refused})
			s.refused = nil
		}
		if g.refill(s, now); s.tokens >= float64(g.limits.Burst) {
			delete(g.sources, src)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].source < out[j].source })
	if len(g.other.refused) > 0 {
		out = append(out, sourceReport{otherSource, g.other.refused})
		g.other.refused = nil
	}
	return out
}

// restore puts back counts a flush could not record, to be recorded at
// the next one.
func (g *authGuard) restore(reps []sourceReport) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, rep := range reps {
		s := g.state(rep.source, true)
		if s.refused == nil {
			s.refused = map[string]int64{}
		}
		for reason, n := range rep.refused {
			s.refused[reason] += n
		}
	}
}
