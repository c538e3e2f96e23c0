package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestServeMetrics: the metrics listener serves /metrics alone, and stops.
func TestServeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "cleanroom_probe_total", Help: "a probe"})
	reg.MustRegister(c)
	c.Inc()
	var logged strings.Builder
	stop, err := serveMetrics("127.0.0.1:0", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	_, addr, ok := strings.Cut(logged.String(), "addr=")
	if !ok {
		t.Fatalf("no address logged: %q", logged.String())
	}
	base := "http://" + strings.TrimSpace(addr)
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "cleanroom_probe_total 1") {
		t.Errorf("/metrics: %d %q", code, body)
	}
	if code, _ := get("/v1/room"); code != http.StatusNotFound {
		t.Errorf("the metrics listener served /v1/room: %d", code)
	}
	stop()
	if code, _ := get("/metrics"); code != 0 {
		t.Errorf("/metrics after stop: %d", code)
	}
}
