package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mercurectl/mercurectl/internal/sse"
)

// healthyConnection is how long a connection must last (when it delivers no
// event) for the backoff to start again from its base.
const healthyConnection = 10 * time.Second

// maxRetry bounds a hub's `retry` value honoured, so that a broken hub
// cannot put a subscriber to sleep for days.
const maxRetry = time.Hour

// SubscribeRequest describes a subscription.
type SubscribeRequest struct {
	// Selectors are the topics to subscribe to (see Selector). Required.
	Selectors []Selector
	// LastEventID asks for the updates after this id ("" for none, Earliest
	// for the whole history). It is sent as the query parameter of the first
	// connection (`lastEventID` in draft-07, `last_event_id` in draft-08);
	// "" is sent as an empty parameter, which asks the hub for its current
	// position without replaying anything.
	LastEventID string
	// OnEvent receives every event, in order. Required. Returning ErrStop
	// ends Subscribe with a nil error; any other error ends it with that error.
	OnEvent func(sse.Event) error
	// OnConnect, when set, is called every time the hub accepts a connection.
	OnConnect func(ConnInfo)
	// OnReplayDone, when set, is called when a mercurectl hub marks the end
	// of the replayed history (sse.ReplayDoneComment). Returning ErrStop
	// ends Subscribe with a nil error; another error ends it with that error.
	OnReplayDone func() error
	// OnDisconnect, when set, is called when a connection ended and the
	// client will reconnect after delay; err is why it ended (nil: the hub
	// closed the stream).
	OnDisconnect func(err error, delay time.Duration)
	// Reconnect makes Subscribe reconnect after the stream ends or breaks.
	// When false, Subscribe returns at the end of the first stream: nil at a
	// clean end, the error otherwise.
	Reconnect bool
	// StallTimeout, when positive, treats a connection on which nothing
	// (not even a keep-alive comment) arrived for this long as broken. Hubs
	// send keep-alives every 40s or so by default.
	StallTimeout time.Duration
	// MaxEventSize is the reader's safety limit (0: sse.DefaultMaxEventSize).
	MaxEventSize int
}

// ConnInfo describes an accepted subscription connection.
type ConnInfo struct {
	// Protocol is the generation spoken.
	Protocol Protocol
	// Reconnect is false for the first connection.
	Reconnect bool
	// RequestCursor is the cursor sent ("" for none): the query parameter on
	// the first connection, the Last-Event-ID header on the others.
	RequestCursor string
	// ResponseCursor is the hub's cursor header (`Last-Event-ID` in draft-07,
	// `Mercure-Last-Event-ID` in draft-08, docs/protocol.md#subscribe-cursors):
	// the id of the update just before the first one replayed, or Earliest.
	// Valid when HasResponseCursor.
	ResponseCursor    string
	HasResponseCursor bool
	// ReplayMarker reports that the hub promised to mark the end of the
	// replayed history in-band (sse.ReplayMarkerHeader).
	ReplayMarker bool
	// ResumeCursor is where a reconnection resumes until an event arrives:
	// RequestCursor, or, when none was sent, the hub's ResponseCursor (its
	// newest update when the connection was made). "" when the hub sent no
	// cursor: a reconnection before the first event then asks only for new
	// updates, and misses those published while the subscriber was away.
	ResumeCursor string
}

// Gap reports whether the hub's cursor shows that it does not hold the
// requested one (docs/protocol.md#subscribe-cursors): history was truncated,
// discarded or never kept, so updates may have been missed. Reference hubs
// 1.x answer Earliest for an unknown id, 0.x hubs the newest id they know;
// both differ from the request.
func (ci ConnInfo) Gap() bool {
	return ci.RequestCursor != "" && ci.RequestCursor != Earliest &&
		ci.HasResponseCursor && ci.ResponseCursor != ci.RequestCursor
}

// Subscribe opens a subscription and calls r.OnEvent for every event until
// ctx ends (returning ctx.Err()), a callback stops it, or, without
// r.Reconnect, the stream ends.
//
// If the first connection fails, Subscribe returns at once: an error wrapping
// ErrUnreachable, an *HTTPError (ErrRefused for 401 and 403),
// ErrNotEventStream, or ErrInvalidRequest for selectors the protocol cannot
// express. Once connected, with r.Reconnect, it reconnects after network
// errors, 5xx/429 answers and clean ends of the stream (a hub restart, the
// hub's connection lifetime), waiting a capped exponential backoff with
// jitter: delays in [d/2, d] with d = base·2^attempt, where base is the hub's
// `retry` when it sent one (else Options.ReconnectDelay), capped at
// Options.MaxReconnectDelay. Each reconnection sends the Last-Event-ID header
// with the last event id received (docs/protocol.md#subscribe-cursors), so
// that the hub resumes with no duplicate and no loss when it keeps history.
// Before the first event, the resume position is the hub's response cursor
// to an empty cursor (see ConnInfo.ResumeCursor): a quiet subscriber loses
// nothing either. A reconnection refused with 401 or 403 ends Subscribe with
// that error.
func (c *Client) Subscribe(ctx context.Context, r SubscribeRequest) error {
	s, err := c.newSubscription(ctx, r)
	if err != nil {
		return err
	}
	if r.OnConnect != nil {
		s.onConnect = func(ci ConnInfo) error { r.OnConnect(ci); return nil }
	}
	s.activity = r.StallTimeout
	return s.run(ctx)
}

// subscription is the state of Subscribe or Replay across connections.
type subscription struct {
	c     *Client
	req   SubscribeRequest
	proto Protocol
	sels  []Selector // resolved
	query url.Values // hub URL query plus selector parameters
	// template is the URI template that made a subscription to a draft-08
	// hub draft-07 in auto mode ("" otherwise).
	template string

	onConnect func(ConnInfo) error // may stop the subscription
	activity  time.Duration        // stall (Subscribe) or idle (Replay) timeout
	idleEnds  bool                 // an activity timeout ends cleanly (Replay)

	established bool   // a connection was accepted once
	resume      string // cursor for the next connection
	retry       uint64 // the hub's reconnection time (ms), when hasRetry
	hasRetry    bool
	events      int
	idled       bool // ended by the activity timeout (Replay)
}

func (c *Client) newSubscription(ctx context.Context, r SubscribeRequest) (*subscription, error) {
	if r.OnEvent == nil {
		return nil, fmt.Errorf("%w: no event handler", ErrInvalidRequest)
	}
	if len(r.Selectors) == 0 {
		return nil, fmt.Errorf("%w: at least one topic selector is required", ErrInvalidRequest)
	}
	proto, err := c.generation(ctx)
	if err != nil {
		return nil, err
	}
	// In auto mode a URI template, which only draft-07 has, makes the
	// subscription draft-07 (`topic=`) even with a draft-08 hub: hubs that
	// serve both generations accept it.
	template := ""
	if c.opts.Protocol == ProtocolAuto && proto == Protocol08 {
		if template, err = templateSelector(r.Selectors); err != nil {
			return nil, err
		}
		if template != "" {
			proto = Protocol07
			c.logger.DebugContext(ctx, "URI template selector: subscribing in draft-07", "selector", template)
		}
	}
	sels, err := resolveSelectors(proto, r.Selectors)
	if err != nil {
		return nil, err
	}
	q := c.hub.Query()
	selectorParams(q, proto, sels)
	return &subscription{c: c, req: r, proto: proto, sels: sels, query: q, resume: r.LastEventID, template: template}, nil
}

// errActivityTimeout ends a connection on which nothing arrived in time.
var errActivityTimeout = errors.New("no data received in time")

// transientError marks failures after which reconnecting makes sense.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// run connects and reconnects as the request says.
func (s *subscription) run(ctx context.Context) error {
	attempt := 0
	for {
		start, before := time.Now(), s.events
		connected, err := s.connect(ctx)
		if errors.Is(err, ErrStop) {
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if errors.Is(err, errActivityTimeout) && s.idleEnds {
			s.idled = true
			return nil
		}
		if connected {
			s.established = true
			if s.events > before || time.Since(start) >= healthyConnection {
				attempt = 0
			}
		}
		if !s.established || !s.req.Reconnect || !retryable(err) {
			return err
		}
		delay := s.backoff(attempt)
		attempt++
		s.c.logger.InfoContext(ctx, "subscription interrupted; reconnecting",
			"error", errString(err), "delay", delay, "last_event_id", s.resume)
		if s.req.OnDisconnect != nil {
			s.req.OnDisconnect(err, delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// retryable reports whether a connection that ended with err (nil: a clean
// end of the stream) should be retried.
func retryable(err error) bool {
	if err == nil || errors.Is(err, ErrUnreachable) {
		return true
	}
	if _, ok := errors.AsType[transientError](err); ok {
		return true
	}
	if he, ok := errors.AsType[*HTTPError](err); ok {
		switch he.StatusCode {
		case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
			return true
		}
		return he.StatusCode >= 500
	}
	return false
}

// backoff returns the delay before reconnection attempt n (0 for the first):
// equal jitter over [d/2, d], d = base·2^n capped. Keeping half of d makes
// the hub's `retry` a real lower bound (halved), while the jitter spreads the
// reconnections of many subscribers after a hub restart.
func (s *subscription) backoff(n int) time.Duration {
	base := s.c.opts.ReconnectDelay
	if s.hasRetry {
		base = time.Duration(min(s.retry, uint64(maxRetry/time.Millisecond))) * time.Millisecond
	}
	base = max(base, minReconnectDelay)
	ceiling := max(s.c.opts.MaxReconnectDelay, base)
	d := base
	for i := 0; i < n && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	half := d / 2
	return half + rand.N(d-half+1)
}

// connect runs one connection to its end. connected reports whether the hub
// accepted it (200 text/event-stream).
func (s *subscription) connect(ctx context.Context) (connected bool, err error) {
	c := s.c
	q := url.Values{}
	for k, v := range s.query {
		q[k] = v
	}
	// The cursor goes in the query on the first connection, then in the
	// Last-Event-ID header as browsers send it (docs/protocol.md#subscribe-cursors).
	// With no position yet, an empty query cursor asks the hub for its own: the
	// response cursor header then names the newest update it holds, which
	// becomes the resume position, so that an update published while a
	// subscriber that has received nothing yet reconnects is not lost.
	cursor := s.resume
	if !s.established || cursor == "" {
		q.Set(s.cursorParam(), cursor)
	}
	u := *c.hub
	u.RawQuery = q.Encode()

	tok, err := c.bearer(ctx, s.proto, ActionSubscribe, s.sels)
	if err != nil {
		return false, err
	}
	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := c.newRequest(connCtx, http.MethodGet, u.String(), nil, tok)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if s.established && cursor != "" {
		req.Header.Set(cursorHeader07, cursor)
	}
	resp, err := c.do(connCtx, req)
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		he := httpError("subscribe", resp)
		if s.template != "" && he.StatusCode == http.StatusBadRequest {
			// A hub that advertises draft-08 and refuses `topic=` serves
			// draft-08 only.
			return false, fmt.Errorf("%w: the hub serves draft-08 only (it refused %q as a draft-07 topic: %s); use the URL pattern %q instead",
				ErrTemplateSelector, s.template, he.Status, SuggestURLPattern(s.template))
		}
		return false, he
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		discard(resp.Body)
		return false, fmt.Errorf("subscribe: %w (content type %q): is %s a Mercure hub?",
			ErrNotEventStream, resp.Header.Get("Content-Type"), c.hub.Redacted())
	}
	defer func() { _ = resp.Body.Close() }()

	info := ConnInfo{Protocol: s.proto, Reconnect: s.established, RequestCursor: cursor}
	info.ResponseCursor, info.HasResponseCursor = s.responseCursor(resp.Header)
	info.ReplayMarker = resp.Header.Get(sse.ReplayMarkerHeader) != ""
	info.ResumeCursor = cursor
	if cursor == "" && info.HasResponseCursor {
		info.ResumeCursor = info.ResponseCursor
	}
	s.resume = info.ResumeCursor
	c.logger.DebugContext(ctx, "subscribed", "url", u.Redacted(), "reconnect", info.Reconnect,
		"request_cursor", cursor, "response_cursor", info.ResponseCursor, "resume_cursor", info.ResumeCursor)
	if s.onConnect != nil {
		if err := s.onConnect(info); err != nil {
			return true, err
		}
	}

	var body io.Reader = resp.Body
	var fired atomic.Bool
	if d := s.activityTimeout(info); d > 0 {
		t := time.AfterFunc(d, func() {
			fired.Store(true)
			cancel()
		})
		defer t.Stop()
		body = &activityReader{r: resp.Body, t: t, d: d}
	}

	var stopErr error
	rd := sse.NewReader(body, sse.ReaderOptions{
		MaxEventSize: s.req.MaxEventSize,
		LastEventID:  info.ResumeCursor,
		OnComment: func(text string) {
			if stopErr == nil && s.req.OnReplayDone != nil && strings.TrimSpace(text) == sse.ReplayDoneComment {
				if err := s.req.OnReplayDone(); err != nil {
					stopErr = err
					cancel() // interrupt the next read; later events are not delivered
				}
			}
		},
	})
	defer func() {
		s.resume = rd.LastEventID()
		if ms, ok := rd.Retry(); ok {
			s.retry, s.hasRetry = ms, true
		}
	}()
	for {
		ev, err := rd.Next()
		if stopErr != nil {
			return true, stopErr
		}
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return true, ctx.Err()
			case fired.Load():
				return true, transientError{fmt.Errorf("subscribe: %w for %s", errActivityTimeout, s.activityTimeout(info))}
			case errors.Is(err, io.EOF):
				return true, nil
			case errors.Is(err, sse.ErrEventTooLarge):
				return true, fmt.Errorf("subscribe: %w", err) // it would come back on every reconnection
			default:
				return true, transientError{fmt.Errorf("subscribe: read stream: %w", err)}
			}
		}
		s.events++
		if err := s.req.OnEvent(ev); err != nil {
			return true, err
		}
	}
}

// activityTimeout returns the timeout of a connection: Replay's idle timer
// (none when the hub promised the replay marker) or Subscribe's stall timer.
func (s *subscription) activityTimeout(info ConnInfo) time.Duration {
	if s.idleEnds && info.ReplayMarker {
		return 0
	}
	return s.activity
}

func (s *subscription) cursorParam() string {
	if s.proto == Protocol08 {
		return cursorParam08
	}
	return cursorParam07
}

// responseCursor returns the hub's cursor header, preferring the one of the
// generation in use.
func (s *subscription) responseCursor(h http.Header) (string, bool) {
	names := []string{cursorHeader07, cursorHeader08}
	if s.proto == Protocol08 {
		names[0], names[1] = names[1], names[0]
	}
	for _, n := range names {
		if v := h.Values(n); len(v) > 0 {
			return v[0], true
		}
	}
	return "", false
}

// activityReader restarts a timer whenever bytes arrive.
type activityReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.t.Reset(a.d)
	}
	return n, err
}

func errString(err error) string {
	if err == nil {
		return "stream ended"
	}
	return err.Error()
}
