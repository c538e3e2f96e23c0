package console

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/opencleanroom/cleanroom/cleanroom/client"
)

// Roles a console can show pages for: the room's roles of those who work in
// collaborations. A partner and its analysts see the same pages (the room
// refuses an analyst what only a partner may do); an auditor and a room
// auditor too (the room decides which entries each may export).
const (
	RolePartner     = "partner"
	RoleAnalyst     = "analyst"
	RoleAuditor     = "auditor"
	RoleRoomAuditor = "room-auditor"
)

// ErrNotLoopback means the console was asked to listen on an address other
// than loopback. Its token travels in plain HTTP: the caller should listen
// on 127.0.0.1 or [::1].
var ErrNotLoopback = errors.New("console: the console listens on loopback only (127.0.0.1 or [::1])")

// Config configures a console.
type Config struct {
	// Client talks to the room as the user, with the user's key.
	Client *client.Client
	// Role is the key's role in the room (RolePartner by default).
	Role string
	// VerifierKey, if set, is the signed-note verifier key the audit
	// bundle must verify with, obtained out of band; by default the room's
	// own (GET /v1/room).
	VerifierKey string
	// Logger receives one line per request: method, path and status.
	Logger *slog.Logger
	// Timeout bounds each request to the room (default 2 minutes).
	Timeout time.Duration
}

// Server is a running console's state: its token, its pages, the results it
// answered and the audit bundle it verified.
type Server struct {
	cfg      Config
	token    string
	base     string // the pages' path: "/s/" and a random name (newBase)
	pages    *pages
	results  *resultStore
	audit    *auditState
	verifier note.Verifier
	static   http.Handler
}

// New makes a console for cfg.Client.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("console: no client")
	}
	switch cfg.Role {
	case "":
		cfg.Role = RolePartner
	case RolePartner, RoleAnalyst, RoleAuditor, RoleRoomAuditor:
	default:
		return nil, fmt.Errorf("console: role %q is not partner, analyst, auditor or room-auditor", cfg.Role)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	vkey := cfg.VerifierKey
	if vkey == "" {
		vkey = cfg.Client.Room().VerifierKey
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("console: the room's verifier key: %w", err)
	}
	base := newBase()
	p, err := loadPages(base)
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg: cfg, token: newToken(), base: base, pages: p, results: newResultStore(64), audit: &auditState{},
		verifier: v, static: http.StripPrefix("/static/", http.FileServerFS(sub)),
	}, nil
}

// auditor reports whether the console shows the auditor's pages.
func (s *Server) auditor() bool { return s.cfg.Role == RoleAuditor || s.cfg.Role == RoleRoomAuditor }

// Listen listens on addr, which must be a loopback address.
func Listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("console: address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, ErrNotLoopback
	}
	return net.Listen("tcp", addr)
}

// URL is the address to open in a browser: the console's address, the
// pages' path and the token, which the first page load exchanges for a
// cookie.
func (s *Server) URL(addr net.Addr) string {
	return (&url.URL{Scheme: "http", Host: addr.String(), Path: s.base + "/", RawQuery: tokenParam + "=" + s.token}).String()
}

// link is the address of the console's page at path ("/audit"), as its
// pages and redirects give it.
func (s *Server) link(path string) string { return s.base + path }

// Handler returns the console's pages, guarded, for a console listening on
// addr: the stylesheet under /static/ (served by the guard), every page
// under the console's random base path, which its links and redirects keep.
func (s *Server) Handler(addr net.Addr) http.Handler {
	mux := http.NewServeMux()
	page := func(pattern string, h http.HandlerFunc) { // pattern is "METHOD /path", under the base
		method, path, _ := strings.Cut(pattern, " ")
		mux.HandleFunc(method+" "+s.base+path, h)
	}
	page("GET /{$}", s.home)
	page("GET /collaborations", s.collaborations)
	page("GET /c/{id}", s.collaboration)
	if s.auditor() {
		page("GET /audit", s.timeline)
		page("POST /audit/refresh", s.refreshAudit)
		page("GET /audit/entries/{index}", s.entry)
		page("GET /audit/bundle", s.downloadBundle)
		page("GET /audit/budget", s.reconcile)
	} else {
		page("GET /c/{id}/query", s.builder)
		page("POST /c/{id}/query", s.runQuery)
		page("GET /results/{file}", s.downloadCSV)
	}
	mux.HandleFunc(s.base+"/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, "There is no such page in this console.", nil)
	})
	// The guard answers every path outside the base itself; were one to
	// reach the mux, its answer is plain, without the pages' layout and its
	// links (which name the base).
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "cleanroom console: there is no such page", http.StatusNotFound)
	})
	return newGuard(s.token, s.base, s.static, addr, s.cfg.Logger).wrap(mux)
}

// Serve serves the console on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(ln.Addr()),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		case <-done:
		}
	}()
	err := srv.Serve(ln)
	close(done)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// home is the role's first page: the collaborations for a partner or
// analyst, the audit log for an auditor.
func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	if s.auditor() {
		s.timeline(w, r)
		return
	}
	s.collaborations(w, r)
}

// roomContext bounds one page's requests to the room.
func (s *Server) roomContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.Timeout)
}
