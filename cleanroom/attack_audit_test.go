package cleanroom

// Attacks through the audit log: an auditor reading collaborations that are
// none of its concern, result digests brute-forced back into answers, and
// refusals the log never records.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/audit/bundle"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// Bounds of the audit attacks.
const (
	// attackForeignEntries is how many entries of a collaboration an
	// auditor not concerned with it may read: none.
	attackForeignEntries = 0
	// attackDigestsRecovered is how many query answers an auditor may
	// recover from their result digests: none (digests of low-entropy
	// results are keyed).
	attackDigestsRecovered = 0
	// attackUnauditedRefusals is how many refused requests may leave no
	// audit entry: none.
	attackUnauditedRefusals = 0
)

// exportEntries exports the audit log as principal who and parses its
// entries.
func (s *attackScene) exportEntries(who string) ([]audit.Entry, error) {
	out, _, err := s.exportLog(who)
	return out, err
}

// exportLog exports the audit log as principal who and returns its entries
// and the size of the tree its bundle is proved against.
func (s *attackScene) exportLog(who string) ([]audit.Entry, int64, error) {
	x, err := s.exportSparse(who)
	return x.entries, x.size, err
}

// sparseExport is what an auditor reads in its sparse bundle: the entries,
// the size of the tree they are proved against, and every hash their
// leaves and inclusion proofs name.
type sparseExport struct {
	entries []audit.Entry
	size    int64
	hashes  map[tlog.Hash]bool
}

// exportSparse exports the audit log as principal who and reads it.
func (s *attackScene) exportSparse(who string) (sparseExport, error) {
	x := sparseExport{hashes: map[tlog.Hash]bool{}}
	var buf bytes.Buffer
	c, err := reconnect(s.tr, who)
	if err != nil {
		return x, err
	}
	if err := c.ExportAudit(s.ctx, &buf); err != nil {
		return x, err
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 16<<20)
	for first := true; sc.Scan(); first = false {
		line := sc.Text()
		if first {
			// The header: its checkpoint's second line is the tree size.
			var h bundle.SparseHeader
			if err := json.Unmarshal([]byte(line), &h); err != nil {
				return x, fmt.Errorf("bundle header: %w", err)
			}
			if f := strings.Split(h.Checkpoint, "\n"); len(f) > 1 {
				x.size, _ = strconv.ParseInt(f[1], 10, 64)
			}
			continue
		}
		if strings.HasPrefix(line, "end ") {
			continue
		}
		// "<index> <leaf hash> [<inclusion proof>] <entry JSON>" (a full
		// bundle has no proofs): the entry is the line from its opening
		// brace, the hashes the fields before it but the index.
		at := strings.IndexByte(line, '{')
		if at < 0 {
			return x, fmt.Errorf("unreadable bundle line")
		}
		if f := strings.Fields(line[:at]); len(f) > 1 {
			for _, h := range strings.Split(strings.Join(f[1:], ","), ",") {
				if b, err := base64.StdEncoding.DecodeString(h); err == nil && len(b) == len(tlog.Hash{}) {
					x.hashes[tlog.Hash(b)] = true
				}
			}
		}
		e, err := audit.ParseEntry([]byte(line[at:]))
		if err != nil {
			return x, err
		}
		x.entries = append(x.entries, e)
	}
	return x, sc.Err()
}

// TestAttackAuditorScope: an auditor working for a partner in no
// collaboration exports the log and reads another collaboration's
// entries, list sizes and exact overlaps.
func TestAttackAuditorScope(t *testing.T) {
	s := attackRoom(t, attackOpts{})
	s.tr.partner("outsider", policy.RolePartner, "")
	s.tr.partner("outsider-auditor", policy.RoleAuditor, "outsider")
	entries, err := s.exportEntries("outsider-auditor")
	if err != nil {
		t.Logf("export refused: %v", err)
	}
	foreign, sizes, overlaps := 0, 0, 0
	for _, e := range entries {
		if e.Collaboration != s.collab {
			continue
		}
		foreign++
		for _, d := range e.Data {
			switch {
			case strings.HasPrefix(d.Name, "dataset/") && d.Rows > 0:
				sizes++
			case strings.HasPrefix(d.Name, "join/") && e.Action == "match.run":
				overlaps++
			}
		}
	}
	t.Logf("auditor scope: %d of %d exported entries are of %s, which is none of the auditor's concern (%d list sizes, %d exact overlaps), bound %d",
		foreign, len(entries), s.collab, sizes, overlaps, attackForeignEntries)
	if foreign > attackForeignEntries {
		t.Errorf("an auditor read %d entries of a collaboration it is not concerned with, bound %d", foreign, attackForeignEntries)
	}
}

// countTemplates are the answers an auditor guesses a digest was made of:
// an ungrouped count with noise off, as the room renders it, for counts n.
// It is the one place the brute force knows the shape of an answer.
func countTemplates(n int64, minGroup int) [][]byte {
	var out [][]byte
	zero := 0
	for _, b := range []api.BudgetInfo{{}, {Total: 10, Remaining: 10}} {
		body, _ := json.Marshal(api.QueryResult{Columns: []string{"count"}, Rows: [][]any{{n}}, Partitions: api.PartitionsDeclared,
			Withheld: &zero, MinGroup: minGroup, Budget: b})
		out = append(out, body)
	}
	return out
}

// TestAttackResultDigestBruteForce: the audit log's result digest of a
// query is a plain SHA-256 of the answer; an auditor enumerates the counts
// a noise-off answer can hold and finds it.
func TestAttackResultDigestBruteForce(t *testing.T) {
	s := attackRoom(t, attackOpts{settings: map[string]any{"noise_off": true,
		"allowed_dimensions": []string{atkVictim + ".region", atkAttacker + ".age_band"}}})
	s.tr.partner("victim-auditor", policy.RoleAuditor, atkVictim)
	bands := []string{"18-24", "25-34", "35-44", "45-54"}
	var filters []api.Filter
	for _, r := range atkRegions {
		filters = append(filters, api.Filter{Column: atkVictim + ".region", Op: "eq", Value: r})
	}
	for _, b := range bands {
		filters = append(filters, api.Filter{Column: atkAttacker + ".age_band", Op: "eq", Value: b})
	}
	for i := range 4 {
		for j := i + 1; j < 4; j++ {
			filters = append(filters, api.Filter{Column: atkVictim + ".region", Op: "in", Values: []string{atkRegions[i], atkRegions[j]}})
			filters = append(filters, api.Filter{Column: atkAttacker + ".age_band", Op: "in", Values: []string{bands[i], bands[j]}})
		}
	}
	var answers []float64
	for _, f := range filters {
		res, err := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Filters: []api.Filter{f}})
		if err != nil {
			t.Fatalf("a noise-off count: %v", err)
		}
		n, _ := countOf(res)
		answers = append(answers, n)
	}
	entries, err := s.exportEntries("victim-auditor")
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	var digests []string
	for _, e := range entries {
		if e.Action == "query.run" && e.Decision.Allow && e.ResultDigest != "" {
			digests = append(digests, e.ResultDigest)
		}
	}
	if len(digests) != len(answers) {
		t.Fatalf("%d answered queries in the log, want %d", len(digests), len(answers))
	}
	// A dictionary of every count a list of this size can give.
	dict := map[string]int64{}
	for n := range int64(3001) {
		for _, body := range countTemplates(n, 50) {
			sum := sha256.Sum256(body)
			dict[hex.EncodeToString(sum[:])] = n
		}
	}
	recovered := 0
	for i, d := range digests {
		if n, ok := dict[d]; ok && float64(n) == answers[i] {
			recovered++
		}
	}
	t.Logf("result digests: %d of %d answers recovered by enumerating 3,001 counts, bound %d", recovered, len(digests), attackDigestsRecovered)
	if recovered > attackDigestsRecovered {
		t.Errorf("%d of %d query answers recovered from their result digests, bound %d", recovered, len(digests), attackDigestsRecovered)
	}
}

// TestAttackUnauditedRefusals: refused requests that leave no audit entry.
func TestAttackUnauditedRefusals(t *testing.T) {
	s := attackRoom(t, attackOpts{})
	s.tr.partner("victim-analyst", policy.RoleAnalyst, atkVictim)
	queryBody := func(q api.QuerySpec) []byte {
		q.Version = api.QueryVersion
		b, _ := json.Marshal(q)
		return b
	}
	count := []api.Metric{{Kind: api.MetricCount}}
	var unaudited []string
	refusals := 0
	for _, tc := range []struct {
		name, who, method, path string
		body                    []byte
	}{
		{"a query with an unknown metric", atkAttacker, "POST", "/v1/collaborations/c1/queries", queryBody(api.QuerySpec{Metrics: []api.Metric{{Kind: "median"}}, Epsilon: 0.1})},
		{"a query on an unknown column", atkAttacker, "POST", "/v1/collaborations/c1/queries", queryBody(api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricAvg, Column: atkVictim + ".nothing"}}, Epsilon: 0.1})},
		{"a query with an unknown filter op", atkAttacker, "POST", "/v1/collaborations/c1/queries", queryBody(api.QuerySpec{Metrics: count, Epsilon: 0.1,
			Filters: []api.Filter{{Column: atkVictim + ".plan", Op: "like", Value: "t%"}}})},
		{"an analyst asking for the secret", "victim-analyst", "GET", "/v1/collaborations/c1/secret", nil},
		{"a missing collaboration", atkAttacker, "GET", "/v1/collaborations/nope", nil},
		{"an upload that does not exist", atkAttacker, "GET", "/v1/collaborations/c1/uploads/up-000000000000000000000000", nil},
	} {
		before := auditEntries(t, s.tr)
		status, body := atkRaw(t, s.tr, tc.who, tc.method, tc.path, "application/json", tc.body)
		if status < 400 {
			t.Fatalf("%s: answered %d %s", tc.name, status, body)
		}
		if auditEntries(t, s.tr) == before {
			unaudited = append(unaudited, fmt.Sprintf("%s (%d)", tc.name, status))
		}
		refusals++
	}
	t.Logf("unaudited refusals: %d of %d %v, bound %d", len(unaudited), refusals, unaudited, attackUnauditedRefusals)
	if len(unaudited) > attackUnauditedRefusals {
		t.Errorf("%d of %d refusals left no audit entry: %v, bound %d", len(unaudited), refusals, unaudited, attackUnauditedRefusals)
	}
}

// TestAttackPreCreationEntries: before collaboration "zz" exists, the
// victim and its analyst ask about it (a read, a query, a refused
// creation), and the attacker about "zy". The attacker then creates both,
// with a member of its own. Its auditor's export shows no entry of either
// id from before its creation, the attacker's own included (bound 0): what
// was refused before an id was a collaboration is none of its members'
// concern. Probes after the creation are, a refused attempt to create it
// again among them.
func TestAttackPreCreationEntries(t *testing.T) {
	s := attackRoom(t, attackOpts{noUpload: true})
	s.tr.partner("attacker-auditor", policy.RoleAuditor, atkAttacker)
	s.tr.partner("victim-analyst", policy.RoleAnalyst, atkVictim)
	s.tr.partner("mallory", policy.RolePartner, "")
	create := func(who, id string, members ...string) int {
		body, _ := json.Marshal(api.CreateCollaboration{ID: id, Mode: api.ModeHashed, Kind: "email", Members: members})
		status, _ := atkRaw(t, s.tr, who, "POST", "/v1/collaborations", "application/json", body)
		return status
	}
	atkRaw(t, s.tr, atkVictim, "GET", "/v1/collaborations/zz", "", nil)
	atkRaw(t, s.tr, "victim-analyst", "POST", "/v1/collaborations/zz/queries", "application/json", []byte(`{}`))
	create("victim-analyst", "zz", "victim-analyst", atkVictim)
	atkRaw(t, s.tr, atkAttacker, "GET", "/v1/collaborations/zy", "", nil)
	created := s.tr.room.audit.Size()
	for _, id := range []string{"zz", "zy"} {
		if status := create(atkAttacker, id, atkAttacker, "mallory"); status != http.StatusCreated {
			t.Fatalf("creating %s: %d", id, status)
		}
	}
	// Probes of the collaboration: a read, and an attempt to create it again.
	atkRaw(t, s.tr, atkVictim, "GET", "/v1/collaborations/zy", "", nil)
	if status := create(atkVictim, "zy", atkVictim, "mallory"); status != http.StatusConflict {
		t.Fatalf("creating zy again: %d", status)
	}
	entries, _, err := s.exportLog("attacker-auditor")
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	before, probes := 0, 0
	for _, e := range entries {
		if e.Collaboration != "zz" && e.Collaboration != "zy" {
			continue
		}
		switch {
		case e.Action == string(policy.ActionCollaborationCreate) && e.Decision.Allow:
		case e.Principal == atkVictim && e.Collaboration == "zy":
			probes++
		default:
			before++
			t.Logf("before the creation: %s's %s on %s", e.Principal, e.Action, e.Collaboration)
		}
	}
	t.Logf("entries of the ids from before their creation in the attacker's auditor's export: %d (4 in the log before entry %d), bound 0; probes after it: %d", before, created, probes)
	if before != 0 || probes != 2 {
		t.Errorf("the export holds %d entries from before the creation (want 0) and %d probes after it (want 2)", before, probes)
	}
}

// TestAttackPreCreationTiming: before the attacker creates "zq", the
// victim asks about it 1,000 times; nobody asks about "zr". The attacker
// then reads each collaboration's budget history, alternately, 100 times,
// and guesses "zq" is the one asked about when its read is the slower of
// a pair. Right in at most 65% of pairs (chance plus three deviations):
// the history reads a collaboration's entries from the one that created
// it, so their number before costs nothing.
func TestAttackPreCreationTiming(t *testing.T) {
	if atkRace {
		t.Skip("timing: run without the race detector")
	}
	s := attackRoom(t, attackOpts{noUpload: true})
	s.tr.partner("mallory", policy.RolePartner, "")
	for range 1000 {
		atkRaw(t, s.tr, atkVictim, "GET", "/v1/collaborations/zq", "", nil)
	}
	for _, id := range []string{"zq", "zr"} {
		body, _ := json.Marshal(api.CreateCollaboration{ID: id, Mode: api.ModeHashed, Kind: "email", Members: []string{atkAttacker, "mallory"}})
		if status, _ := atkRaw(t, s.tr, atkAttacker, "POST", "/v1/collaborations", "application/json", body); status != http.StatusCreated {
			t.Fatalf("creating %s: %d", id, status)
		}
	}
	read := func(id string) time.Duration {
		start := time.Now()
		if status, body := atkRaw(t, s.tr, atkAttacker, "GET", "/v1/collaborations/"+id+"/budget/history", "", nil); status != http.StatusOK {
			t.Fatalf("budget history of %s: %d %s", id, status, body)
		}
		return time.Since(start)
	}
	const pairs = 100
	slower := 0
	for i := range pairs {
		var asked, not time.Duration
		if i%2 == 0 {
			asked, not = read("zq"), read("zr")
		} else {
			not, asked = read("zr"), read("zq")
		}
		if asked > not {
			slower++
		}
	}
	t.Logf("the id asked about 1,000 times before its creation read the slower in %s of pairs, bound 65%%", pct(slower, pairs))
	if slower > pairs*65/100 {
		t.Errorf("budget history tells the id asked about before its creation: %s of pairs", pct(slower, pairs))
	}
}
