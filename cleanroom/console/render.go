package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// assets are the pages' templates and the stylesheet, compiled into the
// binary: the console needs no file and no network but the room.
//
//go:embed templates/*.html static/*
var assets embed.FS

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"collaborations", "collaboration", "query", "timeline", "entry", "budget", "error"}

// pages holds one template set per page.
type pages struct {
	sets map[string]*template.Template
}

// loadPages parses the pages of a console whose pages are under base: their
// links to one another are {{link "/audit"}}.
func loadPages(base string) (*pages, error) {
	p := &pages{sets: map[string]*template.Template{}}
	link := template.FuncMap{"link": func(path string) string { return base + path }}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).Funcs(link).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		p.sets[name] = t
	}
	return p, nil
}

// view is what every page's layout shows: who the console acts as, and
// where the user is.
type view struct {
	Title     string
	Section   string // the navigation entry to mark as current
	Principal string
	Role      string
	Room      string
	Auditor   bool
	Body      any
}

// render writes the page name with body, or an error page if it cannot.
func (s *Server) render(w http.ResponseWriter, status int, name, title, section string, body any) {
	if status < 200 || status > 599 {
		status = http.StatusBadGateway // a problem document with a status no page can carry
	}
	v := view{Title: title, Section: section, Principal: s.cfg.Client.Principal(), Role: s.cfg.Role,
		Room: s.cfg.Client.Room().ID, Auditor: s.auditor(), Body: body}
	var b bytes.Buffer
	if err := s.pages.sets[name].Execute(&b, v); err != nil {
		s.cfg.Logger.Error("console: rendering a page", "page", name, "err", err)
		http.Error(w, "cleanroom console: this page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// failure is what the error page shows: a sentence, and the room's problem
// with the policy's reasons when the room refused.
type failure struct {
	Message string
	Problem *api.Problem
}

// fail shows the error page. err, when it is the room's problem document,
// is shown with its reasons; any other error only as a sentence (its text
// may name an address, never a data value).
func (s *Server) fail(w http.ResponseWriter, _ *http.Request, status int, msg string, err error) {
	f := failure{Message: msg}
	var p *api.Problem
	if errors.As(err, &p) {
		f.Problem = p
		if p.Status >= 400 && p.Status < 600 {
			status = p.Status
		}
	} else if err != nil {
		f.Message += " (" + err.Error() + ")"
	}
	s.render(w, status, "error", "Not available", "", f)
}

// problemOf returns the room's problem document inside err, if any.
func problemOf(err error) *api.Problem {
	var p *api.Problem
	if errors.As(err, &p) {
		return p
	}
	return nil
}

var funcs = template.FuncMap{
	"eps":    formatEpsilon,
	"micro":  func(m int64) string { return formatEpsilon(float64(m) / 1e6) },
	"when":   formatTime,
	"short":  shortDigest,
	"upper":  strings.ToUpper,
	"pretty": prettyJSON,
	"cell":   formatCell,
	"join":   strings.Join,
	"has":    slices.Contains[[]string],
	"inc":    func(i int) int { return i + 1 },
}

// formatEpsilon shows an epsilon to the millionth the ledger counts in,
// without trailing zeros.
func formatEpsilon(e float64) string {
	return strconv.FormatFloat(math.Round(e*1e6)/1e6, 'f', -1, 64)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// shortDigest keeps a digest's first twelve characters: enough to compare
// by eye, short enough to read.
func shortDigest(d string) string {
	if len(d) <= 12 {
		return d
	}
	return d[:12] + "…"
}

func prettyJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}

// formatCell shows one value of a result: numbers to four significant
// decimals at most, strings as they are, a missing value as a dash.
func formatCell(v any) string {
	switch x := v.(type) {
	case nil:
		return "—"
	case float64:
		return formatNumber(x)
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = formatCell(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func formatNumber(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "—"
	case x == math.Trunc(x) && math.Abs(x) < 1e15:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case math.Abs(x) >= 100:
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	return strconv.FormatFloat(x, 'f', 4, 64)
}
