// Package metrics holds sharelog's Prometheus collectors, in one registry that
// the HTTP server exposes at /metrics. Labels are closed sets (outcomes,
// reasons, transports, routes): no label ever carries an identifier.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is the set of collectors one sharelog process updates.
type Metrics struct {
	Registry *prometheus.Registry

	// Events counts events that reached the ledger writer, by outcome
	// (recorded, duplicate, rejected).
	Events *prometheus.CounterVec
	// Rejected counts refused events by reason and transport (nats, http,
	// nats-service).
	Rejected *prometheus.CounterVec
	// BatchSize observes how many stream messages each ingest batch applied.
	BatchSize prometheus.Histogram
	// BatchSeconds observes how long applying and committing a batch took.
	BatchSeconds prometheus.Histogram
	// CommitSeconds observes the store commit of each batch alone: Badger's
	// write and the sync of its logs.
	CommitSeconds prometheus.Histogram
	// BatchesReapplied counts the ingest batches applied again because
	// the batch, opened while the commit before it was in flight, read
	// what that commit changed (store.ErrSpeculationFailed).
	BatchesReapplied prometheus.Counter
	// DeliveryLagSeconds observes, for each batch, how long its first
	// message waited between JetStream storing it and the ingest loop
	// taking it: a stall before the ledger (the stream's delivery, or a
	// process short of CPU) rather than in it. It compares the stream's
	// clock with this host's, so in a cluster it includes their skew.
	DeliveryLagSeconds prometheus.Histogram
	// Entries is the number of ledger entries.
	Entries prometheus.Gauge
	// AppliedSeq is the last SHARELOG_IN stream sequence applied.
	AppliedSeq prometheus.Gauge
	// HTTPRequests counts HTTP requests by route pattern and status code.
	HTTPRequests *prometheus.CounterVec
}

// New returns collectors registered in a fresh registry, with the Go runtime
// and process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sharelog_events_total",
			Help: "Events applied by the ledger writer, by outcome.",
		}, []string{"outcome"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sharelog_rejected_total",
			Help: "Events refused, by reason and transport.",
		}, []string{"reason", "transport"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sharelog_ingest_batch_messages",
			Help:    "Stream messages applied per ingest batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 7),
		}),
		BatchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sharelog_ingest_batch_seconds",
			Help:    "Time to apply and commit one ingest batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		CommitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sharelog_ingest_commit_seconds",
			Help:    "Time to commit one ingest batch to the store (write and sync).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		BatchesReapplied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sharelog_ingest_batches_reapplied_total",
			Help: "Ingest batches applied again because they read what the batch committing before them changed.",
		}),
		DeliveryLagSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sharelog_ingest_delivery_lag_seconds",
			Help:    "Time from JetStream storing a batch's first message to the ingest loop taking it.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		Entries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sharelog_ledger_entries",
			Help: "Entries in the ledger.",
		}),
		AppliedSeq: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sharelog_ingest_applied_sequence",
			Help: "Last SHARELOG_IN stream sequence applied to the ledger.",
		}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sharelog_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Events, m.Rejected, m.BatchSize, m.BatchSeconds, m.CommitSeconds, m.BatchesReapplied, m.DeliveryLagSeconds, m.Entries, m.AppliedSeq, m.HTTPRequests,
	)
	return m
}

// ObserveObligations registers two gauges read on each scrape:
// sharelog_obligations_open (rectification, erasure and restriction notices
// not yet acknowledged or exempted) and sharelog_obligations_overdue (those
// of them past their due date). counts must be safe for concurrent use; when
// it fails the gauges report -1. Call it once.
func (m *Metrics) ObserveObligations(counts func() (open, overdue int, err error)) {
	read := func(overdue bool) float64 {
		o, d, err := counts()
		switch {
		case err != nil:
			return -1
		case overdue:
			return float64(d)
		}
		return float64(o)
	}
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sharelog_obligations_open",
			Help: "Rectification, erasure and restriction notices not yet acknowledged or exempted.",
		}, func() float64 { return read(false) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sharelog_obligations_overdue",
			Help: "Open notices past their due date.",
		}, func() float64 { return read(true) }),
	)
}

// ObserveLeader registers, for a replica (package cluster), the gauge
// sharelog_leader (1 while this replica holds the lease and does the side
// effects, 0 otherwise) and the counter sharelog_leader_changes_total (its
// changes of role), read on each scrape. Call it once.
func (m *Metrics) ObserveLeader(leader func() bool, changes func() uint64) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sharelog_leader",
			Help: "1 while this replica holds the lease and does the side effects, 0 otherwise.",
		}, func() float64 {
			if leader() {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sharelog_leader_changes_total",
			Help: "Changes of this replica's role, leader or follower.",
		}, func() float64 { return float64(changes()) }),
	)
}
