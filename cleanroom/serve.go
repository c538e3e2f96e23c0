package cleanroom

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Timeouts of the room's HTTP server. Upload and relay parts are a few
// megabytes each, so reading or writing one may take a while on a slow
// link; headers may not.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 5 * time.Minute
	writeTimeout      = 5 * time.Minute
	idleTimeout       = 2 * time.Minute
	shutdownGrace     = 30 * time.Second
)

// Serve answers HTTP on ln until ctx ends, then shuts down gracefully: it
// logs why (ctx's cause), stops accepting, lets requests in flight finish
// for up to 30 s, answers those still running then with a 503 problem
// (never a cut connection) and cancels them, and returns. The caller closes
// the room afterwards.
func (r *Room) Serve(ctx context.Context, ln net.Listener) error {
	return r.serve(ctx, ln, r.Handler(), shutdownGrace)
}

func (r *Room) serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	r.log.Info("room shutting down", "cause", context.Cause(ctx).Error(), "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		n := r.cutInFlight()
		r.log.Warn("requests still running at the end of the grace period were answered 503 and canceled", "requests", n)
		// They were answered; their handlers return once they see the
		// cancellation.
		fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Shutdown(fctx)
		fcancel()
		if err != nil {
			srv.Close()
		}
		err = nil
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	r.log.Info("room stopped serving")
	return err
}
