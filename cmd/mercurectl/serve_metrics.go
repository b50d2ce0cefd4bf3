package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/hub"
)

// readyTimeout bounds one readiness check of the history store.
const readyTimeout = 2 * time.Second

// metricsServer is the --metrics-addr listener: Prometheus metrics and the
// health endpoints, kept off the hub's address so that they need not be
// exposed to the hub's clients.
type metricsServer struct {
	http *http.Server
	ln   net.Listener
	// draining is set when the shutdown begins: /readyz then answers 503 so
	// that load balancers stop sending traffic.
	draining atomic.Bool
}

func newMetricsServer(ln net.Listener, h *hub.Hub, store history.Store, logger *slog.Logger) *metricsServer {
	m := &metricsServer{ln: ln}
	// The process and Go runtime metrics sit beside the hub's own.
	runtimeReg := prometheus.NewRegistry()
	runtimeReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gatherers := prometheus.Gatherers{h.Gatherer(), runtimeReg}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}))
	// /healthz says the process is alive and serving HTTP.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writePlain(w, http.StatusOK, "ok\n")
	})
	// /readyz says the hub can take traffic: not shutting down, and the
	// history store accepts appends.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if m.draining.Load() {
			writePlain(w, http.StatusServiceUnavailable, "shutting down\n")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := store.Ready(ctx); err != nil {
			logger.Warn("not ready", "err", err)
			writePlain(w, http.StatusServiceUnavailable, "history store unavailable\n")
			return
		}
		writePlain(w, http.StatusOK, "ok\n")
	})
	m.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return m
}

func writePlain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// serve runs the metrics server until it is shut down.
func (m *metricsServer) serve() error {
	if err := m.http.Serve(m.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
