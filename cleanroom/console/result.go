package console

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// An answer as the page shows it: a table, bar charts by segment, what was
// withheld and why, and a CSV file of the same rows.

type resultView struct {
	ID        string // the stored result's random id: its CSV is /results/ID.csv
	R         *api.QueryResult
	Columns   []string
	Rows      [][]string
	GroupCols int
	Charts    []template.HTML
	Withheld  string
}

// wholeOverlap labels the one group of a query without group_by.
const wholeOverlap = "all matched people"

func newResultView(id string, spec *api.QuerySpec, r *api.QueryResult) *resultView {
	v := &resultView{ID: id, R: r, Columns: r.Columns, GroupCols: min(len(spec.GroupBy), len(r.Columns))}
	for _, row := range r.Rows {
		cells := make([]string, len(row))
		for i, c := range row {
			cells[i] = formatCell(c)
		}
		v.Rows = append(v.Rows, cells)
	}
	v.Charts = resultCharts(r, v.GroupCols)
	v.Withheld = withheldNote(r, len(spec.GroupBy) > 0)
	return v
}

// segments labels each row by its group: the group-by values, joined.
func segments(r *api.QueryResult, groupCols int) []string {
	out := make([]string, len(r.Rows))
	for i, row := range r.Rows {
		if groupCols == 0 {
			out[i] = wholeOverlap
			continue
		}
		parts := make([]string, 0, groupCols)
		for _, c := range row[:min(groupCols, len(row))] {
			parts = append(parts, labelPart(formatCell(c), groupCols))
		}
		out[i] = strings.Join(parts, " · ")
	}
	return out
}

func isBidiControl(r rune) bool { return unicode.Is(unicode.Bidi_Control, r) }

// labelRunes is about what a chart's label shows (svg.go).
const labelRunes = 24

// labelPart is one member's value in a chart's label: without direction
// controls or other invisible characters, shortened on its own (so that a
// long value of one member cannot push another's out of the label), and
// isolated (FSI … PDI), so that one member's right-to-left letters do not
// reorder the next member's digits and signs ("25-34" drawn "34-25").
func labelPart(v string, parts int) string {
	v = strings.Map(func(r rune) rune {
		if isBidiControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, v)
	if n := max(labelRunes/max(parts, 1)-1, 4); len([]rune(v)) > n {
		v = string([]rune(v)[:n-1]) + "…"
	}
	return "\u2068" + v + "\u2069"
}

// withheldNote explains which groups are not in the table, as the privacy
// model releases it: a count of declared groups below k, or nothing at all
// about groups that partition selection did not choose.
func withheldNote(r *api.QueryResult, grouped bool) string {
	switch {
	case r.Partitions == api.PartitionsSelected:
		return fmt.Sprintf("The groups come from the data, chosen by differentially private partition selection "+
			"(which spent delta %g of the budget as well). A group that was not chosen is neither shown nor counted: "+
			"how many there were is not released.", r.Delta)
	case r.Withheld == nil:
		return ""
	case *r.Withheld == 0 && grouped:
		return fmt.Sprintf("Every declared group reached the minimum group size (k = %d) on its noisy count; none was withheld.", r.MinGroup)
	case *r.Withheld == 0:
		return ""
	case !grouped:
		return fmt.Sprintf("The matched people, as filtered, were fewer than the minimum group size (k = %d) on a noisy count: the answer is withheld.", r.MinGroup)
	}
	return fmt.Sprintf("%d of the declared groups had a noisy count below the minimum group size (k = %d) and are withheld. "+
		"Which groups are shown, and this number, depend only on noisy counts.", *r.Withheld, r.MinGroup)
}

// resultStore keeps the latest answers of this console, for their CSV
// downloads; the oldest go first.
type resultStore struct {
	mu    sync.Mutex
	max   int
	order []string
	byID  map[string]storedResult
}

type storedResult struct {
	collab string
	res    *api.QueryResult
	groups int
}

func newResultStore(max int) *resultStore {
	return &resultStore{max: max, byID: map[string]storedResult{}}
}

func (s *resultStore) put(collab string, spec *api.QuerySpec, res *api.QueryResult) string {
	var b [12]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.order) >= s.max {
		delete(s.byID, s.order[0])
		s.order = s.order[1:]
	}
	s.order = append(s.order, id)
	s.byID[id] = storedResult{collab: collab, res: res, groups: len(spec.GroupBy)}
	return id
}

func (s *resultStore) get(id string) (storedResult, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byID[id]
	return r, ok
}

func (s *Server) downloadCSV(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue("file"), ".csv")
	res, found := s.results.get(id)
	if !ok || !found {
		s.fail(w, r, http.StatusNotFound, "This answer is no longer held by the console: run the query again.", nil)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.csv"`, safeName(res.collab), id))
	writeCSV(w, res.res)
}

// writeCSV writes a result's columns and rows. A text cell that a
// spreadsheet would run as a formula is prefixed with a quote: group
// labels are another member's uploaded values.
func writeCSV(w http.ResponseWriter, r *api.QueryResult) {
	bw := bufio.NewWriter(w)
	writeCSVRecord(bw, r.Columns)
	rec := make([]string, 0, len(r.Columns))
	for _, row := range r.Rows {
		rec = rec[:0]
		for _, c := range row {
			switch x := c.(type) {
			case float64:
				rec = append(rec, strconv.FormatFloat(x, 'f', -1, 64))
			case string:
				if x != "" && strings.ContainsRune("=+-@\t\r", rune(x[0])) {
					x = "'" + x
				}
				rec = append(rec, x)
			case nil:
				rec = append(rec, "")
			default:
				rec = append(rec, formatCell(x))
			}
		}
		writeCSVRecord(bw, rec)
	}
	bw.Flush()
}

// writeCSVRecord writes one line with every field quoted. encoding/csv
// quotes only a field holding a comma, a quote or a line break, but a
// spreadsheet opens a .csv with the locale's list separator (";" where ","
// is the decimal mark, tabs in LibreOffice's import): a value such as
// "north;=1+1" written bare would split there into a cell that runs as a
// formula. A quoted field is one cell whatever the separator.
func writeCSVRecord(w *bufio.Writer, rec []string) {
	for i, f := range rec {
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteByte('"')
		w.WriteString(strings.ReplaceAll(f, `"`, `""`))
		w.WriteByte('"')
	}
	w.WriteByte('\n')
}

// safeName keeps a collaboration id's letters, digits, dots, dashes and
// underscores, for a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}
