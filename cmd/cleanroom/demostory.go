package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// demo runs the alliance's story, step by step, each through the real HTTP
// API and the partner client: a room, its parties, the collaboration and
// its policy, the brands' lists, the match, the questions, the lookalike
// model and activation, and the auditor's offline check.
func demo(ctx context.Context, e *env, cfg demoConfig) (*demoReport, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := &demoRun{cfg: cfg, say: cfg.say, phases: map[string]float64{}, cpu: map[string]float64{}}
	if err := d.startRoom(ctx, cancel); err != nil {
		return nil, err
	}
	defer d.stopRoom()
	steps := []func(context.Context) error{d.registerParties, d.createCollaboration, d.agreePolicy, d.uploadLists, d.matchSets, d.askQuestions}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	d.phase("queries")
	look, err := lookalike(ctx, cfg, d.clients, d.files, d.state[brandA], d.overlap, d.phase)
	if err != nil {
		return nil, err
	}
	d.say("Privacy budget: %.1f of %.1f epsilon left", look.budget.Remaining, look.budget.Total)
	d.rep.Lookalike, d.rep.Epsilon = look, look.budget.Spent
	if err := d.auditOffline(ctx); err != nil {
		return nil, err
	}
	return d.rep, nil
}

// demoRun is the state the demo's steps share.
type demoRun struct {
	cfg     demoConfig
	say     func(string, ...any)
	room    *cleanroom.Room
	url     string
	stop    func() error
	op      *crypto.PartnerKey
	keys    map[string]*crypto.PartnerKey
	clients map[string]*client.Client
	state   map[string]client.StateDir
	files   map[string]string
	overlap int
	rep     *demoReport
	phases  map[string]float64
	cpu     map[string]float64
	mark    time.Time
	cpuMark time.Duration
}

// phase records the wall time and the process's CPU time since the
// previous phase (or restart) under name.
func (d *demoRun) phase(name string) {
	d.phases[name] = time.Since(d.mark).Seconds()
	if cpu, ok := processCPU(); ok {
		d.cpu[name] = (cpu - d.cpuMark).Seconds()
	}
	d.restart()
}

// restart starts the next phase's clocks.
func (d *demoRun) restart() {
	d.mark = time.Now()
	d.cpuMark, _ = processCPU()
}

// startRoom is the operator's side: a room on loopback.
func (d *demoRun) startRoom(ctx context.Context, cancel context.CancelFunc) error {
	dir := cleanroom.DataDir(d.cfg.dir)
	op, err := cleanroom.Init(ctx, cleanroom.Config{Dir: dir})
	if err != nil {
		return err
	}
	// The room shares this process with both brands, so its match spills
	// past 256 MiB rather than the default 1 GiB: at 10M × 10M that costs
	// a fraction of a second, and keeps the match within the demo's memory
	// limit (demoMemoryLimit). For the same reason its queries keep 512
	// MiB of decoded columns, not 1 GiB: at 10M that is all of them, and
	// at 50M a query decodes again what an earlier one read.
	room, err := cleanroom.Open(ctx, cleanroom.Config{Dir: dir, MatchMemory: 256 << 20, ColumnMemory: 512 << 20})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		room.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- room.Serve(ctx, ln) }()
	d.room, d.op, d.url = room, op, "http://"+ln.Addr().String()
	d.stop = func() error {
		d.stop = func() error { return nil }
		cancel()
		err := <-served
		if cerr := room.Close(); err == nil {
			err = cerr
		}
		return err
	}
	d.say("Room %s listening on %s (data in %s)", room.Info().ID, d.url, d.cfg.dir)
	return nil
}

func (d *demoRun) stopRoom() error { return d.stop() }

// registerParties: each brand and the auditor make keys on their own
// machines; the operator registers the public halves.
func (d *demoRun) registerParties(ctx context.Context) error {
	opc, err := client.New(ctx, d.url, d.op, client.Options{})
	if err != nil {
		return err
	}
	d.keys = map[string]*crypto.PartnerKey{}
	for _, who := range []struct{ id, role, partner string }{
		{brandA, policy.RolePartner, ""}, {brandB, policy.RolePartner, ""}, {auditor, policy.RoleAuditor, brandA},
	} {
		k, err := crypto.GeneratePartnerKey(who.id, nil)
		if err != nil {
			return err
		}
		d.keys[who.id] = k
		if err := opc.RegisterPrincipal(ctx, api.Principal{ID: who.id, Role: who.role, Partner: who.partner, Keys: k.Public()}); err != nil {
			return fmt.Errorf("registering %s: %w", who.id, err)
		}
	}
	d.say("Operator registered %s (course platform), %s (fitness app) and auditor %s by their public keys", brandA, brandB, auditor)
	d.clients = map[string]*client.Client{}
	for id, k := range d.keys {
		if d.clients[id], err = client.New(ctx, d.url, k, client.Options{RoomID: d.room.Info().ID}); err != nil {
			return err
		}
	}
	d.state = map[string]client.StateDir{
		brandA: client.StateDir(filepath.Join(d.cfg.work, brandA)), brandB: client.StateDir(filepath.Join(d.cfg.work, brandB)),
	}
	return nil
}

// demoSettings are the alliance's settings: what may be broken down, the
// declared domains and bounds, and who may receive audiences.
func demoSettings() policy.Settings {
	return policy.Settings{
		Constraints: policy.Constraints{AllowedDimensions: []string{brandA + ".age_band", brandA + ".region", brandB + ".age_band",
			brandA + ".revenue", brandA + ".exposed", brandB + ".conversions"}},
		Domains: map[string][]string{brandA + ".age_band": ageBands, brandB + ".age_band": ageBands, brandA + ".exposed": {"false", "true"}},
		// The course platform may receive audiences of its own customers
		// in the overlap, for the joint campaign: every member sees it.
		Activation: &policy.Activation{Members: []string{brandA}},
		Bounds:     map[string][2]float64{brandA + ".revenue": {0, 200}, brandA + ".campaign_cost": {0, 5}, brandB + ".revenue": {0, 100}},
	}
}

// createCollaboration: the collaboration, its secret, and the other
// brand's acceptance of the settings it was shown.
func (d *demoRun) createCollaboration(ctx context.Context) error {
	settings := demoSettings()
	raw, err := settings.Canonical()
	if err != nil {
		return err
	}
	a, b := d.clients[brandA], d.clients[brandB]
	if _, err := a.CreateCollaboration(ctx, api.CreateCollaboration{
		ID: demoCollab, Mode: d.cfg.mode, Profile: crypto.ProfilePAIRv1, Kind: "email", Members: []string{brandA, brandB}, Settings: raw,
	}); err != nil {
		return err
	}
	if err := a.DistributeSecret(ctx, demoCollab, d.state[brandA], nil); err != nil {
		return err
	}
	shown, err := b.Collaboration(ctx, demoCollab)
	if err != nil {
		return err
	}
	if shown.NoiseOff {
		return fmt.Errorf("the demo's collaboration turned noise off")
	}
	if err := b.Accept(ctx, demoCollab, shown.SettingsDigest); err != nil {
		return err
	}
	if err := b.ReceiveSecret(ctx, demoCollab, d.state[brandB], nil); err != nil {
		return err
	}
	d.say("%s created collaboration %s (%s mode); %s reviewed its settings (digest %.12s…), accepted them and opened the secret sealed to its key",
		brandA, demoCollab, d.cfg.mode, brandB, shown.SettingsDigest)
	return nil
}

// agreePolicy: the brands' own policy on top of the room's, proposed by
// one, active once the other approves its exact hash.
func (d *demoRun) agreePolicy(ctx context.Context) error {
	prop, err := d.clients[brandA].ProposePolicy(ctx, demoCollab, []byte(demoPolicy))
	if err != nil {
		return err
	}
	approved, err := d.clients[brandB].ApprovePolicy(ctx, demoCollab, prop.Hash)
	if err != nil {
		return err
	}
	if !approved.Active {
		return fmt.Errorf("the approved policy did not become active")
	}
	d.say("%s proposed the alliance's policy (groups of at least 100 people, no region breakdowns); %s approved it: policy %.12s… active", brandA, brandB, prop.Hash)
	return nil
}

// uploadLists writes the synthetic lists with a known overlap, and each
// brand normalizes, hashes or encrypts, and uploads its own.
func (d *demoRun) uploadLists(ctx context.Context) error {
	d.restart()
	var err error
	d.files, d.overlap, err = writeDemoData(d.cfg.work, d.cfg.rows, d.cfg.rows*d.cfg.overlap/100, d.cfg.seed)
	if err != nil {
		return err
	}
	d.phase("data")
	d.say("Each brand has %d customers; %d are customers of both", d.cfg.rows, d.overlap)
	specs := map[string]client.UploadSpec{
		brandA: {Collab: demoCollab, Input: d.files[brandA], IDColumn: "email", Kind: crypto.KindEmail, Columns: []string{"age_band", "region", "revenue", "exposed", "campaign_cost"}, State: d.state[brandA]},
		brandB: {Collab: demoCollab, Input: d.files[brandB], IDColumn: "email", Kind: crypto.KindEmail, Columns: []string{"age_band", "conversions", "revenue"}, State: d.state[brandB]},
	}
	err = both(func(id string) error {
		rep, err := d.clients[id].UploadCSV(ctx, specs[id])
		if err == nil {
			d.say("%s normalized and %s %d identifiers on its machine and uploaded them in %d parts", id, verbOf(d.cfg.mode), rep.Rows, rep.Parts)
		}
		return err
	})
	if err != nil {
		return err
	}
	d.phase("upload")
	return nil
}

// matchSets re-encrypts each brand's set with the other's key (blinded
// mode) and matches; the operator's process (this one) checks the exact
// overlap, which stays in the room, against the known truth.
func (d *demoRun) matchSets(ctx context.Context) error {
	if d.cfg.mode == api.ModeBlinded {
		err := both(func(id string) error {
			rep, err := d.clients[id].Sync(ctx, demoCollab, true, 100*time.Millisecond)
			if err == nil {
				d.say("%s re-encrypted the other brand's shuffled set (%d elements) with its key", id, rep.Elements)
			}
			return err
		})
		if err != nil {
			return err
		}
		d.phase("relay")
	}
	m, err := d.clients[brandA].Match(ctx, demoCollab)
	if err != nil {
		return err
	}
	d.phase("match")
	stats, err := d.room.MatchStats(demoCollab)
	if err != nil {
		return err
	}
	d.say("The room compared the canary identifiers, then matched; it told the brands noisy match rates (%s: %s, %s: %s, epsilon %.1f)",
		brandA, m.MatchRate[brandA], brandB, m.MatchRate[brandB], m.Epsilon)
	d.say("Inside the room: %d people in common (true overlap %d)", stats.Matched, d.overlap)
	d.rep = &demoReport{
		Mode: d.cfg.mode, RowsA: d.cfg.rows, RowsB: d.cfg.rows, TrueOverlap: d.overlap, MatchedOverlap: stats.Matched,
		MatchRate: m.MatchRate, DataDir: d.cfg.dir, Phases: d.phases, PhaseCPU: d.cpu, keys: d.keys,
	}
	return nil
}

// askQuestions asks the alliance's three questions: the overlap by age
// band; did the joint campaign pay, ROI = (R_coursely + R_pulsefit) / C
// over the shared customers by segment; and the lift in the fitness app's
// conversions among those the course platform's campaign reached.
func (d *demoRun) askQuestions(ctx context.Context) error {
	q, err := d.clients[brandA].Query(ctx, demoCollab, api.QuerySpec{
		Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{brandA + ".age_band"}, Epsilon: 0.5,
	})
	if err != nil {
		return err
	}
	if q.Withheld != nil {
		d.rep.Withheld = *q.Withheld
	}
	d.rep.ByAgeBand = q.Rows
	d.say("\nShared customers by age band (Laplace noise, epsilon %.1f; declared groups under %d people withheld: %d)", q.Epsilon, q.MinGroup, d.rep.Withheld)
	for _, row := range q.Rows {
		d.say("  %-6v %v", row[0], row[1])
	}
	roi, err := d.clients[brandA].Query(ctx, demoCollab, api.QuerySpec{
		Version: api.QueryVersion, GroupBy: []string{brandA + ".age_band"}, Epsilon: 0.5,
		Metrics: []api.Metric{{Kind: api.MetricROI, Revenue: []string{brandA + ".revenue", brandB + ".revenue"}, Cost: &api.Cost{Column: brandA + ".campaign_cost"}}},
	})
	if err != nil {
		return err
	}
	d.rep.ROIColumns, d.rep.ROIByAgeBand = roi.Columns, roi.Rows
	d.say("\nJoint campaign ROI by age band, (R_%s + R_%s) / C:", brandA, brandB)
	for _, row := range roi.Rows {
		d.say("  %-6v %v (95%% interval %v to %v)", row[0], row[2], row[3], row[4])
	}
	lift, err := d.clients[brandB].Query(ctx, demoCollab, api.QuerySpec{
		Version: api.QueryVersion, Epsilon: 0.5,
		Metrics: []api.Metric{{Kind: api.MetricLift, Exposed: brandA + ".exposed", Converted: brandB + ".conversions"}},
	})
	if err != nil {
		return err
	}
	d.rep.LiftColumns = lift.Columns
	if len(lift.Rows) == 1 {
		row := lift.Rows[0]
		d.rep.Lift = row
		d.say("\nConversion lift at %s from %s's campaign: %v (conversion %v of %v exposed, %v of %v not exposed)",
			brandB, brandA, row[1], row[2], row[4], row[3], row[5])
		d.say("  difference %v (95%% interval %v to %v, noise and sampling): %v", row[6], row[7], row[8], row[11])
	}
	return nil
}

// auditOffline: the auditor exports the log over the API and, once the
// room has stopped, verifies it offline with nothing but the room's
// published key, as cleanroom audit verify does.
func (d *demoRun) auditOffline(ctx context.Context) error {
	bundle := filepath.Join(d.cfg.work, "audit.bundle")
	jwks := filepath.Join(d.cfg.work, "room-jwks.json")
	if err := exportTo(ctx, d.clients[auditor], bundle); err != nil {
		return fmt.Errorf("exporting the audit log: %w", err)
	}
	set, err := d.clients[auditor].JWKS(ctx)
	if err != nil {
		return err
	}
	if err := os.WriteFile(jwks, set, 0o644); err != nil {
		return err
	}
	if err := d.stopRoom(); err != nil {
		return fmt.Errorf("stopping the room: %w", err)
	}
	v, err := loadVerifier(jwks, bundle)
	if err != nil {
		return err
	}
	bf, err := os.Open(bundle)
	if err != nil {
		return err
	}
	defer bf.Close()
	ar, verr := audit.Verify(bufio.NewReaderSize(bf, 1<<20), v, nil)
	d.phase("audit")
	d.rep.AuditVerified = verr == nil
	if verr != nil {
		d.say("Audit log verification FAILED: %v", verr)
		return nil
	}
	d.rep.AuditEntries = ar.Entries
	d.say("\nAuditor %s exported %d audit entries and verified them offline against the room's published key: OK", auditor, ar.Entries)
	return nil
}

// exportTo writes the audit bundle c may export to the file path.
func exportTo(ctx context.Context, c *client.Client, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	err = c.ExportAudit(ctx, w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
