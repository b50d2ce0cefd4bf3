package hub

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Request logging. Every request gets one line at info when
// Config.AccessLog is set: method, path (never the query, which may carry a
// draft-07 token), status, duration, client address and protocol
// generation; the reason of an error reply; for a publish the update id and
// topic count (never the data); for a subscription its id, selector count,
// lifetime and why it ended, written when it ends. Without the access log,
// refusals (401, 403 and the other authorization failures) still get their
// line, so that the operator can always see why a client was turned away.

// goneReason is why a subscription ended, as its log line says.
type goneReason uint32

const (
	goneUnknown goneReason = iota
	// goneClient: the client closed the connection (or it broke).
	goneClient
	// goneWriteTimeout: the subscription reached Config.WriteTimeout.
	goneWriteTimeout
	// goneTokenExpired: the subscriber's token expired.
	goneTokenExpired
	// goneSlowReader: one write waited longer than Config.DispatchTimeout.
	goneSlowReader
	// goneShutdown: the hub shut down.
	goneShutdown
	// goneStoreError: the history store failed during a replay.
	goneStoreError
)

func (g goneReason) String() string {
	switch g {
	case goneClient:
		return "client gone"
	case goneWriteTimeout:
		return "write timeout"
	case goneTokenExpired:
		return "token expired"
	case goneSlowReader:
		return "slow reader"
	case goneShutdown:
		return "shutdown"
	case goneStoreError:
		return "store error"
	}
	return "unknown"
}

// end records why s ended; the first reason wins, so that the cause (a
// deadline, a shutdown) is not overwritten by its consequence (a failed
// write on the closed connection).
func (s *subscriber) end(r goneReason) {
	s.gone.CompareAndSwap(uint32(goneUnknown), uint32(r))
}

// writeGone classifies a failed write to a subscriber: a write that hit the
// dispatch timeout is a slow reader, anything else a client that left.
func writeGone(err error) goneReason {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return goneSlowReader
	}
	return goneClient
}

// requestLog is what the log line of one request says. Handlers fill it in
// as they learn things, through recordOf.
type requestLog struct {
	r      *http.Request
	start  time.Time
	status int
	gen    generation
	reason string // why an error reply was sent
	// A publish's update.
	updateID string
	topics   int
	// sub is set once a subscription is registered: its line is written
	// when it ends (release), not when the handler returns.
	sub *subscriber
}

// logWriter records the status of a reply. It unwraps to the original
// writer, so that http.ResponseController (flush, deadlines, hijacking)
// works through it.
type logWriter struct {
	http.ResponseWriter
	rec requestLog
}

func (w *logWriter) WriteHeader(code int) {
	if w.rec.status == 0 {
		w.rec.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(b []byte) (int, error) {
	if w.rec.status == 0 {
		w.rec.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap is for http.ResponseController.
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher for handlers that ask for it directly.
func (w *logWriter) Flush() { _ = w.FlushError() }

// FlushError flushes and says whether it worked (http.ResponseController
// prefers it to Flush).
func (w *logWriter) FlushError() error {
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// recordOf returns the log record of the request that w answers, or nil.
func recordOf(w http.ResponseWriter) *requestLog {
	if lw, ok := w.(*logWriter); ok {
		return &lw.rec
	}
	return nil
}

// refusal reports whether a reply refuses the request's credentials or
// origin: those are logged even without the access log.
func refusal(status int, reason string) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden ||
		strings.HasPrefix(reason, "malformed Authorization") || strings.HasPrefix(reason, "cookie authorization refused")
}

// logRequest writes the line of a request whose handler returned, unless it
// is a subscription, whose line comes when it ends.
func (h *Hub) logRequest(rec *requestLog) {
	if rec.sub != nil {
		return
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	switch {
	case h.cfg.AccessLog:
		h.writeLogLine(rec, "request", h.now().Sub(rec.start), nil)
	case refusal(rec.status, rec.reason):
		h.writeLogLine(rec, "request refused", h.now().Sub(rec.start), nil)
	}
}

// logSubscription writes the line of a subscription that ended.
func (h *Hub) logSubscription(rec *requestLog, s *subscriber) {
	if !h.cfg.AccessLog {
		return
	}
	gone := goneReason(s.gone.Load())
	if gone == goneUnknown {
		// Nothing recorded a cause: the handler returned because the
		// connection ended, which is the client's doing.
		gone = goneClient
	}
	h.writeLogLine(rec, "request", h.now().Sub(rec.start), []slog.Attr{
		slog.String("subscriber", s.id),
		slog.Int("selectors", len(s.selectors)),
		slog.String("end", gone.String()),
	})
}

func (h *Hub) writeLogLine(rec *requestLog, msg string, d time.Duration, extra []slog.Attr) {
	ctx := context.Background()
	if !h.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	r := rec.r
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs,
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", rec.status),
		slog.String("duration", roundDuration(d).String()),
		slog.String("remote", h.clientAddr(r)),
	)
	switch rec.gen {
	case gen07:
		attrs = append(attrs, slog.String("protocol", "draft-07"))
	case gen08:
		attrs = append(attrs, slog.String("protocol", "draft-08"))
	}
	if rec.updateID != "" {
		attrs = append(attrs, slog.String("update", rec.updateID), slog.Int("topics", rec.topics))
	}
	attrs = append(attrs, extra...)
	if rec.reason != "" {
		attrs = append(attrs, slog.String("reason", rec.reason))
	}
	h.log.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
}

// roundDuration keeps three significant digits or so: 1.234ms, 12.3s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond / 10)
	case d < time.Second:
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// maxForwardedHops bounds the X-Forwarded-For entries looked at.
const maxForwardedHops = 32

// clientAddr is the client's address as the log says it: the connection's
// peer, or, when that peer is a trusted proxy, the nearest address in
// X-Forwarded-For that is not a trusted proxy (read from the right, since
// the left part is whatever the client sent).
func (h *Hub) clientAddr(r *http.Request) string {
	peer, ok := peerAddr(r)
	if !ok {
		return r.RemoteAddr
	}
	if !h.trustedProxy(peer) {
		return peer.String()
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		for part := range strings.SplitSeq(v, ",") {
			hops = append(hops, strings.TrimSpace(part))
		}
	}
	client := peer
	for i, n := len(hops)-1, 0; i >= 0 && n < maxForwardedHops; i, n = i-1, n+1 {
		a, ok := parseHop(hops[i])
		if !ok {
			break
		}
		client = a
		if !h.trustedProxy(a) {
			break
		}
	}
	return client.String()
}

// forwardedProto is the scheme a trusted proxy says the client used ("" when
// the peer is not trusted or says nothing usable).
func (h *Hub) forwardedProto(r *http.Request) string {
	if len(h.cfg.TrustedProxies) == 0 {
		return ""
	}
	peer, ok := peerAddr(r)
	if !ok || !h.trustedProxy(peer) {
		return ""
	}
	p := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")))
	if p == "http" || p == "https" {
		return p
	}
	return ""
}

func (h *Hub) trustedProxy(a netip.Addr) bool {
	for _, p := range h.cfg.TrustedProxies {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// peerAddr is the address of the connection's peer.
func peerAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		a, err := netip.ParseAddr(r.RemoteAddr)
		return a, err == nil
	}
	return ap.Addr().Unmap(), true
}

// parseHop reads one X-Forwarded-For entry: an address, possibly with a
// port or in brackets.
func parseHop(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
