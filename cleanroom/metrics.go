package cleanroom

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the room's Prometheus metrics, on a registry of its own (no
// global state). Labels are routes, actions and outcomes: never a
// principal, a collaboration or a value.
type metrics struct {
	requests            *prometheus.CounterVec
	duration            *prometheus.HistogramVec
	decisions           *prometheus.CounterVec
	authFailures        *prometheus.CounterVec
	authRateLimited     prometheus.Counter
	auditFailures       prometheus.Counter
	rowsReceived        prometheus.Counter
	elementsReencrypted prometheus.Counter
	matches             prometheus.Counter
	queries             prometheus.Counter
	corruptReads        prometheus.Counter
	storageRefusals     prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, r *Room) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cleanroom_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cleanroom_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"route"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cleanroom_policy_decisions_total", Help: "Policy decisions by action and outcome.",
		}, []string{"action", "outcome"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cleanroom_auth_failures_total", Help: "Refused request tokens by reason.",
		}, []string{"reason"}),
		authRateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cleanroom_auth_rate_limited_total", Help: "Requests refused before their token was read: their source had too many failed authentications.",
		}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cleanroom_audit_append_failures_total", Help: "Actions refused because the audit log could not record them.",
		}),
		rowsReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cleanroom_upload_rows_total", Help: "Rows received in upload parts.",
		}),
		elementsReencrypted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cleanroom_relay_elements_total", Help: "Elements returned re-encrypted by members.",
		}),
		matches: prometheus.NewCounter(prometheus.CounterOpts{Name: "cleanroom_matches_total", Help: "Match runs completed."}),
		queries: prometheus.NewCounter(prometheus.CounterOpts{Name: "cleanroom_queries_total", Help: "Aggregate queries answered."}),
		corruptReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cleanroom_corrupt_reads_total", Help: "Requests refused because stored data failed its integrity check.",
		}),
		storageRefusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cleanroom_storage_refusals_total", Help: "Writes refused because the data directory's disk is nearly full.",
		}),
	}
	diskFree := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cleanroom_disk_free_bytes", Help: "Free space on the data directory's disk, as last measured.",
	}, func() float64 { return float64(r.disk.free.Load()) })
	auditSize := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cleanroom_audit_entries", Help: "Entries in the audit log.",
	}, func() float64 { return float64(r.audit.Size()) })
	reg.MustRegister(m.requests, m.duration, m.decisions, m.authFailures, m.authRateLimited, m.auditFailures, m.rowsReceived,
		m.elementsReencrypted, m.matches, m.queries, m.corruptReads, m.storageRefusals, auditSize, diskFree,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
