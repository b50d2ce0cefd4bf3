package hub

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the hub's Prometheus metrics, on a private registry. There are
// no per-topic or per-subscriber labels: their cardinality is unbounded.
type metrics struct {
	reg              *prometheus.Registry
	subscribersTotal prometheus.Counter
	updates          prometheus.Counter
	publishErrors    prometheus.Counter
	publishLatency   prometheus.Histogram
	lagging          prometheus.Counter
}

func newMetrics(h *Hub) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		subscribersTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mercure_subscribers_total", Help: "Subscriptions opened since the hub started.",
		}),
		updates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mercure_updates_total", Help: "Updates published through this hub.",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mercure_publish_errors_total", Help: "Publish requests refused or failed.",
		}),
		publishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mercure_publish_duration_seconds",
			Help:    "Time from receiving a publish request to acknowledging it (stored and dispatched).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		lagging: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mercure_slow_subscriber_resyncs_total",
			Help: "Times a subscriber fell behind its queue and caught up from history instead.",
		}),
	}
	m.reg.MustRegister(m.subscribersTotal, m.updates, m.publishErrors, m.publishLatency, m.lagging,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mercure_subscribers_connected", Help: "Open subscriptions.",
		}, func() float64 { return float64(h.bc.count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mercure_history_last_sequence", Help: "Position of the newest update in the history.",
		}, func() float64 { return float64(h.bc.last.Load()) }),
	)
	return m
}
