package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/opencleanroom/cleanroom/cleanroom/console"
)

func runConsole(e *env, args []string) error {
	fs := newFlags(e, "console", "--room URL --key KEY [--as ID] [--role ROLE] [--addr 127.0.0.1:8686]", `
Runs a web console on this machine for the room's analysts, partners and
auditors, and prints the URL to open (it carries a token the console
requires). Like kubectl proxy, the console signs every request to the room
with your key: the browser never holds it. A partner or analyst sees its
collaborations, their terms and budget, and a query builder; an auditor
sees the audit log the room lets it export, verified as cleanroom audit
verify does, and the budgets reconciled from it. The role is the one the
operator registered your key with (--role overrides it).
The console listens on loopback only; stop it with Ctrl-C.`)
	rf := &roomFlags{
		room: fs.String("room", os.Getenv("CLEANROOM_ROOM"), "the room's URL (or $CLEANROOM_ROOM)"),
		key:  fs.String("key", os.Getenv("CLEANROOM_KEY"), "your key file, from cleanroom keygen (or $CLEANROOM_KEY)"),
		as:   fs.String("as", "", "the principal id the room knows your key by (default: the key's name)"),
	}
	addr := fs.String("addr", "127.0.0.1:8686", "loopback address for the console (port 0: any free port)")
	role := fs.String("role", "", "your role in the room: partner, analyst, auditor or room-auditor (default: as the room has registered your key)")
	vkey := fs.String("verifier-key", "", "the room's audit verifier key, if you obtained it yourself (default: the key the room publishes)")
	if err := fs.parse(args); err != nil {
		return err
	}
	c, err := rf.connect(e)
	if err != nil {
		return err
	}
	ln, err := console.Listen(*addr)
	if err != nil {
		if errors.Is(err, console.ErrNotLoopback) {
			return withHint(err, "use --addr 127.0.0.1:PORT; the console is for the machine it runs on")
		}
		return withHint(err, "choose another --addr port")
	}
	defer ln.Close()
	if *role == "" {
		me, err := c.Me(e.Context())
		if err != nil {
			return explain(err)
		}
		*role = me.Role
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := console.New(console.Config{Client: c, Role: *role, VerifierKey: *vkey, Logger: logger})
	if err != nil {
		return withHint(err, "--role is partner, analyst, auditor or room-auditor")
	}
	ctx := e.Context()
	fmt.Fprintf(e.stdout, "Console for %s (%s) in room %s: open\n  %s\n", c.Principal(), *role, c.Room().ID, srv.URL(ln.Addr()))
	fmt.Fprintf(e.stderr, "The URL's token is this console's only password: do not share it. Ctrl-C stops the console.\n")
	return srv.Serve(ctx, ln)
}
