package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// contentSecurityPolicy allows no script at all, styles and images from the
// console alone, forms that post to the console alone, and no framing.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// tokenParam is the query parameter of the URL the console prints.
const tokenParam = "token"

// newToken returns a fresh random token: 256 bits, base64url.
func newToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newBase returns a fresh path under which a console serves its pages,
// "/s/" and 128 random bits, base64url. Browsers send a host's cookies to
// every port of that host, so a cookie for "/" would reach any other server
// on loopback that the browser loads a page from; scoped to this path, it
// goes only where the path is known.
func newBase() string {
	var b [16]byte
	rand.Read(b[:])
	return "/s/" + base64.RawURLEncoding.EncodeToString(b[:])
}

// guard is what stands between a browser and the console's pages: the Host
// check, the pages' secret path, the token, cross-origin protection and the
// security headers.
type guard struct {
	token  string
	base   string          // every page's path starts with it (newBase), and the cookie's path is it
	static http.Handler    // the stylesheet and icon, under /static/: public
	cookie string          // the cookie's name: per port, since cookies ignore ports
	hosts  map[string]bool // Host headers the console answers to
	cop    *http.CrossOriginProtection
	log    *slog.Logger
}

// newGuard guards a console listening on addr (host:port, a loopback
// address) whose pages are under base.
func newGuard(token, base string, static http.Handler, addr net.Addr, log *slog.Logger) *guard {
	port := "0"
	if ta, ok := addr.(*net.TCPAddr); ok {
		port = strconv.Itoa(ta.Port)
	}
	hosts := map[string]bool{addr.String(): true, "localhost:" + port: true, "127.0.0.1:" + port: true, "[::1]:" + port: true}
	g := &guard{token: token, base: base, static: static, cookie: "cleanroom_console_" + port, hosts: hosts, cop: http.NewCrossOriginProtection(), log: log}
	g.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.refuse(w, r, http.StatusForbidden, "This request came from another site. The console only accepts forms sent from its own pages.")
	}))
	return g
}

// wrap applies the guard to next, and logs every request by route and
// status (never its query string or body).
func (g *guard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		g.serve(sw, r, next)
		g.log.Info("console", "method", r.Method, "path", r.URL.Path, "status", sw.status, "ms", time.Since(start).Milliseconds())
	})
}

func (g *guard) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")

	if !g.hosts[strings.ToLower(r.Host)] {
		// A page of another site whose name resolves to loopback (DNS
		// rebinding) arrives with that name as its Host.
		g.refuse(w, r, http.StatusForbidden, "This console answers only to its own address.")
		return
	}
	if strings.HasPrefix(r.URL.EscapedPath(), "/static/") && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		// Embedded public assets: no data, no token needed, served here
		// and never by the pages' mux, whose answers (its error page among
		// them) carry the base. The escaped path: "/static%2Fx" decodes to
		// "/static/x", but is no asset's. Other methods go through the
		// guard.
		g.static.ServeHTTP(w, r)
		return
	}
	page, ok := g.under(r.URL.Path)
	if !ok {
		g.refuse(w, r, http.StatusNotFound, "There is no such page. Open the URL the console printed when it started.")
		return
	}
	if t := r.URL.Query().Get(tokenParam); t != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		if !g.valid(t) {
			g.refuse(w, r, http.StatusForbidden, "This link's token is not this console's. Open the URL the console printed when it started.")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: g.cookie, Value: g.token, Path: g.base, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		// Leave the token out of the address bar, the history and any
		// Referer from here on. The page is the same one under the
		// console's base, which a path cannot lead out of: no control
		// character or space, which browsers drop from a path, and one
		// slash after the base.
		q := r.URL.Query()
		q.Del(tokenParam)
		to := g.base + "/" + strings.TrimLeft(page, "/\\")
		if strings.ContainsFunc(to, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
			to = g.base + "/"
		}
		if len(q) > 0 {
			to += "?" + q.Encode()
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	c, err := r.Cookie(g.cookie)
	if err != nil || !g.valid(c.Value) {
		g.refuse(w, r, http.StatusForbidden, "This console needs its token. Open the URL the console printed when it started.")
		return
	}
	if err := g.cop.Check(r); err != nil {
		g.refuse(w, r, http.StatusForbidden, "This request came from another site. The console only accepts forms sent from its own pages.")
		return
	}
	next.ServeHTTP(w, r)
}

// under returns what follows the base in path ("" for the base itself,
// "/…" below it), or false when path is not under the base. The base is
// compared in constant time: it keeps the cookie from other servers only
// while it is secret.
func (g *guard) under(path string) (string, bool) {
	n := len(g.base)
	if len(path) < n || subtle.ConstantTimeCompare([]byte(path[:n]), []byte(g.base)) != 1 {
		return "", false
	}
	if rest := path[n:]; rest == "" || rest[0] == '/' {
		return rest, true
	}
	return "", false
}

func (g *guard) valid(t string) bool {
	return subtle.ConstantTimeCompare([]byte(t), []byte(g.token)) == 1
}

// refuse answers a refused request with a plain page of its own: it reveals
// nothing of the console's pages.
func (g *guard) refuse(w http.ResponseWriter, _ *http.Request, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte("cleanroom console: " + msg + "\n"))
}

// statusWriter remembers the status of an answer, for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush lets a streamed download through the wrapper.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
