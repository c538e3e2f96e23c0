package console

import (
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strings"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// The pages of the collaborations the principal is in: the list, and one
// collaboration's members, terms, data, match and budget.

func (s *Server) collaborations(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.roomContext(r)
	defer cancel()
	list, err := s.cfg.Client.Collaborations(ctx)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, "The room did not list your collaborations.", err)
		return
	}
	slices.SortFunc(list, func(a, b api.CollaborationSummary) int { return strings.Compare(a.ID, b.ID) })
	s.render(w, http.StatusOK, "collaborations", "Collaborations", "collaborations", list)
}

// terms are the parts of a collaboration's settings document the console
// uses: the query builder's choices. The room's canonical form holds more;
// the page shows all of it.
type terms struct {
	AllowedDimensions []string              `json:"allowed_dimensions"`
	Domains           map[string][]string   `json:"domains"`
	Bounds            map[string][2]float64 `json:"bounds"`
	NoiseOff          bool                  `json:"noise_off"`
}

func termsOf(c *api.Collaboration) terms {
	var t terms
	json.Unmarshal(c.Settings, &t) // what does not decode is still shown raw
	return t
}

// member is one member's line on the collaboration page.
type member struct {
	ID        string
	Creator   bool
	Accepted  bool
	Dataset   *api.Dataset
	Pending   int    // relay tasks waiting for this member
	MatchRate string // the latest match release's rate, if any
}

type collabPage struct {
	C        *api.Collaboration
	Settings string
	Members  []member
	Budget   *api.BudgetInfo
	History  []api.BudgetEvent
	Gauge    template.HTML
	Over     template.HTML
	CanQuery bool
	Notes    []string // parts the room did not give, and why
}

func (s *Server) collaboration(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.roomContext(r)
	defer cancel()
	id := r.PathValue("id")
	c, err := s.cfg.Client.Collaboration(ctx, id)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, "The room did not show this collaboration.", err)
		return
	}
	p := collabPage{C: c, Settings: prettyJSON(c.Settings), CanQuery: !s.auditor()}
	for _, m := range c.Members {
		mv := member{ID: m, Creator: m == c.CreatedBy, Accepted: c.Accepted[m], Dataset: c.Datasets[m], Pending: c.PendingReencryption[m]}
		if c.Match != nil {
			mv.MatchRate = c.Match.MatchRate[m]
		}
		p.Members = append(p.Members, mv)
	}
	if b, err := s.cfg.Client.Budget(ctx, id); err != nil {
		p.Notes = append(p.Notes, "The budget is not shown: "+refusalText(err))
	} else {
		p.Budget = b
		p.Gauge = budgetGauge(b.Spent, b.Total)
	}
	if h, err := s.cfg.Client.BudgetHistory(ctx, id); err != nil {
		p.Notes = append(p.Notes, "The budget's history is not shown: "+refusalText(err))
	} else {
		p.History = h
		if p.Budget != nil {
			p.Over = budgetOverTime(h, p.Budget.Total)
		}
	}
	s.render(w, http.StatusOK, "collaboration", c.ID, "collaborations", p)
}

// refusalText is a refusal in one sentence: the room's title and reasons,
// or that the room could not be reached.
func refusalText(err error) string {
	if p := problemOf(err); p != nil {
		s := p.Title
		for _, r := range p.Reasons {
			s += "; " + r
		}
		return s
	}
	return "the room could not be reached"
}
