// Package hub implements a Mercure hub as an http.Handler: publication,
// subscription with history replay, authorization, discovery metadata and
// CORS, for protocol drafts 07 and 08 at once.
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mercurectl/mercurectl/internal/match"
	"github.com/mercurectl/mercurectl/internal/ratelog"
	"github.com/mercurectl/mercurectl/internal/token"
)

// ErrInvalidConfig is wrapped by the errors New returns for a bad Config.
var ErrInvalidConfig = errors.New("invalid hub configuration")

// methodQuery is the safe method with a body that draft-08 allows
// (docs/protocol.md#subscribe-methods).
const methodQuery = "QUERY"

// matchCacheBytes bounds the memo of (selector, topic) matches.
const matchCacheBytes = match.DefaultCacheBytes

// Hub is a Mercure hub. Create it with New, serve it as an http.Handler, and
// end it with Shutdown then Close.
type Hub struct {
	cfg       Config
	log       *slog.Logger
	bc        *broadcaster
	cache     *match.Cache
	selectors *selectorRegistry
	metrics   *metrics

	done      chan struct{} // closed by Shutdown: streams end
	closeOnce sync.Once
	stopped   chan struct{} // closed by Close: background goroutines end
	stopOnce  sync.Once
	wg        sync.WaitGroup
	// streams counts subscription handlers from registration until their
	// closing events are published, so Shutdown can wait for them.
	streams tracker
	// storeLog keeps store failures, which a full disk makes recur on
	// every publish, to one log line per interval.
	storeLog ratelog.Limiter
	// admission enforces Config.MaxSubscribers.
	admission admission
	// park owns the parked streams; nil when parking is off or unsupported.
	park *parker
}

// tracker counts running subscription handlers; once closed it admits no
// more, and wait returns when the count is back to zero.
type tracker struct {
	mu     sync.Mutex
	n      int
	closed bool
	zero   chan struct{} // made by close; closed when n reaches 0
}

func (t *tracker) add() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.n++
	return true
}

func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 && t.zero != nil {
		close(t.zero)
		t.zero = nil
	}
}

// close refuses new handlers and returns a channel closed once none runs.
func (t *tracker) close() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	ch := make(chan struct{})
	if t.n == 0 {
		close(ch)
	} else {
		if t.zero != nil {
			// A second close waits on the same event.
			return t.zero
		}
		t.zero = ch
	}
	return ch
}

// New validates cfg (see Config for the convention; errors wrap
// ErrInvalidConfig) and returns a hub that delivers the updates of
// cfg.Store. It calls cfg.Store.Start.
func New(cfg Config) (*Hub, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cache := match.NewCache(matchCacheBytes)
	h := &Hub{
		cfg:       cfg,
		log:       logger,
		cache:     cache,
		bc:        newBroadcaster(cache),
		selectors: newSelectorRegistry(cache),
		done:      make(chan struct{}),
		stopped:   make(chan struct{}),
	}
	h.storeLog.Now = h.now
	h.park = newParker(h)
	h.metrics = newMetrics(h)
	if err := h.bc.resume(cfg.Store); err != nil {
		return nil, err
	}
	if err := cfg.Store.Start(h.bc.dispatch); err != nil {
		return nil, err
	}
	h.wg.Add(1)
	go h.sweepLoop()
	return h, nil
}

// now reads the hub's one clock (see Config).
func (h *Hub) now() time.Time { return time.Now() }

// tick is the sweeper's period: fine enough for heartbeats and deadlines,
// coarse enough to cost nothing.
func (h *Hub) tick() time.Duration {
	t := time.Second
	if hb := h.cfg.Heartbeat; hb > 0 && hb/4 < t {
		t = hb / 4
	}
	if wt := h.cfg.WriteTimeout; wt > 0 && wt/10 < t {
		t = wt / 10
	}
	// A parked stream's write that waits too long is cut by the sweeper.
	if dt := h.cfg.DispatchTimeout; h.park != nil && dt/4 < t {
		t = dt / 4
	}
	return max(t, 5*time.Millisecond)
}

func (h *Hub) sweepLoop() {
	defer h.wg.Done()
	tick := h.tick()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-h.stopped:
			return
		case <-t.C:
			now := h.now()
			h.bc.sweep(now, h.cfg.Heartbeat, tick)
			h.park.sweep(now)
			// Drop the match results of selectors released since the last
			// tick: one pass over the cache, only when there are some.
			h.cache.Purge()
		}
	}
}

// ServeHTTP implements http.Handler for the hub path, the metadata path,
// the subscriptions API and the debug UI.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	lw := &logWriter{ResponseWriter: w, rec: requestLog{r: r, start: h.now()}}
	defer h.logRequest(&lw.rec)
	h.route(lw, r)
}

func (h *Hub) route(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Xss-Protection", "1; mode=block")
	hd.Set("Content-Security-Policy", "default-src 'self'")
	if h.cfg.UI != nil && (r.URL.Path == strings.TrimSuffix(UIPath, "/") || strings.HasPrefix(r.URL.Path, UIPath)) {
		h.cfg.UI.ServeHTTP(w, r)
		return
	}
	if h.cors(w, r) {
		return
	}
	switch {
	case r.URL.Path == Path:
		switch r.Method {
		case http.MethodGet, http.MethodHead, methodQuery:
			h.serveSubscribe(w, r)
		case http.MethodPost:
			h.servePublish(w, r)
		case http.MethodOptions:
			// Not a CORS preflight from an allowed origin (cors answered
			// those): tell the methods, as Allow promises OPTIONS works.
			hd.Set("Allow", "GET, HEAD, POST, QUERY, OPTIONS")
			w.WriteHeader(http.StatusNoContent)
		default:
			hd.Set("Allow", "GET, HEAD, POST, QUERY, OPTIONS")
			h.writeError(w, r, genUnknown, &httpError{status: http.StatusMethodNotAllowed, msg: "method not allowed"})
		}
	case strings.HasPrefix(r.URL.Path, Path+"/subscriptions"):
		h.serveSubscriptionsAPI(w, r)
	case r.URL.Path == MetadataPath:
		h.serveMetadata(w, r)
	default:
		http.NotFound(w, r)
	}
}

// cors adds CORS headers for allowed origins and answers preflight
// requests (docs/protocol.md#cors). It reports whether the request was answered.
func (h *Hub) cors(w http.ResponseWriter, r *http.Request) bool {
	echo := len(h.cfg.CORSOrigins) == 0 && h.cfg.CORSAnyOriginWithCredentials
	if len(h.cfg.CORSOrigins) == 0 && !echo {
		return false
	}
	// The reply depends on Origin from here on, also when the origin is
	// absent or refused: caches (the metadata is cacheable) must not serve
	// a reply without CORS headers to an allowed origin.
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	star, allowed := false, echo
	for _, o := range h.cfg.CORSOrigins {
		if o == "*" {
			star = true
		}
		if originMatches(o, origin) {
			allowed = true
		}
	}
	if !allowed {
		return false
	}
	hd := w.Header()
	if star {
		hd.Set("Access-Control-Allow-Origin", "*")
	} else {
		// With credentials the origin must be named, never "*" (the
		// development mode names whichever origin asks).
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		hd.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, QUERY")
		hd.Set("Access-Control-Allow-Headers", "authorization, cache-control, last-event-id, content-type")
		hd.Set("Access-Control-Max-Age", "3600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	hd.Set("Access-Control-Expose-Headers", "Link, Last-Event-ID, Mercure-Last-Event-ID, ETag")
	return false
}

// servesMetadata reports whether the hub serves RFC 9728 metadata: only
// when it has keys (docs/protocol.md#metadata).
func (h *Hub) servesMetadata() bool {
	return h.cfg.PublisherVerifier != nil || h.cfg.SubscriberVerifier != nil
}

// serveMetadata serves the RFC 9728 protected-resource metadata
// (docs/protocol.md#metadata). A hub without keys (purely anonymous) serves
// none.
func (h *Hub) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if !h.servesMetadata() {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.writeError(w, r, gen08, &httpError{status: http.StatusMethodNotAllowed, msg: "method not allowed"})
		return
	}
	md := map[string]any{
		"resource":                              h.resourceID(r),
		"authorization_details_types_supported": []string{token.DetailType},
		"bearer_methods_supported":              []string{"header"},
		"mercure_cookie":                        cookie08,
		"mercure_matcher_types_supported":       []string{match.TypeExact, match.TypeURLPattern},
		"mercure_subscriptions":                 h.cfg.Subscriptions,
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(md)
}

// Shutdown ends every open subscription promptly (their handlers return,
// parked streams end with the last chunk and close), so that
// http.Server.Shutdown does not wait on them, and refuses new
// subscriptions and publishes. In-flight publishes finish. It returns once
// every stream has ended, or when ctx ends.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.endStreams()
	select {
	case <-h.streams.close():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the hub's background goroutines (after ending streams as
// Shutdown does). It does not close the store.
func (h *Hub) Close() error {
	h.endStreams()
	h.stopOnce.Do(func() { close(h.stopped) })
	h.wg.Wait()
	h.park.close()
	return nil
}

// endStreams tells every stream to end.
func (h *Hub) endStreams() {
	h.closeOnce.Do(func() { close(h.done) })
	h.park.endAll()
}

// Parking reports whether the hub parks idle plain HTTP/1.1 streams (on
// Linux, with Config.ParkIdle): it says which path such streams
// take. TLS and HTTP/2 streams always keep a goroutine each.
func (h *Hub) Parking() bool { return h.park != nil }

// Gatherer returns the hub's private Prometheus registry, for a /metrics endpoint.
func (h *Hub) Gatherer() prometheus.Gatherer { return h.metrics.reg }

// Subscribers returns the number of open subscriptions.
func (h *Hub) Subscribers() int { return h.bc.count() }
