package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// The demo's alliance: an online course platform and a fitness app.
const (
	brandA     = "coursely"
	brandB     = "pulsefit"
	auditor    = "compliance"
	demoCollab = "spring-alliance"
)

// demoPolicy is the alliance's own policy module: it can only tighten the
// room's default policy.
const demoPolicy = `package collaboration

constraints := {"min_group_size": 100}

deny contains "the alliance does not break the overlap down by region" if {
	input.action == "query.run"
	some d in input.resource.query.dimensions
	endswith(d, ".region")
}
`

// demoReport is what the demo prints with --json.
type demoReport struct {
	Mode        string `json:"mode"`
	RowsA       int    `json:"rows_a"`
	RowsB       int    `json:"rows_b"`
	TrueOverlap int    `json:"true_overlap"`
	// MatchedOverlap is the room's exact overlap, read in this process
	// (the operator's): the API releases only noisy match rates.
	MatchedOverlap int64             `json:"matched_overlap"`
	MatchRate      map[string]string `json:"match_rate"`
	ByAgeBand      [][]any           `json:"overlap_by_age_band"`
	ROIColumns     []string          `json:"roi_columns"`
	ROIByAgeBand   [][]any           `json:"roi_by_age_band"`
	LiftColumns    []string          `json:"lift_columns"`
	Lift           []any             `json:"lift"`
	Withheld       int               `json:"groups_withheld"`
	Epsilon        float64           `json:"epsilon_spent"`
	AuditEntries   int64             `json:"audit_entries"`
	AuditVerified  bool              `json:"audit_verified"`
	DataDir        string            `json:"data_dir"`
	Seconds        float64           `json:"seconds"`
	// Phases is the wall time of each step, in seconds: data (writing the
	// synthetic lists), upload (both brands at once), relay (blinded
	// mode), match, queries and audit.
	Phases map[string]float64 `json:"phase_seconds"`
	// Lookalike is the model, its local scoring and the activation.
	Lookalike *lookalikeReport `json:"lookalike"`
	// keys are the brands' and the auditor's, for --console.
	keys map[string]*crypto.PartnerKey
}

func runDemo(e *env, args []string) error {
	fs := newFlags(e, "demo", "[--data DIR] [--rows N] [--mode blinded|hashed] [--json] [--console]", `
Runs a complete two-brand clean room on this machine: a room on loopback
with an embedded Badger database, an online course platform and a fitness
app with synthetic customers and a known overlap, their keys, a
collaboration, uploads, re-encryption (blinded mode), the match, a count of
the overlap by age band, and an auditor's export and offline verification of
the audit log. Everything goes through the real HTTP API and the partner
client the other verbs use.`)
	data := fs.String("data", "", "the room's data directory (default: a new temporary one, removed afterwards)")
	rows := fs.Int("rows", 20000, "customers of each brand")
	overlap := fs.Int("overlap", 30, "percent of each brand's customers who are customers of both")
	mode := fs.String("mode", api.ModeBlinded, "matching mode: blinded or hashed")
	seed := fs.Uint64("seed", 1, "seed of the synthetic customers")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	lists := fs.String("write-lists", "", "only write the two brands' synthetic customer lists (coursely.csv, pulsefit.csv) into this directory, to try the other verbs by hand")
	withConsole := fs.Bool("console", false, "afterwards, keep the room running with a console for each brand and the auditor, and print their URLs (until Ctrl-C)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *rows < 2000 {
		return usagef("--rows must be at least 2000 (the policy's minimum list size is 1,000)")
	}
	if *overlap < 1 || *overlap > 100 {
		return usagef("--overlap is a percentage from 1 to 100")
	}
	if *mode != api.ModeBlinded && *mode != api.ModeHashed {
		return usagef("--mode is blinded or hashed")
	}
	if *lists != "" {
		files, n, err := writeDemoData(*lists, *rows, *rows**overlap/100, *seed)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s and %s: %d customers each, %d in common\n", files[brandA], files[brandB], *rows, n)
		return nil
	}
	start := time.Now()
	work, err := os.MkdirTemp("", "cleanroom-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	dir := *data
	if dir == "" {
		dir = filepath.Join(work, "room")
	}
	say := func(format string, a ...any) {
		if !*asJSON {
			fmt.Fprintf(e.stdout, format+"\n", a...)
		}
	}
	rep, err := demo(e.Context(), e, demoConfig{dir: dir, work: work, rows: *rows, overlap: *overlap, mode: *mode, seed: *seed, say: say})
	if err != nil {
		return err
	}
	rep.Seconds = time.Since(start).Seconds()
	if *data == "" {
		rep.DataDir = ""
	}
	if *asJSON {
		if err := printJSON(e, rep); err != nil || !*withConsole {
			return err
		}
		return demoConsoles(e, dir, rep.keys)
	}
	say("\nSummary: %d and %d customers, %d in common; the room matched %d (%s mode), saw no identifier,",
		rep.RowsA, rep.RowsB, rep.TrueOverlap, rep.MatchedOverlap, rep.Mode)
	say("answered three noisy aggregates (overlap, ROI, lift, with intervals), trained a private lookalike model that %s applied",
		brandA)
	activated := fmt.Sprintf("activated a consented audience of %d", rep.Lookalike.Audience)
	if rep.Lookalike.AudienceRefused != "" {
		activated = "was refused an audience below the minimum"
	}
	say("on its own machine, %s, and wrote %d audit entries that verify offline: %v (%.1f s)",
		activated, rep.AuditEntries, rep.AuditVerified, rep.Seconds)
	if *withConsole {
		return demoConsoles(e, dir, rep.keys)
	}
	return nil
}

type demoConfig struct {
	dir, work string
	rows      int
	overlap   int // percent
	mode      string
	seed      uint64
	say       func(string, ...any)
}

func demo(ctx context.Context, e *env, cfg demoConfig) (*demoReport, error) {
	say := cfg.say
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The operator's side: a room on loopback.
	op, err := cleanroom.Init(ctx, cleanroom.Config{Dir: cleanroom.DataDir(cfg.dir)})
	if err != nil {
		return nil, err
	}
	// The room shares this process with both brands, so its match spills
	// past 256 MiB rather than the default 1 GiB: at 10M × 10M that keeps
	// the whole demo under 2 GiB for a fraction of a second more.
	room, err := cleanroom.Open(ctx, cleanroom.Config{Dir: cleanroom.DataDir(cfg.dir), MatchMemory: 256 << 20})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		room.Close()
		return nil, err
	}
	url := "http://" + ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- room.Serve(ctx, ln) }()
	stopRoom := func() error {
		cancel()
		err := <-served
		if cerr := room.Close(); err == nil {
			err = cerr
		}
		return err
	}
	defer func() {
		if room != nil {
			stopRoom()
		}
	}()
	say("Room %s listening on %s (data in %s)", room.Info().ID, url, cfg.dir)

	// Each brand and the auditor make keys on their own machines; the
	// operator registers the public halves.
	opc, err := client.New(ctx, url, op, client.Options{})
	if err != nil {
		return nil, err
	}
	keys := map[string]*crypto.PartnerKey{}
	for _, who := range []struct{ id, role, partner string }{
		{brandA, policy.RolePartner, ""}, {brandB, policy.RolePartner, ""}, {auditor, policy.RoleAuditor, brandA},
	} {
		k, err := crypto.GeneratePartnerKey(who.id, nil)
		if err != nil {
			return nil, err
		}
		keys[who.id] = k
		if err := opc.RegisterPrincipal(ctx, api.Principal{ID: who.id, Role: who.role, Partner: who.partner, Keys: k.Public()}); err != nil {
			return nil, fmt.Errorf("registering %s: %w", who.id, err)
		}
	}
	say("Operator registered %s (course platform), %s (fitness app) and auditor %s by their public keys", brandA, brandB, auditor)
	clients := map[string]*client.Client{}
	for id, k := range keys {
		if clients[id], err = client.New(ctx, url, k, client.Options{RoomID: room.Info().ID}); err != nil {
			return nil, err
		}
	}
	state := map[string]client.StateDir{brandA: client.StateDir(filepath.Join(cfg.work, brandA)), brandB: client.StateDir(filepath.Join(cfg.work, brandB))}

	// The collaboration, its secret, and the other brand's acceptance of
	// the settings it was shown.
	settings := policy.Settings{
		Constraints: policy.Constraints{AllowedDimensions: []string{brandA + ".age_band", brandA + ".region", brandB + ".age_band",
			brandA + ".revenue", brandA + ".exposed"}},
		Domains: map[string][]string{brandA + ".age_band": ageBands, brandB + ".age_band": ageBands, brandA + ".exposed": {"false", "true"}},
		// The course platform may receive audiences of its own customers
		// in the overlap, for the joint campaign: every member sees it.
		Activation: &policy.Activation{Members: []string{brandA}},
		Bounds:     map[string][2]float64{brandA + ".revenue": {0, 200}, brandA + ".campaign_cost": {0, 5}, brandB + ".revenue": {0, 100}},
	}
	raw, err := settings.Canonical()
	if err != nil {
		return nil, err
	}
	if _, err := clients[brandA].CreateCollaboration(ctx, api.CreateCollaboration{
		ID: demoCollab, Mode: cfg.mode, Profile: crypto.ProfilePAIRv1, Kind: "email", Members: []string{brandA, brandB}, Settings: raw,
	}); err != nil {
		return nil, err
	}
	if err := clients[brandA].DistributeSecret(ctx, demoCollab, state[brandA], nil); err != nil {
		return nil, err
	}
	shown, err := clients[brandB].Collaboration(ctx, demoCollab)
	if err != nil {
		return nil, err
	}
	if shown.NoiseOff {
		return nil, fmt.Errorf("the demo's collaboration turned noise off")
	}
	if err := clients[brandB].Accept(ctx, demoCollab, shown.SettingsDigest); err != nil {
		return nil, err
	}
	if err := clients[brandB].ReceiveSecret(ctx, demoCollab, state[brandB], nil); err != nil {
		return nil, err
	}
	say("%s created collaboration %s (%s mode); %s reviewed its settings (digest %.12s…), accepted them and opened the secret sealed to its key",
		brandA, demoCollab, cfg.mode, brandB, shown.SettingsDigest)

	// The brands' own policy on top of the room's: proposed by one,
	// active once the other approves its exact hash.
	prop, err := clients[brandA].ProposePolicy(ctx, demoCollab, []byte(demoPolicy))
	if err != nil {
		return nil, err
	}
	approved, err := clients[brandB].ApprovePolicy(ctx, demoCollab, prop.Hash)
	if err != nil {
		return nil, err
	}
	if !approved.Active {
		return nil, fmt.Errorf("the approved policy did not become active")
	}
	say("%s proposed the alliance's policy (groups of at least 100 people, no region breakdowns); %s approved it: policy %.12s… active", brandA, brandB, prop.Hash)

	// Synthetic customer lists with a known overlap.
	phases := map[string]float64{}
	mark := time.Now()
	phase := func(name string) {
		phases[name] = time.Since(mark).Seconds()
		mark = time.Now()
	}
	files, overlap, err := writeDemoData(cfg.work, cfg.rows, cfg.rows*cfg.overlap/100, cfg.seed)
	if err != nil {
		return nil, err
	}
	phase("data")
	say("Each brand has %d customers; %d are customers of both", cfg.rows, overlap)

	specs := map[string]client.UploadSpec{
		brandA: {Collab: demoCollab, Input: files[brandA], IDColumn: "email", Kind: crypto.KindEmail, Columns: []string{"age_band", "region", "revenue", "exposed", "campaign_cost"}, State: state[brandA]},
		brandB: {Collab: demoCollab, Input: files[brandB], IDColumn: "email", Kind: crypto.KindEmail, Columns: []string{"age_band", "conversions", "revenue"}, State: state[brandB]},
	}
	if err := both(func(id string) error {
		rep, err := clients[id].UploadCSV(ctx, specs[id])
		if err == nil {
			say("%s normalized and %s %d identifiers on its machine and uploaded them in %d parts", id, verbOf(cfg.mode), rep.Rows, rep.Parts)
		}
		return err
	}); err != nil {
		return nil, err
	}
	phase("upload")
	if cfg.mode == api.ModeBlinded {
		if err := both(func(id string) error {
			rep, err := clients[id].Sync(ctx, demoCollab, true, 100*time.Millisecond)
			if err == nil {
				say("%s re-encrypted the other brand's shuffled set (%d elements) with its key", id, rep.Elements)
			}
			return err
		}); err != nil {
			return nil, err
		}
		phase("relay")
	}
	m, err := clients[brandA].Match(ctx, demoCollab)
	if err != nil {
		return nil, err
	}
	phase("match")
	// The exact overlap stays in the room; the operator's process (this
	// one) checks it against the known truth.
	stats, err := room.MatchStats(demoCollab)
	if err != nil {
		return nil, err
	}
	say("The room compared the canary identifiers, then matched; it told the brands noisy match rates (%s: %s, %s: %s, epsilon %.1f)",
		brandA, m.MatchRate[brandA], brandB, m.MatchRate[brandB], m.Epsilon)
	say("Inside the room: %d people in common (true overlap %d)", stats.Matched, overlap)

	q, err := clients[brandA].Query(ctx, demoCollab, api.QuerySpec{
		Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{brandA + ".age_band"}, Epsilon: 0.5,
	})
	if err != nil {
		return nil, err
	}
	withheld := 0
	if q.Withheld != nil {
		withheld = *q.Withheld
	}
	say("\nShared customers by age band (Laplace noise, epsilon %.1f; declared groups under %d people withheld: %d)", q.Epsilon, q.MinGroup, withheld)
	for _, row := range q.Rows {
		say("  %-6v %v", row[0], row[1])
	}

	// Did the joint campaign pay? ROI = (R_coursely + R_pulsefit) / C over
	// the shared customers, by segment; and the lift in the fitness app's
	// conversions among those the course platform's campaign reached.
	roi, err := clients[brandA].Query(ctx, demoCollab, api.QuerySpec{
		Version: api.QueryVersion, GroupBy: []string{brandA + ".age_band"}, Epsilon: 0.5,
		Metrics: []api.Metric{{Kind: api.MetricROI, Revenue: []string{brandA + ".revenue", brandB + ".revenue"}, Cost: &api.Cost{Column: brandA + ".campaign_cost"}}},
	})
	if err != nil {
		return nil, err
	}
	say("\nJoint campaign ROI by age band, (R_%s + R_%s) / C:", brandA, brandB)
	for _, row := range roi.Rows {
		say("  %-6v %v (95%% interval %v to %v)", row[0], row[2], row[3], row[4])
	}
	lift, err := clients[brandB].Query(ctx, demoCollab, api.QuerySpec{
		Version: api.QueryVersion, Epsilon: 0.5,
		Metrics: []api.Metric{{Kind: api.MetricLift, Exposed: brandA + ".exposed", Converted: brandB + ".conversions"}},
	})
	if err != nil {
		return nil, err
	}
	var liftRow []any
	if len(lift.Rows) == 1 {
		liftRow = lift.Rows[0]
		say("\nConversion lift at %s from %s's campaign: %v (conversion %v of %v exposed, %v of %v not exposed)",
			brandB, brandA, liftRow[1], liftRow[2], liftRow[4], liftRow[3], liftRow[5])
		say("  difference %v (95%% interval %v to %v, noise and sampling): %v", liftRow[6], liftRow[7], liftRow[8], liftRow[11])
	}
	look, err := lookalike(ctx, cfg, clients, files, overlap)
	if err != nil {
		return nil, err
	}
	say("Privacy budget: %.1f of %.1f epsilon left", look.budget.Remaining, look.budget.Total)
	phase("queries")

	// The auditor exports the log over the API and verifies it offline
	// with nothing but the room's published key, as cleanroom audit
	// verify does.
	bundle := filepath.Join(cfg.work, "audit.bundle")
	jwks := filepath.Join(cfg.work, "room-jwks.json")
	f, err := os.Create(bundle)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriter(f)
	err = clients[auditor].ExportAudit(ctx, w)
	if err == nil {
		err = w.Flush()
	}
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("exporting the audit log: %w", err)
	}
	set, err := clients[auditor].JWKS(ctx)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(jwks, set, 0o644); err != nil {
		return nil, err
	}
	if err := stopRoom(); err != nil {
		return nil, fmt.Errorf("stopping the room: %w", err)
	}
	room = nil
	v, err := loadVerifier(jwks, bundle)
	if err != nil {
		return nil, err
	}
	bf, err := os.Open(bundle)
	if err != nil {
		return nil, err
	}
	defer bf.Close()
	ar, verr := audit.Verify(bufio.NewReaderSize(bf, 1<<20), v, nil)
	phase("audit")
	rep := &demoReport{
		Mode: cfg.mode, RowsA: cfg.rows, RowsB: cfg.rows, TrueOverlap: overlap, MatchedOverlap: stats.Matched, MatchRate: m.MatchRate,
		ByAgeBand: q.Rows, Withheld: withheld, Epsilon: look.budget.Spent, AuditVerified: verr == nil, DataDir: cfg.dir,
		ROIColumns: roi.Columns, ROIByAgeBand: roi.Rows, LiftColumns: lift.Columns, Lift: liftRow, Phases: phases, Lookalike: look,
		keys: keys,
	}
	if verr != nil {
		say("Audit log verification FAILED: %v", verr)
	} else {
		rep.AuditEntries = ar.Entries
		say("\nAuditor %s exported %d audit entries and verified them offline against the room's published key: OK", auditor, ar.Entries)
	}
	return rep, nil
}

func verbOf(mode string) string {
	if mode == api.ModeHashed {
		return "HMAC-hashed"
	}
	return "PAIR-encrypted"
}

// both runs fn for the two brands at once, as two machines would.
func both(fn func(id string) error) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range []string{brandA, brandB} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn(id) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("%s: %w", []string{brandA, brandB}[i], err)
		}
	}
	return nil
}
