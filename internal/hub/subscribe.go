package hub

import (
	"cmp"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/match"
	"github.com/mercurectl/mercurectl/internal/sse"
	"github.com/mercurectl/mercurectl/internal/token"
)

// Subscription limits: the protocol's (docs/protocol.md#subscribe-topic and
// #subscribe-match) and the per-request budget that bounds what one request
// can cost the hub (docs/protocol.md#subscription-budget).
const (
	maxTopics07    = 1000
	maxMatchers08  = 100
	maxMatcherSize = MaxTopicLength
	// maxPatterns caps the URI templates or URL patterns of one request:
	// unlike exact topics, each distinct one may be evaluated for every
	// publish whose topic starts with its literal prefix.
	maxPatterns = 100
	// maxTemplateExpressions caps the expressions of one URI template; a
	// template's match costs up to its expressions times the topic length.
	maxTemplateExpressions = 32
	// maxGeneralPatternBytes caps the URL patterns of one request that need
	// the general URL Pattern matcher (match.GeneralURLPattern), whose
	// compilation costs time and memory that grow with the square of the
	// pattern's length: about 3 ms and 2.5 MiB allocated for a 2 KiB
	// pattern, 12-25 ms and 10 MiB for a 4 KiB one.
	maxGeneralPatternBytes = 2048
	// flushSize is how much replayed data is buffered before a write.
	flushSize = 32 << 10
)

// subscribeRequest is a parsed subscription.
type subscribeRequest struct {
	gen       generation
	raw       []rawSelector
	cursor    string
	hasCursor bool
}

type rawSelector struct{ typ, value string }

// parseSubscribe reads the selectors and the cursor of a subscription from
// the query (and, for QUERY, the form body), deciding its generation.
func (h *Hub) parseSubscribe(r *http.Request) (*subscribeRequest, error) {
	f := form(parseForm(r.URL.RawQuery, nil))
	if r.Method == methodQuery && r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.MaxBodySize+1))
		if err != nil {
			return nil, errBadRequest("cannot read the request body")
		}
		if int64(len(body)) > h.cfg.MaxBodySize {
			return nil, &httpError{status: http.StatusRequestEntityTooLarge, msg: "request body too large"}
		}
		f = parseForm(string(body), f)
	}
	req := &subscribeRequest{}
	var topics, matchers int
	for _, kv := range f {
		lower := strings.ToLower(kv.name)
		switch {
		case kv.name == "topic":
			topics++
			req.raw = append(req.raw, rawSelector{"", kv.value})
		case strings.HasPrefix(lower, "match"):
			var typ string
			switch kv.name {
			case "match", "match_exact":
				typ = match.TypeExact
			case "match_urlpattern":
				typ = match.TypeURLPattern
			default:
				return nil, errBadRequest("unsupported matcher parameter %q: use match, match_exact or match_urlpattern", kv.name)
			}
			matchers++
			req.raw = append(req.raw, rawSelector{typ, kv.value})
		}
	}
	switch {
	case topics > 0 && matchers > 0:
		return nil, errBadRequest(`cannot mix "topic" (draft-07) and "match" (draft-08) parameters`)
	case topics > 0 && h.cfg.Draft08Only:
		return nil, errBadRequest(`"topic" is a draft-07 parameter and this hub serves draft-08 only: use "match" (exact) or "match_urlpattern"`)
	case topics > 0:
		req.gen = gen07
		if topics > maxTopics07 {
			return nil, errBadRequest(`too many "topic" parameters (at most %d)`, maxTopics07)
		}
		// The same cap as draft-08 matchers: each selector is matched
		// against every update and copied into its subscription events.
		for _, s := range req.raw {
			if len(s.value) > maxMatcherSize {
				return nil, errBadRequest("topic selector too long (at most %d bytes)", maxMatcherSize)
			}
		}
		if err := h.checkBudget07(req.raw); err != nil {
			return nil, err
		}
		req.cursor, req.hasCursor = f.first("lastEventID")
	case matchers > 0:
		req.gen = gen08
		if matchers > maxMatchers08 {
			return nil, errBadRequest("too many matchers (at most %d)", maxMatchers08)
		}
		for _, s := range req.raw {
			if len(s.value) > maxMatcherSize {
				return nil, errBadRequest("matcher too long (at most %d bytes)", maxMatcherSize)
			}
			if match.HasControlOrFormat(s.value) {
				return nil, errBadRequest("matcher contains a control or format character")
			}
		}
		if err := h.checkBudget08(req.raw, h.hubURL(r)); err != nil {
			return nil, err
		}
		req.cursor, req.hasCursor = f.first("last_event_id")
	default:
		return nil, errBadRequest(`missing "match" subscription parameter (draft-07 clients: "topic")`)
	}
	if v := r.Header.Values("Last-Event-ID"); len(v) > 0 {
		req.cursor, req.hasCursor = v[0], true
	}
	return req, nil
}

// checkBudget07 applies the per-request budget to draft-07 selectors.
func (h *Hub) checkBudget07(raw []rawSelector) error {
	if err := h.checkSelectorBytes(raw); err != nil {
		return err
	}
	templates := 0
	for _, s := range raw {
		n := match.TemplateExpressions(s.value)
		if n == 0 {
			continue
		}
		if n > maxTemplateExpressions {
			return errBadRequest("URI template too complex: %d expressions, at most %d per template", n, maxTemplateExpressions)
		}
		if templates++; templates > maxPatterns {
			return errBadRequest("too many URI templates: at most %d per subscription request (exact topics do not count)", maxPatterns)
		}
	}
	return nil
}

// checkBudget08 applies the per-request budget to draft-08 matchers.
func (h *Hub) checkBudget08(raw []rawSelector, base *url.URL) error {
	if err := h.checkSelectorBytes(raw); err != nil {
		return err
	}
	patterns, general := 0, 0
	for _, s := range raw {
		if s.typ != match.TypeURLPattern || s.value == "*" {
			continue
		}
		if patterns++; patterns > maxPatterns {
			return errBadRequest("too many URL patterns: at most %d per subscription request (exact matchers do not count)", maxPatterns)
		}
		if match.GeneralURLPattern(s.value, base) {
			if general += len(s.value); general > maxGeneralPatternBytes {
				return errBadRequest("URL patterns too complex: %d bytes of patterns beyond literal segments, :name segments and a final /* (regexp or {} groups, modifiers, wildcards outside the path...), at most %d bytes per subscription request", general, maxGeneralPatternBytes)
			}
		}
	}
	return nil
}

// checkSelectorBytes caps the total size of one request's selectors.
func (h *Hub) checkSelectorBytes(raw []rawSelector) error {
	total := 0
	for _, s := range raw {
		total += len(s.value)
	}
	if limit := h.cfg.MaxSelectorBytes; total > limit {
		return errBadRequest("selectors too long: %d bytes in all, at most %d bytes per subscription request", total, limit)
	}
	return nil
}

// serveSubscribe handles GET, HEAD and QUERY on the hub path.
func (h *Hub) serveSubscribe(w http.ResponseWriter, r *http.Request) {
	// The cap is checked first: a flood of subscriptions must cost the hub
	// as little as possible, and leave descriptors for publishers. Once
	// the subscriber is registered, its place is given back by release,
	// whichever path (parked or not) ends its stream.
	if !h.admission.admit(h.cfg.MaxSubscribers) {
		h.refuseFull(w, r, genUnknown)
		return
	}
	admitted := true
	defer func() {
		if admitted {
			h.admission.release()
		}
	}()
	req, err := h.parseSubscribe(r)
	if err != nil {
		h.writeError(w, r, genUnknown, err)
		return
	}
	s, err := h.newSubscription(r, req)
	if err != nil {
		h.writeError(w, r, req.gen, err)
		return
	}
	parked := false // then the parker releases s
	defer func() {
		if !parked {
			h.releaseSubscriber(s) // runs last, once s is out of the broadcaster
		}
	}()

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "private, no-cache, no-store, must-revalidate, max-age=0")
	switch {
	case h.park.parkable(r):
		// A parked stream ends with its connection: net/http no longer
		// owns it and cannot read a next request from it. Without this a
		// client would put the connection back in its idle pool after a
		// clean end, and its next request on it would fail ("server
		// closed idle connection").
		hd.Set("Connection", "close")
	case r.ProtoMajor == 1:
		hd.Set("Connection", "keep-alive")
	}
	hd.Set("Pragma", "no-cache")
	hd.Set("Expire", "0") // sic: what the reference hub and its clients use
	hd.Set("X-Accel-Buffering", "no")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}

	if !h.streams.add() {
		h.writeError(w, r, req.gen, errShuttingDown)
		return
	}
	if rec := recordOf(w); rec != nil {
		// From here the request's line is the subscription's, written by
		// release when it ends.
		rec.gen, rec.sub, rec.status = req.gen, s, http.StatusOK
		s.rec = rec
	}
	until, untilID := h.bc.add(s)
	admitted = false // release gives the place back
	h.subscribed(s)
	defer func() {
		if !parked {
			h.release(s)
		}
	}()

	// Resolve the cursor (docs/protocol.md#subscribe-cursors). An unknown or evicted
	// id replays everything retained, and the response cursor "earliest"
	// tells the client that its cursor was not found: nothing is skipped
	// silently.
	var after uint64
	replay := false
	respCursor := ""
	if req.hasCursor {
		switch req.cursor {
		case "":
			respCursor = cmp.Or(untilID, "earliest")
		case "earliest":
			replay, respCursor = true, "earliest"
		default:
			var seq uint64
			var found bool
			var err error
			if len(req.cursor) <= MaxIDLength { // a longer one names no update
				seq, found, err = h.cfg.Store.Lookup(r.Context(), req.cursor)
			}
			if err != nil {
				s.end(goneStoreError)
				h.writeError(w, r, req.gen, storeError(err))
				return
			}
			replay = true
			if found {
				after, respCursor = seq, req.cursor
			} else {
				respCursor = "earliest"
			}
		}
		if replay {
			hd.Set(sse.ReplayMarkerHeader, "1")
		}
		if req.gen == gen08 {
			hd.Set("Mercure-Last-Event-ID", respCursor)
		} else {
			hd.Set("Last-Event-ID", respCursor)
		}
	}

	c := &conn{h: h, s: s, w: w, rc: http.NewResponseController(w), ctx: r.Context()}
	// The subscription is live from here: flush the headers at once.
	c.buf = append(c.buf, ":\n"...)
	if err := c.flush(); err != nil {
		return
	}
	// In a cluster, the cursor may name an update that this node's reader
	// has not delivered yet (after > until): the client already has
	// everything up to it, so live delivery starts after it.
	lastSent := max(until, after)
	if replay {
		if err := c.catchUp(after, until); err != nil {
			c.endedBy(err)
			h.log.Debug("replay ended", "subscriber", s.id, "error", err)
			return
		}
		c.buf = sse.AppendComment(c.buf, sse.ReplayDoneComment)
		if err := c.flush(); err != nil {
			return
		}
	}
	// Idle from here on: on Linux a plain HTTP/1.1 stream is parked, and
	// this goroutine ends (park_linux.go); the parker releases s.
	if h.park.park(c, r, lastSent) {
		parked = true
		return
	}
	c.live(lastSent)
	c.end()
}

// release unregisters s once its stream has ended, publishes its closing
// subscription events, writes its log line, and lets Shutdown know.
func (h *Hub) release(s *subscriber) {
	h.bc.remove(s)
	h.unsubscribed(s)
	if s.rec != nil {
		h.logSubscription(s.rec, s)
	}
	h.streams.done()
	h.admission.release()
}

// newSubscription authenticates the request and builds its subscriber.
func (h *Hub) newSubscription(r *http.Request, req *subscribeRequest) (*subscriber, error) {
	// Checked here too, so that HEAD (which never registers) also says that
	// the hub is going away.
	select {
	case <-h.done:
		return nil, errShuttingDown
	default:
	}
	p, err := extractToken(r, h.tokenGen(req.gen))
	if err != nil {
		return nil, err
	}
	var claims *token.Claims
	switch {
	case p.raw != "" && h.cfg.SubscriberVerifier == nil:
		return nil, errNoSubscriberKey
	case p.raw != "":
		claims, err = h.verify(r, h.cfg.SubscriberVerifier, p)
		if err != nil {
			return nil, err
		}
		if req.gen == gen08 && claims.Format != token.FormatAccessToken {
			return nil, errInvalidToken(errors.New("draft-08 subscriptions need an access token (typ at+jwt)"))
		}
	case !h.cfg.Anonymous:
		return nil, errNoTokenAnonymousOff
	}

	s := newSubscriber(h.cfg.QueueSize)
	s.id = newSubscriberID()
	s.gen = req.gen
	s.claims = claims
	base := h.hubURL(r)
	s.selectors = make([]*match.Selector, 0, len(req.raw))
	for _, rs := range req.raw {
		var sel *match.Selector
		if req.gen == gen07 {
			sel = h.selectors.get07(rs.value)
		} else {
			sel, err = h.selectors.get08(rs.typ, rs.value, base)
			if err != nil {
				h.releaseSubscriber(s)
				return nil, errBadRequest("invalid matcher")
			}
		}
		s.selectors = append(s.selectors, sel)
	}
	if claims != nil {
		s.grants = h.selectors.acquireGrants(claims.Subscribe, base)
	}
	if h.cfg.Subscriptions {
		s.subs = h.describeSubscriptions(s, base)
	}

	now := h.now()
	var deadline time.Time
	if h.cfg.WriteTimeout > 0 {
		// Randomised to 80-100% so that clients do not all come back at once.
		d := h.cfg.WriteTimeout - time.Duration(rand.Int64N(int64(h.cfg.WriteTimeout)/5+1))
		deadline = now.Add(d)
	}
	if claims != nil && !claims.Expiry.IsZero() {
		// exp is an instant on the verifier's clock: the stream lives as
		// long as the token has left by that clock.
		exp := now.Add(claims.Expiry.Sub(h.cfg.SubscriberVerifier.Now()))
		if deadline.IsZero() || exp.Before(deadline) {
			deadline = exp
			s.expiry = true
		}
	}
	s.deadline = deadline
	s.lastWrite.Store(now.UnixNano())
	return s, nil
}

// releaseSubscriber gives back the shared selectors and grants of s, once
// it is out of the broadcaster (or was never in it).
func (h *Hub) releaseSubscriber(s *subscriber) {
	h.selectors.release(s.selectors...)
	h.selectors.releaseGrants(s.grants)
	s.selectors, s.grants = nil, nil
}

// compileGrants compiles a token's topic selectors; give them back with
// h.selectors.release once done.
func (h *Hub) compileGrants(sels []token.Selector, base *url.URL) []*match.Selector {
	return h.selectors.compile(sels, base)
}

// conn writes one subscription's stream.
type conn struct {
	h   *Hub
	s   *subscriber
	w   http.ResponseWriter
	rc  *http.ResponseController
	ctx context.Context
	buf []byte
	// nc, when set, is the connection taken over from net/http (for
	// parking): writes go to it as chunks of the response body.
	nc net.Conn
	// failed is set once a write failed: the stream is then cut, not ended.
	failed bool
}

// bufPool holds the write buffers of streams, shared by the portable and the
// parked paths. Every buffer in it has at least bufPoolSize bytes of
// capacity: a parked write slices room for the chunk header out of it.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, bufPoolSize); return &b }}

const bufPoolSize = 16 << 10

// flush writes the buffer under the dispatch timeout.
func (c *conn) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	var err error
	if c.nc != nil {
		err = writeChunk(c.nc, c.buf, c.h.cfg.DispatchTimeout)
	} else {
		if c.h.cfg.DispatchTimeout > 0 {
			_ = c.rc.SetWriteDeadline(c.h.now().Add(c.h.cfg.DispatchTimeout))
		}
		_, err = c.w.Write(c.buf)
		if err == nil {
			err = c.rc.Flush()
		}
	}
	c.buf = c.buf[:0]
	c.s.lastWrite.Store(c.h.now().UnixNano())
	if err != nil {
		c.failed = true
		c.s.end(writeGone(err))
	}
	return err
}

// endedBy records why a replay stopped with err: the client leaving, else
// (a failed write has recorded its own reason) the store failing.
func (c *conn) endedBy(err error) {
	if c.ctx.Err() != nil || errors.Is(err, context.Canceled) {
		c.s.end(goneClient)
		return
	}
	c.s.end(goneStoreError)
}

// end finishes a stream that the hub writes itself (nc set) as net/http
// does when a handler returns: the last chunk, unless a write failed, then
// the connection closes. On the net/http path there is nothing to do.
func (c *conn) end() {
	if c.nc == nil {
		return
	}
	if !c.failed {
		_ = writeRaw(c.nc, chunkEnd, c.h.cfg.DispatchTimeout)
	}
	_ = c.nc.Close()
}

// catchUp streams the stored updates in (after, until] that s may see.
func (c *conn) catchUp(after, until uint64) error {
	if after >= until {
		return nil
	}
	var writeErr error
	err := c.h.cfg.Store.Scan(c.ctx, after, until, func(u *history.Update) error {
		if c.s.canSee(c.h.cache, u) {
			c.buf = encodeUpdate(c.buf, u)
			if len(c.buf) >= flushSize {
				writeErr = c.flush()
				return writeErr
			}
		}
		return nil
	})
	if err != nil && writeErr == nil && c.ctx.Err() == nil && !errors.Is(err, history.ErrClosed) {
		// The store failed (a damaged file, a backend that went away): the
		// operator must hear of it, and the client gets what was read so
		// far and a normal end of stream, from which it resumes.
		c.h.log.Error("replay stopped: the history store failed", "subscriber", c.s.id, "error", err)
		_ = c.flush()
	}
	return err
}

// live forwards queued updates until the client leaves, the hub shuts down,
// or the subscription's deadline comes.
func (c *conn) live(lastSent uint64) {
	var spare []queued
	for {
		select {
		case <-c.s.notify:
		case <-c.ctx.Done():
			c.s.end(goneClient)
			return
		case <-c.h.done:
			c.s.end(goneShutdown)
			return
		}
		batch, lagging, flags := c.s.take(spare)
		if flags&flagExpire != 0 {
			c.s.end(c.s.deadlineReason())
			return
		}
		if lagging {
			// Too slow for the live queue: read what was missed from the
			// store instead, then go live again.
			c.h.metrics.lagging.Inc()
			until := c.h.bc.resync(c.s)
			if err := c.catchUp(lastSent, until); err != nil {
				c.endedBy(err)
				c.dropped(err)
				return
			}
			lastSent = max(lastSent, until)
			batch = batch[:0]
		}
		if len(batch) > 0 && c.buf == nil {
			c.buf = (*bufPool.Get().(*[]byte))[:0]
		}
		for _, q := range batch {
			if q.u.Seq <= lastSent {
				continue
			}
			c.buf = append(c.buf, q.ev...)
			lastSent = q.u.Seq
		}
		if len(c.buf) == 0 && flags&flagHeartbeat != 0 {
			c.buf = append(c.buf, ":\n"...)
		}
		err := c.flush()
		spare = batch
		// A heartbeat alone is written from a small buffer of its own,
		// which must not enter the pool.
		if c.buf != nil && cap(c.buf) >= bufPoolSize && cap(c.buf) <= 64<<10 {
			b := c.buf[:0]
			bufPool.Put(&b)
		}
		c.buf = nil
		if err != nil {
			c.dropped(err)
			return
		}
	}
}

// dropped reports a live subscriber whose write failed while it was still
// connected as far as the hub knew: it stopped reading (the kernel buffer
// filled up and the dispatch timeout passed) or its connection broke.
// A client that left, or a hub that is stopping, is not news.
func (c *conn) dropped(err error) {
	select {
	case <-c.h.done:
		return
	default:
	}
	// A failed write cancels the request's context too, so only a
	// deadline tells a stuck reader from one that left.
	reason := "dispatch_timeout"
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		if c.ctx.Err() != nil || errors.Is(err, history.ErrClosed) {
			return
		}
		reason = "write_error"
	}
	c.h.noteDropped(c.s, reason, err)
}

// noteDropped logs, at info, and counts a subscriber cut for not reading.
func (h *Hub) noteDropped(s *subscriber, reason string, err error) {
	h.metrics.dropped.WithLabelValues(reason).Inc()
	attrs := []any{"subscriber", s.id, "reason", reason, "dispatch_timeout", h.cfg.DispatchTimeout}
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	h.log.Info("subscriber dropped: it stopped reading", attrs...)
}

// storeError maps store failures to replies.
func storeError(err error) error {
	switch {
	case errors.Is(err, history.ErrUnavailable):
		return &httpError{status: http.StatusServiceUnavailable, msg: "history store unavailable, try again"}
	case errors.Is(err, history.ErrClosed):
		return errShuttingDown
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &httpError{status: http.StatusServiceUnavailable, msg: "request cancelled"}
	}
	return err
}
