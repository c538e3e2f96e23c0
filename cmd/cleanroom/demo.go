package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
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
	// mode), match, queries (the three aggregates), model (training the
	// lookalike in the room), scoring (the brand's whole list, on its
	// side, and the AUC of the scores), activation and audit.
	Phases map[string]float64 `json:"phase_seconds"`
	// PhaseCPU is the CPU time (user and system) of each step, in seconds,
	// where the platform reports it: of this one process, which holds the
	// room and both brands.
	PhaseCPU map[string]float64 `json:"phase_cpu_seconds,omitempty"`
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
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(demoMemoryLimit))
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

// demoMemoryLimit is the Go memory limit the demo runs under (unless
// GOMEMLIMIT sets another): the room and both brands share its process, and
// what each holds is bounded by design (the brands' parts in flight, the
// room's match at Config.MatchMemory, its decoded columns at their cache's
// budget), so the collector may work harder near the limit instead of
// letting the heap grow to twice what is live, as it would by default.
const demoMemoryLimit = 768 << 20

type demoConfig struct {
	dir, work string
	rows      int
	overlap   int // percent
	mode      string
	seed      uint64
	say       func(string, ...any)
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
