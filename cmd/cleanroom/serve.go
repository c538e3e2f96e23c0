package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

func runInit(e *env, args []string) error {
	fs := newFlags(e, "init", "--data DIR", `
Creates a room in DIR: its id, the Ed25519 key that signs its audit log's
checkpoints (room.key), and an operator key (operator.key, mode 0600) that
registers partners with cleanroom partner add.`)
	data := fs.String("data", "", "the room's data directory (required; created)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *data == "" {
		return usagef("--data is required")
	}
	dir := cleanroom.DataDir(*data)
	if _, err := cleanroom.Init(e.Context(), cleanroom.Config{Dir: dir}); err != nil {
		if errors.Is(err, cleanroom.ErrRoomExists) {
			return withHint(err, "choose an empty directory, or serve the room that is there")
		}
		return err
	}
	r, err := cleanroom.Open(e.Context(), cleanroom.Config{Dir: dir})
	if err != nil {
		return err
	}
	info := r.Info()
	r.Close()
	fmt.Fprintf(e.stdout, "room %s created in %s\n  operator key: %s\n  audit verifier key: %s\n",
		info.ID, *data, dir.OperatorKeyFile(), info.VerifierKey)
	return nil
}

func runServe(e *env, args []string) error {
	fs := newFlags(e, "serve", "--data DIR [--addr 127.0.0.1:8080] [--metrics-addr 127.0.0.1:9464] [--engine local|beam --runner prism|flink|... --runner-endpoint HOST:PORT]", `
Runs the room over HTTP until SIGINT or SIGTERM, then shuts down
gracefully. Logs (JSON, no data values) go to stderr.`)
	data := fs.String("data", "", "the room's data directory, made by cleanroom init (required)")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	metricsAddr := fs.String("metrics-addr", "", "address to serve the operator's Prometheus metrics on, at /metrics (default: not served); never one members reach")
	var eng cleanroom.EngineConfig
	fs.StringVar(&eng.Kind, "engine", cleanroom.EngineLocal, "where queries are computed: local (this process) or beam (jobs of cleanroom-beam, docs/SCALING.md)")
	fs.StringVar(&eng.Binary, "beam-binary", "", "with --engine beam: the engine's executable (default: cleanroom-beam on the PATH)")
	fs.StringVar(&eng.Runner, "runner", "prism", "with --engine beam: the Beam runner (prism, flink, spark, dataflow, universal)")
	fs.StringVar(&eng.Endpoint, "runner-endpoint", "", "with --engine beam: the runner's job service, host:port (none for prism)")
	var lim serveLimits
	fs.Int64Var(&lim.matchMiB, "match-memory", 0, "MiB the room's matches hold in memory before they spill to disk (default 1024)")
	fs.Int64Var(&lim.columnMiB, "column-memory", 0, "MiB of decoded columns the room keeps between queries (default 1024)")
	fs.IntVar(&lim.modelSample, "model-sample", 0, "matched people a lookalike model trains on, on average (default 1000000; -1: all of them)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *data == "" {
		return usagef("--data is required")
	}
	if err := eng.Check(); err != nil {
		return usagef("%v", err)
	}
	cfg := cleanroom.Config{Dir: cleanroom.DataDir(*data), Engine: eng}
	if err := lim.apply(&cfg); err != nil {
		return usagef("%v", err)
	}
	ctx, stop := signal.NotifyContext(e.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(e.stderr, nil))
	cfg.Logger = log
	r, err := cleanroom.Open(ctx, cfg)
	if err != nil {
		switch {
		case errors.Is(err, cleanroom.ErrNoRoom):
			return withHint(err, "run cleanroom init --data "+*data+" first")
		case errors.Is(err, cleanroom.ErrRoomBusy):
			return withHint(err, "stop the other room on this directory, or serve another --data")
		case errors.Is(err, cleanroom.ErrDiskFull):
			return withHint(err, "free space on the data directory's disk, then start the room again")
		case errors.Is(err, cleanroom.ErrDamaged), errors.Is(err, cleanroom.ErrStateMismatch):
			return withHint(err, "run cleanroom doctor --data "+*data+": it says what is damaged and what to do")
		}
		return err
	}
	defer r.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *metricsAddr != "" {
		stop, err := serveMetrics(*metricsAddr, r.MetricsHandler(), log)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
	}
	info := r.Info()
	log.Info("room serving", "room", info.ID, "addr", ln.Addr().String(), "verifier_key", info.VerifierKey)
	return r.Serve(ctx, ln)
}

func runPartner(e *env, args []string) error {
	return runSubcommand(e, "partner", `Usage:
  cleanroom partner add --room URL --key OPERATOR_KEY --id ID --keys PUBLIC_JWKS [--role partner|analyst|auditor|room-auditor] [--partner ID]

Registers a principal by its public JWK set (the output of cleanroom keygen).
`, args, []subcommand{{"add", runPartnerAdd}})
}

func runPartnerAdd(e *env, args []string) error {
	fs := newFlags(e, "partner add", "--room URL --key OPERATOR_KEY --id ID --keys PUBLIC_JWKS [--role ROLE] [--partner ID]", `
Registers a partner, or an analyst or auditor working for one, by its public
JWK set. Only the operator may. An auditor sees the audit entries that
concern its partner; a room-auditor (no --partner) sees the whole log.`)
	cf := clientFlags(fs)
	id := fs.String("id", "", "the principal's id (required)")
	keys := fs.String("keys", "", "file with the principal's public JWK set (required)")
	role := fs.String("role", policy.RolePartner, "partner, analyst, auditor or room-auditor")
	partner := fs.String("partner", "", "the partner an analyst or auditor works for")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *id == "" || *keys == "" {
		return usagef("--id and --keys are required")
	}
	b, err := os.ReadFile(*keys)
	if err != nil {
		return err
	}
	if _, err := crypto.ParsePublicKeys(b); err != nil {
		return withHint(err, "pass the public JWK set that cleanroom keygen printed, not the key file")
	}
	c, err := cf.connect(e)
	if err != nil {
		return err
	}
	err = c.RegisterPrincipal(e.Context(), api.Principal{ID: *id, Role: *role, Partner: *partner, Keys: json.RawMessage(b)})
	if err != nil {
		return explain(err)
	}
	fmt.Fprintf(e.stdout, "registered %s %s\n", *role, *id)
	return nil
}

// serveLimits are serve's memory and training limits; zero leaves the
// room's default.
type serveLimits struct {
	matchMiB, columnMiB int64
	modelSample         int
}

// maxMiB bounds the memory flags (1 PiB): a larger value is a typo.
const maxMiB = 1 << 30

func (l serveLimits) apply(cfg *cleanroom.Config) error {
	for _, f := range []struct {
		name string
		mib  int64
		to   *int64
	}{{"--match-memory", l.matchMiB, &cfg.MatchMemory}, {"--column-memory", l.columnMiB, &cfg.ColumnMemory}} {
		if f.mib < 0 || f.mib > maxMiB {
			return fmt.Errorf("%s: %d MiB is not between 0 (the default) and %d", f.name, f.mib, maxMiB)
		}
		*f.to = f.mib << 20
	}
	if l.modelSample < -1 {
		return fmt.Errorf("--model-sample: %d is neither a number of people, 0 (the default) nor -1 (all of them)", l.modelSample)
	}
	cfg.ModelSample = l.modelSample
	return nil
}

// serveMetrics serves metrics at /metrics on addr, on a listener of its own
// apart from the room's API, until stop is called.
func serveMetrics(addr string, metrics http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics serving", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}
