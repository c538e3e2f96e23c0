package console

import (
	"encoding/json"
	"net/http"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// The query page: the builder, the spec it sends, and the answer or the
// policy's refusal.

type queryPage struct {
	C        *api.Collaboration
	Choices  choices
	Form     queryForm
	Problems []string     // what the form itself lacks
	Spec     string       // the JSON spec sent, or previewed
	Preview  bool         // the spec was only shown, not sent
	Refusal  *api.Problem // the room's refusal, with the policy's reasons
	Result   *resultView
}

func (s *Server) builder(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.roomContext(r)
	defer cancel()
	c, err := s.cfg.Client.Collaboration(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, "The room did not show this collaboration.", err)
		return
	}
	p := queryPage{C: c, Choices: choicesOf(c), Form: defaultForm(c.Constraints)}
	s.render(w, http.StatusOK, "query", "Query "+c.ID, "collaborations", p)
}

// maxFormBytes bounds a posted form: the builder's fields are short.
const maxFormBytes = 64 << 10

func (s *Server) runQuery(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.roomContext(r)
	defer cancel()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, http.StatusBadRequest, "The form could not be read.", nil)
		return
	}
	c, err := s.cfg.Client.Collaboration(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, "The room did not show this collaboration.", err)
		return
	}
	p := queryPage{C: c, Choices: choicesOf(c), Form: parseQueryForm(r.PostForm)}
	spec, problems := p.Form.spec()
	if len(problems) > 0 {
		p.Problems = problems
		s.render(w, http.StatusUnprocessableEntity, "query", "Query "+c.ID, "collaborations", p)
		return
	}
	b, _ := json.MarshalIndent(spec, "", "  ")
	p.Spec = string(b)
	if r.PostForm.Get("do") == "preview" {
		p.Preview = true
		s.render(w, http.StatusOK, "query", "Query "+c.ID, "collaborations", p)
		return
	}
	res, err := s.cfg.Client.Query(ctx, c.ID, spec)
	if err != nil {
		if p.Refusal = problemOf(err); p.Refusal == nil {
			s.fail(w, r, http.StatusBadGateway, "The room did not answer the query.", err)
			return
		}
		s.render(w, p.Refusal.Status, "query", "Query "+c.ID+": refused", "collaborations", p)
		return
	}
	id := s.results.put(c.ID, &spec, res)
	p.Result = newResultView(id, &spec, res)
	s.render(w, http.StatusOK, "query", "Query "+c.ID+": answer", "collaborations", p)
}
