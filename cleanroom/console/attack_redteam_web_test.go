package console

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// Red-team attacks on the console by a member who controls strings the
// other member, its analysts or its auditors later see. The attacker is
// brandA (coursely), which uploads the attribute values the victim's
// query groups by; the victim is brandB (pulsefit) and its console.

// privateAlliance starts a room of its own for an attack that adds
// collaborations or entries the shared room's tests would see (the
// auditor's reconciliation expects one collaboration): the alliance's
// principals, collaboration and policy, with lists of 1,000 people, every
// one of them in both.
func privateAlliance(t *testing.T) *fixture {
	t.Helper()
	f, err := startAlliance(t.TempDir(), 1000, 1000)
	if err != nil {
		t.Fatalf("starting a room: %v", err)
	}
	t.Cleanup(f.stop)
	return f
}

// craftedCollab makes a collaboration of brandA and brandB (hashed, every
// member accepted, secrets delivered), in which brandA uploads rows people
// with attribute "tag" cycling through labels and brandB uploads the same
// people with one column, and runs the match. It returns the
// collaboration's id. The groups a query by brandA's tag makes come from
// the data (no declared domain): their labels are brandA's values.
func craftedCollab(t *testing.T, f *fixture, id string, labels []string, rows int) string {
	t.Helper()
	settings, _ := json.Marshal(map[string]any{"allowed_dimensions": []string{brandA + ".tag"}})
	return craftedCollabWith(t, f, id, labels, rows, settings, "")
}

// craftedCollabWith is craftedCollab with brandA's settings document and,
// if module is not empty, a collaboration policy module brandA proposes
// and brandB approves (by its hash, as members do).
func craftedCollabWith(t *testing.T, f *fixture, id string, labels []string, rows int, settings []byte, module string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	dir := t.TempDir()
	a, b := f.clients[brandA], f.clients[brandB]
	if _, err := a.CreateCollaboration(ctx, api.CreateCollaboration{ID: id, Mode: api.ModeHashed, Profile: crypto.ProfilePAIRv1,
		Kind: "email", Members: []string{brandA, brandB}, Settings: settings}); err != nil {
		t.Fatalf("creating %s: %v", id, err)
	}
	states := map[string]client.StateDir{brandA: client.StateDir(filepath.Join(dir, brandA)), brandB: client.StateDir(filepath.Join(dir, brandB))}
	if err := a.DistributeSecret(ctx, id, states[brandA], nil); err != nil {
		t.Fatal(err)
	}
	shown, err := b.Collaboration(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Accept(ctx, id, shown.SettingsDigest); err != nil {
		t.Fatal(err)
	}
	if err := b.ReceiveSecret(ctx, id, states[brandB], nil); err != nil {
		t.Fatal(err)
	}
	if module != "" {
		prop, err := a.ProposePolicy(ctx, id, []byte(module))
		if err != nil {
			t.Fatalf("proposing the module: %v", err)
		}
		if _, err := b.ApprovePolicy(ctx, id, prop.Hash); err != nil {
			t.Fatalf("approving the module: %v", err)
		}
	}
	for _, m := range []struct {
		who, col string
		val      func(i int) string
	}{
		{brandA, "tag", func(i int) string { return labels[i%len(labels)] }},
		{brandB, "visits", func(i int) string { return fmt.Sprint(i % 7) }},
	} {
		path := filepath.Join(dir, m.who+".csv")
		fh, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := csv.NewWriter(fh)
		w.Write([]string{"email", m.col})
		for i := range rows {
			w.Write([]string{fmt.Sprintf("rtweb%06d@example.org", i), m.val(i)})
		}
		w.Flush()
		if err := fh.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.clients[m.who].UploadCSV(ctx, client.UploadSpec{Collab: id, Input: path, IDColumn: "email",
			Kind: crypto.KindEmail, Columns: []string{m.col}, State: states[m.who]}); err != nil {
			t.Fatalf("%s's upload: %v", m.who, err)
		}
	}
	if _, err := a.Match(ctx, id); err != nil {
		t.Fatal(err)
	}
	return id
}

// postQuery posts the builder's form as the console's own page does and
// returns the answer page.
func postQuery(t *testing.T, c *http.Client, cu *consoleUnderTest, collabID string, form url.Values) []byte {
	t.Helper()
	req, _ := http.NewRequest("POST", cu.base+"/c/"+collabID+"/query", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", cu.origin)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("query page: %d\n%s", resp.StatusCode, page)
	}
	return page
}

// formulaStart reports whether a spreadsheet would run s, a cell's text,
// as a formula (OWASP's list: = + - @, tab, carriage return).
func formulaStart(s string) bool {
	return s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0]))
}

// TestAttackRedteamWebCSVSeparatorFormula: the attacker uploads attribute
// values that hold a list separator followed by a formula, such as
// "north;=1+1". Spreadsheets open a .csv with the locale's list separator
// (";" in most of Europe, where "," is the decimal mark) and LibreOffice's
// import splits on tabs and semicolons by default, so a value written bare
// (encoding/csv quotes a field only for a comma, a quote, a line break or a
// leading space) would give the victim who opens the download a cell
// "=1+1", which it evaluates. The console quotes every field, so a value is
// one cell whatever the separator, and prefixes one that begins with a
// formula character.
//
// The property: read with any of the separators a spreadsheet uses (",",
// ";", tab), no cell of the download starts a formula.
func TestAttackRedteamWebCSVSeparatorFormula(t *testing.T) {
	f := privateAlliance(t)
	labels := []string{"north;=1+1", "south\t=2+3", "east;@SUM(4+5)", "west;+6+7"}
	id := craftedCollab(t, f, "rtweb-csv", labels, 1200)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cu, err := f.startConsole(ctx, brandB, RolePartner)
	if err != nil {
		t.Fatal(err)
	}
	in := httpClient(t)
	login(t, in, cu)
	page := postQuery(t, in, cu, id, url.Values{"count": {"on"}, "group_by": {brandA + ".tag"}, "epsilon": {"0.5"}, "do": {"run"}})
	link := regexp.MustCompile(`href="(/s/[^"/]+/results/[0-9a-f]+\.csv)"`).FindSubmatch(page)
	if link == nil {
		t.Fatalf("no CSV link on the answer page:\n%s", page)
	}
	resp, err := in.Get(cu.origin + string(link[1]))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %d", resp.StatusCode)
	}
	released := 0
	for _, l := range labels {
		if strings.Contains(string(body), strings.Split(strings.Split(l, ";")[0], "\t")[0]) {
			released++
		}
	}
	if released == 0 {
		t.Fatalf("no crafted group was released; the CSV:\n%s", body)
	}
	for _, sep := range []rune{',', ';', '\t'} {
		r := csv.NewReader(strings.NewReader(string(body)))
		r.Comma, r.LazyQuotes, r.FieldsPerRecord = sep, true, -1
		recs, err := r.ReadAll()
		if err != nil {
			t.Fatalf("reading the download with %q: %v", sep, err)
		}
		for _, rec := range recs[1:] {
			for _, cell := range rec {
				if formulaStart(cell) {
					t.Errorf("read with separator %q, the download has the cell %q, which a spreadsheet runs as a formula (line %q)", sep, cell, strings.Join(rec, string(sep)))
				}
			}
		}
	}
}

// entryLinks are the audit entries a timeline page lists, by index.
var entryLinks = regexp.MustCompile(`<a href="/s/[^"/]+/audit/entries/([0-9]+)">`)

// olderLink is a timeline page's "Older entries" link, as the browser
// would request it (the attribute's entities decoded).
var olderLink = regexp.MustCompile(`<a href="/s/[^"/]+(/audit\?[^"]*)">Older entries</a>`)

// getPage GETs path from the console and returns its body.
func getPage(t *testing.T, c *http.Client, cu *consoleUnderTest, path string) string {
	t.Helper()
	resp, err := c.Get(cu.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, b)
	}
	return string(b)
}

// TestAttackRedteamWebAuditPagingHidesEntry: the other member does
// something the victim's auditor should see (here, a query the alliance's
// policy denies), then buries it under 220 cheap reads of the shared
// collaboration, each an entry in the auditor's bundle. The timeline shows
// the newest 200 entries and links to the older ones with the filter's
// query (before=INDEX&...). Written as a query component into
// href="/audit?{{.}}", html/template would escape it whole
// ("before%3d123%26principal%3d..."), and the link would lead back to the
// newest page, leaving the older entries, the denied query among them, out
// of reach of the paging; the link is the whole address instead.
//
// The property: following "Older entries" from the timeline reaches every
// entry of the bundle; here, the denied query's entry.
func TestAttackRedteamWebAuditPagingHidesEntry(t *testing.T) {
	f := privateAlliance(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	b := f.clients[brandB]
	_, err := b.Query(ctx, collab, api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}},
		GroupBy: []string{brandA + ".region"}, Epsilon: 0.1})
	if p := problemOf(err); p == nil || p.Status != http.StatusForbidden {
		t.Fatalf("the region query: %v, want the alliance policy's denial", err)
	}
	for i := range 220 {
		if _, err := b.Budget(ctx, collab); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	cu, err := f.startConsole(ctx, auditor, RoleAuditor)
	if err != nil {
		t.Fatal(err)
	}
	in := httpClient(t)
	login(t, in, cu)
	denied := entryLinks.FindAllStringSubmatch(getPage(t, in, cu, "/audit?principal="+brandB+"&decision=denied"), -1)
	if len(denied) == 0 {
		t.Fatal("the auditor's filtered timeline does not list the denied query")
	}
	target := denied[0][1] // the newest denial of the attacker
	path, seen := "/audit", map[string]bool{}
	for hop := 0; hop < 10; hop++ {
		page := getPage(t, in, cu, path)
		for _, m := range entryLinks.FindAllStringSubmatch(page, -1) {
			if m[1] == target {
				return
			}
		}
		seen[path] = true
		next := olderLink.FindStringSubmatch(page)
		if next == nil {
			t.Fatalf("the timeline's pages end at %s without entry %s, the attacker's denied query", path, target)
		}
		from := path
		path = strings.ReplaceAll(next[1], "&amp;", "&")
		if seen[path] {
			t.Fatalf("\"Older entries\" on the page %s leads back to %s: entry %s (the attacker's denied query, before the 220 reads that buried it) is out of the timeline's reach", from, path, target)
		}
		// What the console reads of the link the browser follows.
		u, _ := url.Parse(path)
		if u.Query().Get("before") == "" {
			t.Errorf("\"Older entries\" links to %q, whose query has no before= (the console reads %v): it shows the newest page again", path, u.Query())
		}
	}
	t.Fatalf("entry %s not reached in 10 pages", target)
}

// TestAttackRedteamWebStaticPrefixBypass: the guard lets /static/ through
// without the token (public assets), before the mux cleans the path. A page
// of another site that guessed the console's port requests pages behind
// /static/ with dot segments, encoded slashes and the like, without the
// cookie: none may answer with a page of the console's (only the assets or
// a refusal or redirect), nor run a query.
func TestAttackRedteamWebStaticPrefixBypass(t *testing.T) {
	f := alliance(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cu, err := f.startConsole(ctx, brandB, RolePartner)
	if err != nil {
		t.Fatal(err)
	}
	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct{ method, path string }{
		{"GET", "/static/../collaborations"},
		{"GET", "/static/..%2fcollaborations"},
		{"GET", "/static/%2e%2e/collaborations"},
		{"GET", "/static/..%2fc%2f" + collab},
		{"GET", "/static//../c/" + collab},
		{"GET", "/static/../c/" + collab + "/query"},
		{"POST", "/static/../c/" + collab + "/query"},
		{"POST", "/static/..%2fc%2f" + collab + "%2fquery"},
		{"GET", "/static/../results/0123456789abcdef01234567.csv"},
		// The same with the pages' path, as if it leaked: the cookie is
		// still needed.
		{"GET", "/static/.." + cu.srv.base + "/collaborations"},
		{"GET", "/static/..%2f" + strings.ReplaceAll(cu.srv.base[1:], "/", "%2f") + "%2fcollaborations"},
		{"POST", "/static/.." + cu.srv.base + "/c/" + collab + "/query"},
		// Only GET /static/ is the assets' route: other methods would
		// reach the catch-all, the console's error page in its layout.
		{"POST", "/static/x"}, {"PUT", "/static/x"}, {"DELETE", "/static/x"}, {"OPTIONS", "/static/x"},
	} {
		resp, body := sendAsWritten(t, anon, tc.method, cu.origin, tc.path)
		page := string(body)
		if strings.Contains(page, "cleanroom console</a>") || resp.StatusCode == http.StatusOK && strings.Contains(page, collab) {
			t.Errorf("%s %s without the token: %d, a page of the console:\n%.400s", tc.method, tc.path, resp.StatusCode, page)
		}
		if loc := resp.Header.Get("Location"); loc != "" && !strings.HasPrefix(loc, "/") {
			t.Errorf("%s %s redirects off the console, to %q", tc.method, tc.path, loc)
		}
		t.Logf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Location"))
	}
}

// markupPayloads are strings a member puts wherever the other member's
// console shows its text: HTML, attribute, SVG, URL and CDATA breakouts.
var markupPayloads = []string{
	`<script>alert(1)</script>`,
	`"><img src=x onerror=alert(2)>`,
	`'><svg onload=alert(3)>`,
	`</text><foreignObject><iframe src="javascript:alert(4)"></iframe></foreignObject><text>`,
	`]]><style>*{display:none}</style>`,
	`javascript:alert(5)`,
}

// injected lists the markup an attacker's string made in page: elements
// the console never writes, an event handler, or a javascript: URL.
func injected(page string) []string {
	low := strings.ToLower(page)
	var out []string
	for _, bad := range []string{"<script", "<img", "<iframe", "<foreignobject", "<style", "<svg onload", "<object", "<embed"} {
		if strings.Contains(low, bad) {
			out = append(out, bad)
		}
	}
	for _, a := range attributes(page) {
		name, val := strings.ToLower(a[0]), strings.ToLower(strings.TrimSpace(a[1]))
		if strings.HasPrefix(name, "on") || strings.HasPrefix(val, "javascript:") {
			out = append(out, a[0]+"="+a[1])
		}
	}
	for _, p := range markupPayloads {
		if strings.Contains(p, "<") && strings.Contains(page, p) {
			out = append(out, "verbatim "+p)
		}
	}
	return out
}

// attributes returns every attribute (name, value) of every start tag of
// page, read as a browser's tokenizer reads them: a quoted value runs to
// its closing quote, whatever it holds.
func attributes(page string) [][2]string {
	var out [][2]string
	for i := 0; i < len(page); i++ {
		if page[i] != '<' || i+1 >= len(page) || !(page[i+1] >= 'a' && page[i+1] <= 'z' || page[i+1] >= 'A' && page[i+1] <= 'Z') {
			continue
		}
		j := i + 1
		for j < len(page) && !strings.ContainsRune(" \t\n/>", rune(page[j])) {
			j++
		}
		for j < len(page) && page[j] != '>' {
			if strings.ContainsRune(" \t\n/", rune(page[j])) {
				j++
				continue
			}
			k := j
			for k < len(page) && !strings.ContainsRune(" \t\n/>=", rune(page[k])) {
				k++
			}
			name, val := page[j:k], ""
			j = k
			if j < len(page) && page[j] == '=' {
				j++
				if j < len(page) && (page[j] == '"' || page[j] == '\'') {
					q := page[j]
					e := strings.IndexByte(page[j+1:], q)
					if e < 0 {
						e = len(page) - j - 1
					}
					val, j = page[j+1:j+1+e], j+2+e
				} else {
					k = j
					for k < len(page) && !strings.ContainsRune(" \t\n>", rune(page[k])) {
						k++
					}
					val, j = page[j:k], k
				}
			}
			out = append(out, [2]string{name, val})
		}
		i = j
	}
	return out
}

// TestAttackRedteamWebStoredMarkup: brandA puts markup in every free text
// of a collaboration the victim's console shows: its attribute values (the
// groups' labels in the table, the SVG charts and their titles and
// aria-labels), the declared domain of that column (the settings document),
// and the reason of its policy module (the victim's refusal). The victim,
// brandB, opens the collaboration, the builder, a grouped answer and a
// refused query. No page may carry markup of the attacker's.
func TestAttackRedteamWebStoredMarkup(t *testing.T) {
	// The detector finds what an unescaped payload would make, and not
	// what an escaped one is.
	for _, bare := range []string{`<p title="x"><b onclick=alert(1)>`, `<a href=" javascript:alert(1)">`, `<svg role="img" onload='x'>`} {
		if len(injected(bare)) == 0 {
			t.Fatalf("the detector misses %q", bare)
		}
	}
	if bad := injected(`<svg aria-label="&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" role="img">`); len(bad) > 0 {
		t.Fatalf("the detector flags escaped text: %q", bad)
	}
	f := privateAlliance(t)
	labels := markupPayloads
	settings, _ := json.Marshal(map[string]any{"allowed_dimensions": []string{brandA + ".tag"},
		"domains": map[string][]string{brandA + ".tag": labels}})
	module := "package collaboration\n\ndeny contains `" + strings.Join(markupPayloads, " ") + "` if {\n" +
		"\tinput.action == \"query.run\"\n\tcount(object.get(input.resource.query, \"dimensions\", [])) == 0\n}\n"
	id := craftedCollabWith(t, f, "rtweb-markup", labels, 1200, settings, module)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cu, err := f.startConsole(ctx, brandB, RolePartner)
	if err != nil {
		t.Fatal(err)
	}
	in := httpClient(t)
	login(t, in, cu)
	pages := map[string]string{
		"the collaborations": getPage(t, in, cu, "/collaborations"),
		"the collaboration":  getPage(t, in, cu, "/c/"+id),
		"the builder":        getPage(t, in, cu, "/c/"+id+"/query"),
		"a grouped answer":   string(postQuery(t, in, cu, id, url.Values{"count": {"on"}, "group_by": {brandA + ".tag"}, "epsilon": {"0.5"}, "do": {"run"}})),
	}
	if !strings.Contains(pages["a grouped answer"], `id="result-table"`) || !strings.Contains(pages["a grouped answer"], "<svg") {
		t.Fatalf("the grouped query shows no table or chart:\n%s", pages["a grouped answer"])
	}
	if !strings.Contains(pages["a grouped answer"], "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the crafted label is not shown (escaped) in the answer: the attack did not reach the page")
	}
	req, _ := http.NewRequest("POST", cu.base+"/c/"+id+"/query", strings.NewReader(url.Values{"count": {"on"}, "epsilon": {"0.5"}, "do": {"run"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", cu.origin)
	resp, err := in.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	refusal, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(refusal), "alert(5)") {
		t.Fatalf("the ungrouped query: %d, want the module's refusal with its reason:\n%s", resp.StatusCode, refusal)
	}
	pages["a refusal"] = string(refusal)
	for name, page := range pages {
		if bad := injected(page); len(bad) > 0 {
			t.Errorf("%s carries the attacker's markup: %q", name, bad)
		}
	}
}

// openBidiAt returns the bidi embeddings, overrides and isolates still
// open at byte i of s (Unicode's rules: PDF closes the latest embedding or
// override, PDI the latest isolate and whatever opened inside it).
func openBidiAt(s string, i int) []rune {
	var stack []rune
	for j, r := range s {
		if j >= i {
			break
		}
		switch r {
		case '\u202a', '\u202b', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068':
			stack = append(stack, r)
		case '\u202c':
			if n := len(stack); n > 0 && stack[n-1] < '\u2066' {
				stack = stack[:n-1]
			}
		case '\u2069':
			for n := len(stack); n > 0; n = len(stack) {
				top := stack[n-1]
				stack = stack[:n-1]
				if top >= '\u2066' {
					break
				}
			}
		}
	}
	return stack
}

// TestAttackRedteamWebBidiLabel: a group of a query by two members'
// columns is labelled "A's value · B's value" in one SVG text (the bar's
// label and its title). brandA's value ends in an unterminated
// right-to-left override (U+202E), which would draw the victim's own value
// after it reversed ("gold" as "dlog", "25-34" as "43-52"): escaping does
// not stop it, since the override is text. The table shows each value in a
// cell of its own, which ends the override; a chart's label drops the
// values' direction controls and isolates each member's value.
//
// The property: where the victim's value starts in a chart's text, no
// embedding, override or isolate of the other member's value is open.
func TestAttackRedteamWebBidiLabel(t *testing.T) {
	victim := "25-34"
	r := &api.QueryResult{Columns: []string{brandA + ".tag", brandB + ".band", "count"}, Rows: [][]any{
		{"north\u202e", victim, 120.0}, {"south", "18-24", 80.0},
	}}
	charts := resultCharts(r, 2)
	if len(charts) == 0 {
		t.Fatal("no chart")
	}
	texts := regexp.MustCompile(`<(text|title)[^>]*>([^<]*)</`)
	found := 0
	for _, c := range charts {
		for _, m := range texts.FindAllStringSubmatch(string(c), -1) {
			i := strings.Index(m[2], victim)
			if i < 0 {
				continue
			}
			found++
			// The victim's value sits in an isolate of its own (FSI …
			// PDI): what matters is what is open where that starts.
			if strings.HasSuffix(m[2][:i], "\u2068") {
				i -= len("\u2068")
			}
			if open := openBidiAt(m[2], i); len(open) > 0 {
				t.Errorf("the chart's <%s> %q draws the victim's value %q under the other member's open bidi control(s) %U", m[1], m[2], victim, open)
			}
		}
	}
	if found == 0 {
		t.Fatalf("the victim's value is in no chart text: %s", charts)
	}
}
