package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// roomFlags are the flags every verb that talks to a room takes.
type roomFlags struct {
	room, key, state, as *string
	json                 *bool
}

func clientFlags(fs *verbFlags) *roomFlags {
	return &roomFlags{
		room:  fs.String("room", os.Getenv("CLEANROOM_ROOM"), "the room's URL (or $CLEANROOM_ROOM)"),
		key:   fs.String("key", os.Getenv("CLEANROOM_KEY"), "your key file, from cleanroom keygen (or $CLEANROOM_KEY)"),
		state: fs.String("state", "", "directory for collaboration secrets and upload progress, a directory of it for each room (default: KEYFILE.d)"),
		as:    fs.String("as", "", "the principal id the room knows your key by (default: the key's name)"),
		json:  fs.Bool("json", false, "print JSON for scripts"),
	}
}

func (f *roomFlags) connect(e *env) (*client.Client, error) {
	if *f.room == "" || *f.key == "" {
		return nil, usagef("--room and --key are required")
	}
	k, err := readPartnerKey(*f.key)
	if err != nil {
		return nil, err
	}
	c, err := client.New(e.Context(), *f.room, k, client.Options{Principal: *f.as})
	if err != nil && e.Context().Err() == nil {
		return nil, withHint(err, "check --room: is the room running at that URL?")
	}
	if err != nil {
		return nil, err
	}
	// Before any token: the room must hold the key this state recorded
	// for its id (tokens name the id; another room showing it would be
	// handed tokens the real one accepts).
	if err := f.stateDir().KnowRoom(c.Room()); err != nil {
		return nil, withHint(err, "this is not the room you used before under that id: check --room; if the room's key really changed, ask its operator, then remove the recorded key")
	}
	return c, nil
}

// readPartnerKey reads the key file cleanroom keygen wrote.
func readPartnerKey(path string) (*crypto.PartnerKey, error) {
	// keygen's other output, the public keys, is readable by all: said
	// first, or the mode check would send the user to chmod it.
	if b, err := os.ReadFile(path); err == nil && isPublicKeySet(b) {
		return nil, withHint(errors.New("the --key file is a public JWK set, not a key file"), "pass the key file cleanroom keygen wrote with --out; the JWK set it printed is for partner add --keys")
	}
	b, err := crypto.ReadSecretFile(path)
	if err != nil {
		return nil, withHint(err, "pass the key file cleanroom keygen wrote (mode 0600)")
	}
	k, err := crypto.ParsePartnerKey(b)
	if err != nil {
		return nil, withHint(err, "pass the key file cleanroom keygen wrote, not its public JWK set")
	}
	return k, nil
}

// isPublicKeySet reports whether b is a JWK set without a private key.
func isPublicKeySet(b []byte) bool {
	var set struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if json.Unmarshal(b, &set) != nil || len(set.Keys) == 0 {
		return false
	}
	for _, k := range set.Keys {
		if _, private := k["d"]; private {
			return false
		}
	}
	return true
}

func (f *roomFlags) stateDir() client.StateDir {
	if f.state != nil && *f.state != "" { // verbs without --state (audit, console) keep KEYFILE.d
		return client.StateDir(*f.state)
	}
	return client.StateDir(*f.key + ".d")
}

// explain adds a hint for the problems a user can fix.
func explain(err error) error {
	var p *api.Problem
	var skew *client.ClockSkewError
	switch {
	case errors.As(err, &skew):
		return withHint(err, "set this machine's clock right (the room checks each request's token against its own clock, to within "+api.MaxClockSkew.String()+")")
	case errors.As(err, &p):
		switch p.Type {
		case api.ProblemUnauthenticated:
			return withHint(err, "is this the key the operator registered, for this room? (--key, --as, --room)")
		case api.ProblemDenied:
			if len(p.Reasons) == 1 && p.Reasons[0] == api.ReasonNotMember {
				return withHint(err, "check the collaboration id; only its members can see it")
			}
			return withHint(err, "the collaboration's policy refused it; the reasons above say why")
		case api.ProblemNotFound:
			return withHint(err, "check the collaboration id; only its members can see it")
		case api.ProblemCanaryMismatch:
			return withHint(err, "every member must upload with the collaboration's kind and profile, under the secret its creator delivered")
		}
	case errors.Is(err, client.ErrUnreachable):
		return withHint(err, "check --room, and that the room runs and is reachable from here")
	case errors.Is(err, client.ErrNoSecret):
		return withHint(err, "the creator runs cleanroom collab create (which delivers it); members run cleanroom collab accept")
	case errors.Is(err, client.ErrKeyPin):
		return withHint(err, "compare the fingerprint with the member out of band (cleanroom fingerprint); do not go on with this room until they match")
	case errors.Is(err, client.ErrSecretConflict):
		return withHint(err, "the secret saved for this collaboration stays: ask its creator, out of band, what changed before you go on")
	case errors.Is(err, client.ErrUnknownColumn):
		return withHint(err, "name columns exactly as in the CSV's header (--id-column, --columns)")
	case errors.Is(err, client.ErrColumnRefused):
		return withHint(err, "send attribute columns only, each once; cleanroom status shows the collaboration's never_output_columns")
	case errors.Is(err, client.ErrListTooSmall):
		return withHint(err, "upload the whole list: the collaboration's minimum protects every member's people")
	case errors.Is(err, client.ErrInvalidValue):
		return withHint(err, "save the file as UTF-8 with each attribute value at most "+strconv.Itoa(api.MaxValueLen)+" bytes, then run the same command again")
	case errors.Is(err, client.ErrEmptyInput):
		return withHint(err, "check --input and --id-column: rows without a valid identifier are skipped")
	}
	return err
}

// collabVerb is a verb that acts on one collaboration: the room's flags,
// the collaboration's id, and JSON or human output.
type collabVerb struct {
	*verbFlags
	room   *roomFlags
	collab *string
}

func newCollabVerb(e *env, name, synopsis, about string) *collabVerb {
	fs := newFlags(e, name, synopsis, about)
	return &collabVerb{fs, clientFlags(fs), fs.collabFlag()}
}

// start parses args and connects to the room.
func (v *collabVerb) start(args []string) (*client.Client, error) {
	if err := v.parse(args); err != nil {
		return nil, err
	}
	if *v.collab == "" {
		return nil, usagef("--collab is required (see cleanroom %s -h)", v.name)
	}
	return v.room.connect(v.e)
}

// print writes res as JSON with --json, or else what human prints.
func (v *collabVerb) print(res any, human func()) error {
	if *v.room.json {
		return printJSON(v.e, res)
	}
	human()
	return nil
}

func printJSON(e *env, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s\n", b)
	return nil
}

func runUpload(e *env, args []string) error {
	fs := newFlags(e, "upload", "--room URL --key KEY --collab ID (--input FILE.csv --id-column COL --kind KIND [--columns a,b] | --discard)", `
Normalizes the identifiers in a CSV on this machine, hashes (hashed mode) or
encrypts (blinded mode) them, and streams the tokens with the chosen
attribute columns to the room, a part at a time. Identifiers never leave this
machine. Run it again to resume an interrupted upload; with --discard, the
room deletes the parts of the interrupted upload instead.`)
	cf := clientFlags(fs)
	collab := fs.collabFlag()
	input := fs.String("input", "", "CSV file with a header row (required)")
	idCol := fs.String("id-column", "", "the column holding the identifier (required)")
	kind := fs.String("kind", "email", "identifier kind: email, phone, maid or custom")
	columns := fs.String("columns", "", "comma-separated attribute columns to send")
	cc := fs.Int("country-code", 0, "country calling code for phone numbers written without one")
	discard := fs.Bool("discard", false, "discard the interrupted upload saved for --collab: the room deletes the parts it received, and the progress saved here goes")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *discard {
		return discardUpload(e, cf, *collab)
	}
	if *collab == "" || *input == "" || *idCol == "" {
		return usagef("--collab, --input and --id-column are required")
	}
	k, err := crypto.ParseKind(*kind)
	if err != nil {
		return usagef("%v", err)
	}
	var cols []string
	if *columns != "" {
		cols = strings.Split(*columns, ",")
	}
	c, err := cf.connect(e)
	if err != nil {
		return err
	}
	bar := newProgress(e, "upload "+filepath.Base(*input))
	invalid := 0
	rep, err := c.UploadCSV(e.Context(), client.UploadSpec{
		Collab: *collab, Input: *input, IDColumn: *idCol, Kind: k, Columns: cols, CountryCode: *cc,
		State: cf.stateDir(), Progress: bar.update,
		Invalid: func(line int, reason string) {
			if invalid++; invalid <= 10 {
				bar.note("line %d: %s (skipped)", line, reason)
			}
		},
		Notice: func(msg string) { bar.note("%s", msg) },
	})
	bar.done()
	if err != nil && e.Context().Err() != nil {
		// What was in flight does not matter: the progress saved does.
		return withHint(fmt.Errorf("interrupted (%w)", context.Cause(e.Context())), "run the same command again to resume the upload")
	}
	if errors.Is(err, client.ErrUnreachable) {
		return withHint(err, "the room could not be reached or its answer was lost; what was sent is saved here: run the same command again to resume (or upload --discard to give it up)")
	}
	if err != nil {
		return explain(err)
	}
	if *cf.json {
		return printJSON(e, rep)
	}
	fmt.Fprintf(e.stdout, "uploaded %d rows to %s in %d %s (%d resumed, %d rows skipped); dataset digest %s\n",
		rep.Rows, *collab, rep.Parts, plural(rep.Parts, "part", "parts"), rep.Resumed, rep.Skipped, rep.Digest)
	printValueCounts(e, rep)
	return nil
}

// printValueCounts says, on standard error, how many values of each
// numeric column the room will not read as they are written.
func printValueCounts(e *env, rep *client.UploadReport) {
	say := func(counts map[string]int64, one, many, then string) {
		for _, col := range slices.Sorted(maps.Keys(counts)) {
			if n := counts[col]; n == 1 {
				fmt.Fprintf(e.stderr, "cleanroom upload: column %q: 1 value %s; it counts as %s\n", col, one, then)
			} else {
				fmt.Fprintf(e.stderr, "cleanroom upload: column %q: %d values %s; they count as %s\n", col, n, many, then)
			}
		}
	}
	say(rep.NotNumbers, "is blank or not a number", "are blank or not numbers", "the bound nearest zero in sums, averages, ROI and k-means")
	say(rep.Clamped, "is outside the column's bounds", "are outside the column's bounds", "the nearer bound (cleanroom status shows the bounds)")
}

// discardUpload is upload --discard.
func discardUpload(e *env, cf *roomFlags, collab string) error {
	if collab == "" {
		return usagef("--collab is required")
	}
	c, err := cf.connect(e)
	if err != nil {
		return err
	}
	id, err := c.DiscardSaved(e.Context(), cf.stateDir(), collab)
	switch {
	case errors.Is(err, client.ErrNoSavedUpload):
		return withHint(err, "only an interrupted upload is saved; a committed list stays until a newer upload replaces it or the collaboration is revoked")
	case errors.Is(err, client.ErrUploadCommitted):
		return withHint(err, "the list is in the collaboration; a newer upload replaces it, and cleanroom collab revoke deletes every member's data")
	case err != nil:
		return explain(err)
	}
	if *cf.json {
		return printJSON(e, map[string]string{"discarded": id})
	}
	fmt.Fprintf(e.stdout, "discarded upload %s of %s: the room deleted the parts it had received\n", id, collab)
	return nil
}

func runSync(e *env, args []string) error {
	v := newCollabVerb(e, "sync", "--room URL --key KEY --collab ID [--wait [--timeout 30m]]", `
Re-encrypts, with your key, the other members' sets the room relays to you
(blinded mode). With --wait, keeps at it until every set carries every
member's key, saying on stderr what it waits for every few seconds.`)
	wait := v.Bool("wait", false, "wait until every member's set is ready to match")
	timeout := v.Duration("timeout", 30*time.Minute, "with --wait, give up after this long")
	c, err := v.start(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(e.Context(), *timeout)
	defer cancel()
	start := time.Now()
	rep, err := c.SyncWith(ctx, *v.collab, client.SyncOptions{Wait: *wait, Interval: time.Second, Status: waitReporter(e, start)})
	switch {
	case err != nil && errors.Is(err, context.DeadlineExceeded) && e.Context().Err() == nil:
		return withHint(fmt.Errorf("gave up after %s, %s", timeout.String(), stillWaiting(err)),
			"run cleanroom sync --wait again later, or with a longer --timeout; cleanroom status shows where the collaboration stands")
	case err != nil && e.Context().Err() != nil:
		return withHint(fmt.Errorf("interrupted after %s, %s", time.Since(start).Round(time.Second), stillWaiting(err)),
			"run cleanroom sync --wait again to go on")
	case err != nil:
		return explain(err)
	}
	return v.print(rep, func() {
		state := client.Waiting(rep.Waiting)
		if rep.Ready {
			state = "every set is ready to match"
		}
		fmt.Fprintf(e.stdout, "re-encrypted %d elements in %d %s; %s\n", rep.Elements, rep.Tasks, plural(rep.Tasks, "task", "tasks"), state)
	})
}

// waitReporter prints what a collaboration waits for to stderr: at once
// when it changes, and again every few seconds.
func waitReporter(e *env, start time.Time) func([]client.Pending) {
	const every = 5 * time.Second
	var last string
	var at time.Time
	return func(p []client.Pending) {
		w := client.Waiting(p)
		if w == last && time.Since(at) < every {
			return
		}
		last, at = w, time.Now()
		fmt.Fprintf(e.stderr, "%s (%s)\n", w, time.Since(start).Round(time.Second))
	}
}

// stillWaiting says what the collaboration was waiting for when sync
// stopped.
func stillWaiting(err error) string {
	var se *client.SyncError
	if !errors.As(err, &se) || len(se.Report.Waiting) == 0 {
		return "before it learned what the collaboration waits for"
	}
	return "still " + client.Waiting(se.Report.Waiting)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func runMatch(e *env, args []string) error {
	v := newCollabVerb(e, "match", "--room URL --key KEY --collab ID", `
Runs the match once every member's set is ready, after comparing the
members' canary identifiers.`)
	c, err := v.start(args)
	if err != nil {
		return err
	}
	m, err := c.Match(e.Context(), *v.collab)
	if errors.Is(err, client.ErrUnreachable) {
		return withHint(err, "the room could not be reached or its answer was lost; what was sent is saved here: run the same command again to resume (or upload --discard to give it up)")
	}
	if err != nil {
		return explain(err)
	}
	return v.print(m, func() { printMatch(e.stdout, m) })
}

func runStatus(e *env, args []string) error {
	v := newCollabVerb(e, "status", "--room URL --key KEY --collab ID", `
Shows where a collaboration stands: members, datasets, re-encryption and
the latest match.`)
	c, err := v.start(args)
	if err != nil {
		return err
	}
	col, err := c.Collaboration(e.Context(), *v.collab)
	if errors.Is(err, client.ErrUnreachable) {
		return withHint(err, "the room could not be reached or its answer was lost; what was sent is saved here: run the same command again to resume (or upload --discard to give it up)")
	}
	if err != nil {
		return explain(err)
	}
	return v.print(col, func() { printStatus(e, col) })
}

func printStatus(e *env, v *api.Collaboration) {
	fmt.Fprintf(e.stdout, "collaboration %s: %s matching of %s identifiers under %s", v.ID, v.Mode, v.Kind, v.Profile)
	if v.Revoked {
		fmt.Fprintf(e.stdout, "; REVOKED by %s", v.RevokedBy)
	}
	if v.DataDeletedAt != nil {
		fmt.Fprintf(e.stdout, "; its data deleted at %s", v.DataDeletedAt.Format(time.RFC3339))
	}
	fmt.Fprintln(e.stdout)
	for _, m := range v.Members {
		fmt.Fprintf(e.stdout, "  %s: %s\n", m, memberStatus(v, m))
	}
	if !v.Revoked {
		fmt.Fprintf(e.stdout, "  %s\n", client.Waiting(client.PendingSteps(v)))
	}
	if v.Match != nil {
		printMatch(e.stdout, v.Match)
	}
	printSettings(e.stdout, v)
}

// memberStatus says where member m stands: accepted, uploaded, its set's
// keys (blinded mode only) and the sets it has to re-encrypt.
func memberStatus(v *api.Collaboration, m string) string {
	d := v.Datasets[m]
	var s string
	switch {
	case !v.Accepted[m]:
		s = "not accepted yet"
	case d == nil:
		s = "accepted; waiting for upload"
	default:
		s = fmt.Sprintf("%d rows uploaded", d.Rows)
		if v.Mode == api.ModeBlinded && !d.Ready {
			s += fmt.Sprintf("; its set carries %d of %d keys", d.Layers, len(v.Members))
		}
		if d.Ready {
			s += "; ready to match"
		}
	}
	if n := v.PendingReencryption[m]; n > 0 {
		s += fmt.Sprintf("; %d %s to re-encrypt (cleanroom sync)", n, plural(n, "set", "sets"))
	}
	return s
}

// printMatch shows what a match run released: each member's match rate.
func printMatch(w io.Writer, m *api.MatchResult) {
	var rates []string
	for member, r := range m.MatchRate {
		rates = append(rates, member+" "+r)
	}
	slices.Sort(rates)
	how := fmt.Sprintf("from a noisy count, epsilon %g", m.Epsilon)
	if !m.Noise {
		how = "exact, NOISE OFF"
		if m.Matched != nil {
			how += fmt.Sprintf(": %d people", *m.Matched)
		}
	}
	fmt.Fprintf(w, "  match run %d: match rate %s (%s)\n", m.Run, strings.Join(rates, ", "), how)
}

func runQuery(e *env, args []string) error {
	v := newCollabVerb(e, "query", "--room URL --key KEY --collab ID --spec FILE [--json|--csv]", `
Asks an aggregate question (a JSON query spec, version `+api.QueryVersion+`)
of the matched people: count, sum, avg, match_rate, roi and lift, grouped by
and filtered on attribute columns, or a kmeans profile. Groups smaller than
the collaboration's k are withheld. See the spec's fields in the README.`)
	spec := v.String("spec", "", "the query spec file (required)")
	asCSV := v.Bool("csv", false, "print the rows as CSV")
	c, err := v.start(args)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(*spec)
	if err != nil {
		return err
	}
	var q api.QuerySpec
	if err := decodeJSONFile(*spec, b, &q); err != nil {
		return withHint(fmt.Errorf("the spec is not a query spec: %w", err), `e.g. {"version":"cleanroom.dev/query/v1","metrics":["count"],"group_by":["coursely.age_band"],"epsilon":0.5}`)
	}
	res, err := c.Query(e.Context(), *v.collab, q)
	if errors.Is(err, client.ErrUnreachable) {
		return withHint(err, "the room could not be reached or its answer was lost; what was sent is saved here: run the same command again to resume (or upload --discard to give it up)")
	}
	if err != nil {
		return explain(err)
	}
	if *asCSV {
		return writeCSV(e, &q, res)
	}
	return v.print(res, func() { printTable(e, &q, res) })
}

func clusterHeader(q *api.QuerySpec) []string {
	return append([]string{"cluster", "size"}, q.KMeans.Columns...)
}

func clusterRow(i int, c api.Cluster) []string {
	row := []string{strconv.Itoa(i + 1), strconv.FormatInt(c.Size, 10)}
	for _, x := range c.Centroid {
		row = append(row, strconv.FormatFloat(x, 'f', -1, 64))
	}
	return row
}

func cells(row []any) []string {
	out := make([]string, len(row))
	for i, v := range row {
		if v != nil {
			out[i] = fmt.Sprint(v)
		}
	}
	return out
}

// writeCSV prints the rows (and then the clusters, if any) as CSV.
func writeCSV(e *env, q *api.QuerySpec, res *api.QueryResult) error {
	w := csv.NewWriter(e.stdout)
	if len(q.Metrics) > 0 {
		w.Write(res.Columns)
		for _, row := range res.Rows {
			w.Write(cells(row))
		}
	}
	if q.KMeans != nil {
		w.Write(clusterHeader(q))
		for i, c := range res.Clusters {
			w.Write(clusterRow(i, c))
		}
	}
	w.Flush()
	return w.Error()
}

func printTable(e *env, q *api.QuerySpec, res *api.QueryResult) {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if len(q.Metrics) > 0 {
		fmt.Fprintln(tw, strings.Join(res.Columns, "\t"))
		for _, row := range res.Rows {
			fmt.Fprintln(tw, strings.Join(cells(row), "\t"))
		}
	}
	if q.KMeans != nil {
		fmt.Fprintln(tw, strings.Join(clusterHeader(q), "\t"))
		for i, c := range res.Clusters {
			fmt.Fprintln(tw, strings.Join(clusterRow(i, c), "\t"))
		}
	}
	tw.Flush()
	noise := fmt.Sprintf("with differential-privacy noise, epsilon %g", res.Epsilon)
	if !res.Noise {
		noise = "EXACT: noise off by the collaboration's settings"
	}
	groups := fmt.Sprintf("groups drawn from the data by partition selection (delta %g), each of at least k=%d", res.Delta, res.MinGroup)
	if res.Withheld != nil {
		groups = fmt.Sprintf("%d declared groups under k=%d withheld", *res.Withheld, res.MinGroup)
	}
	fmt.Fprintf(e.stdout, "(%s; %s; budget %g of %g left)\n", noise, groups, res.Budget.Remaining, res.Budget.Total)
}

func runBudget(e *env, args []string) error {
	v := newCollabVerb(e, "budget", "--room URL --key KEY --collab ID", `Shows the collaboration's privacy budget.`)
	c, err := v.start(args)
	if err != nil {
		return err
	}
	b, err := c.Budget(e.Context(), *v.collab)
	if errors.Is(err, client.ErrUnreachable) {
		return withHint(err, "the room could not be reached or its answer was lost; what was sent is saved here: run the same command again to resume (or upload --discard to give it up)")
	}
	if err != nil {
		return explain(err)
	}
	return v.print(b, func() {
		fmt.Fprintf(e.stdout, "epsilon spent %g of %g; %g left\n", b.Spent, b.Total, b.Remaining)
		if b.DeltaTotal > 0 {
			fmt.Fprintf(e.stdout, "delta spent %g of %g\n", b.DeltaSpent, b.DeltaTotal)
		}
		fmt.Fprintf(e.stdout, "today: %d of %d queries, %d of %d match runs\n", b.QueriesToday, b.MaxQueriesDay, b.MatchesToday, b.MaxMatchesDay)
		if b.MemberShare > 0 {
			members := make([]string, 0, len(b.MemberSpent))
			for m := range b.MemberSpent {
				members = append(members, m)
			}
			slices.Sort(members)
			for _, m := range members {
				fmt.Fprintf(e.stdout, "  %s spent %g of its share of %g\n", m, b.MemberSpent[m], b.MemberShare)
			}
		}
	})
}

func runPolicy(e *env, args []string) error {
	return runSubcommand(e, "policy", `Usage:
  cleanroom policy propose --room URL --key KEY --collab ID --file MODULE.rego
  cleanroom policy approve --room URL --key KEY --collab ID --hash SHA256

A collaboration's own policy (Rego v1, package collaboration) adds denials
and tightens constraints; it takes effect once every member approved its
exact SHA-256. Proposing is approving.
`, args, []subcommand{{"propose", runPolicyPropose}, {"approve", runPolicyApprove}})
}

func runPolicyPropose(e *env, args []string) error {
	v := newCollabVerb(e, "policy propose", "--room URL --key KEY --collab ID --file MODULE.rego", `Proposes a policy module.`)
	file := v.String("file", "", "the Rego module (required)")
	c, err := v.start(args)
	if err != nil {
		return err
	}
	src, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	p, err := c.ProposePolicy(e.Context(), *v.collab, src)
	if errors.Is(err, client.ErrUnreachable) {
		return withHint(err, "the room could not be reached or its answer was lost; what was sent is saved here: run the same command again to resume (or upload --discard to give it up)")
	}
	if err != nil {
		return explain(err)
	}
	return v.print(p, func() {
		fmt.Fprintf(e.stdout, "proposed policy %s; the other members approve it with cleanroom policy approve --hash %s\n", p.Hash, p.Hash)
	})
}

func runPolicyApprove(e *env, args []string) error {
	v := newCollabVerb(e, "policy approve", "--room URL --key KEY --collab ID --hash SHA256", `Approves a proposed policy module by its hash.`)
	hash := v.String("hash", "", "the proposal's SHA-256 (required)")
	c, err := v.start(args)
	if err != nil {
		return err
	}
	p, err := c.ApprovePolicy(e.Context(), *v.collab, *hash)
	if errors.Is(err, client.ErrUnreachable) {
		return withHint(err, "the room could not be reached or its answer was lost; what was sent is saved here: run the same command again to resume (or upload --discard to give it up)")
	}
	if err != nil {
		return explain(err)
	}
	return v.print(p, func() {
		state := "waiting for other members"
		if p.Active {
			state = "now active"
		}
		fmt.Fprintf(e.stdout, "approved policy %s: %s\n", p.Hash, state)
	})
}
