package main

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/opencleanroom/cleanroom/cleanroom"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/cleanroom/console"
	"github.com/opencleanroom/cleanroom/crypto"
)

// demoConsoles serves the demo's room again from its data directory, with
// a console for each brand and one for the auditor, and prints their URLs;
// it returns when the process is interrupted.
func demoConsoles(e *env, dir string, keys map[string]*crypto.PartnerKey) error {
	ctx := e.Context()
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	room, err := cleanroom.Open(ctx, cleanroom.Config{Dir: cleanroom.DataDir(dir), Logger: logger})
	if err != nil {
		return err
	}
	defer room.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- room.Serve(ctx, ln) }()
	fmt.Fprintf(e.stdout, "\nThe room is running at %s. Open a console in your browser:\n", url)
	for _, who := range []struct{ id, role, what string }{
		{brandA, console.RolePartner, "the course platform"},
		{brandB, console.RolePartner, "the fitness app"},
		{auditor, console.RoleAuditor, brandA + "'s compliance officer"},
	} {
		c, err := client.New(ctx, url, keys[who.id], client.Options{RoomID: room.Info().ID})
		if err != nil {
			return err
		}
		srv, err := console.New(console.Config{Client: c, Role: who.role, Logger: logger})
		if err != nil {
			return err
		}
		cl, err := console.Listen("127.0.0.1:0")
		if err != nil {
			return err
		}
		go srv.Serve(ctx, cl)
		fmt.Fprintf(e.stdout, "  %-10s (%s, %s)\n    %s\n", who.id, who.role, who.what, srv.URL(cl.Addr()))
	}
	fmt.Fprintf(e.stdout, "Each console signs its requests with that principal's key. Ctrl-C stops the consoles and the room.\n")
	<-ctx.Done()
	return <-served
}
