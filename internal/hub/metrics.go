package hub

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mercurectl/mercurectl/internal/history"
)

// latencyBuckets suit operations that take from tens of microseconds (an
// in-memory store) to tens of milliseconds (an fsync, a Redis round trip).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}

// metrics are the hub's Prometheus metrics, on a private registry. There are
// no per-topic or per-subscriber labels: their cardinality is unbounded.
type metrics struct {
	reg              *prometheus.Registry
	subscribersTotal prometheus.Counter
	updates          prometheus.Counter
	publishErrors    prometheus.Counter
	publishLatency   prometheus.Histogram
	dispatchLatency  prometheus.Histogram
	lagging          prometheus.Counter
	dropped          *prometheus.CounterVec // by reason
	refused          prometheus.Counter     // subscriptions over MaxSubscribers
	blockedWrites    prometheus.Counter
}

// historyLener is implemented by stores that can tell cheaply how many
// updates they retain; the hub then exports mercure_history_updates.
type historyLener interface {
	Len() uint64
}

func newMetrics(h *Hub) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		subscribersTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mercure_subscribers_total", Help: "Subscriptions opened since the hub started.",
		}),
		updates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mercure_updates_total", Help: "Updates published through this hub (subscription events excluded).",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mercure_publish_errors_total", Help: "Publish requests refused or failed.",
		}),
		publishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mercure_publish_duration_seconds",
			Help:    "Time from receiving a publish request to acknowledging it (stored and dispatched).",
			Buckets: latencyBuckets,
		}),
		dispatchLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mercure_dispatch_duration_seconds",
			Help: "Time to store one update and hand it to the queue of every matching subscriber " +
				"(the store returns only once the update is dispatched); publishes and subscription events.",
			Buckets: latencyBuckets,
		}),
		lagging: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mercure_slow_subscriber_resyncs_total",
			Help: "Times a subscriber fell behind its queue and caught up from history instead.",
		}),
		blockedWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mercure_parked_writes_blocked_total",
			Help: "Writes to parked streams that the socket took only in part (the rest waits until it is writable).",
		}),
	}
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mercure_subscribers_dropped_total",
		Help: "Subscribers disconnected because they stopped reading: a write timed out (dispatch timeout) or failed.",
	}, []string{"reason"})
	m.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mercure_subscriptions_refused_total",
		Help: "Subscriptions refused with 503 because the hub had its maximum of open subscriptions.",
	})
	parking := 0.0
	if h.park != nil {
		parking = 1
	}
	m.reg.MustRegister(m.subscribersTotal, m.updates, m.publishErrors, m.publishLatency, m.dispatchLatency, m.lagging, m.blockedWrites, m.dropped, m.refused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mercure_parking_enabled",
			Help: "1 when idle plain HTTP/1.1 streams are parked without a goroutine, 0 when every stream keeps its own.",
		}, func() float64 { return parking }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mercure_subscribers_parked", Help: "Open subscriptions that are parked (no goroutine while idle).",
		}, func() float64 { return float64(h.park.count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mercure_poller_registrations", Help: "Sockets registered with the poller of parked streams.",
		}, func() float64 { return float64(h.park.registrations()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mercure_subscribers_connected", Help: "Open subscriptions.",
		}, func() float64 { return float64(h.bc.count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mercure_history_last_sequence", Help: "Position of the newest update in the history.",
		}, func() float64 { return float64(h.bc.last.Load()) }),
	)
	if l, ok := h.cfg.Store.(historyLener); ok {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mercure_history_updates", Help: "Updates retained in the history.",
		}, func() float64 { return float64(l.Len()) }))
	}
	return m
}

// appendTimeout bounds one Store.Append.
const appendTimeout = 15 * time.Second

// appendUpdate stores u through the store, which dispatches it before
// returning, and records how long that took.
func (h *Hub) appendUpdate(ctx context.Context, u *history.Update) error {
	start := time.Now()
	// A store that waits on a remote backend (Redis) must not hold a
	// publisher forever: past appendTimeout the publisher gets a 503.
	ctx, cancel := context.WithTimeout(ctx, appendTimeout)
	defer cancel()
	if err := h.cfg.Store.Append(ctx, u); err != nil {
		return err
	}
	h.metrics.dispatchLatency.Observe(time.Since(start).Seconds())
	return nil
}
