package hub

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/match"
	"github.com/mercurectl/mercurectl/internal/sse"
	"github.com/mercurectl/mercurectl/internal/token"
)

// Signals from the sweeper to a subscriber's goroutine.
const (
	flagHeartbeat uint32 = 1 << iota
	flagExpire
)

// queued is one update waiting for a subscriber, with its wire form, which
// is encoded once per update and shared by every subscriber.
type queued struct {
	u  *history.Update
	ev []byte
}

// subscriber is one open subscription. Its state is deliberately small and
// holds no buffers while idle: the queue is empty, write buffers come from a
// pool, and heartbeats come from the hub's sweeper rather than a timer.
type subscriber struct {
	id     string // hub-assigned, unique per connection (docs/protocol.md#subscription-topics)
	gen    generation
	claims *token.Claims // nil for an anonymous subscriber

	// selectors are as requested, in order, shared with every subscription
	// that uses the same ones (each holds a reference in the hub's selector
	// registry); grants are the token's subscribe grants, for private
	// updates, shared the same way (nil without a token).
	selectors []*match.Selector
	grants    *grantSet

	// subs describes the subscriptions for events and the API, one per
	// distinct selector; set before registration, only with
	// Config.Subscriptions (docs/protocol.md#active-subscriptions).
	subs []subscription

	deadline time.Time // zero: none; set before registration, then read-only
	// expiry says that deadline is the token's expiry rather than the
	// write timeout.
	expiry bool

	// rec is the request's log record (nil without one); gone is the
	// goneReason of its end, written by whatever ends the stream.
	rec  *requestLog
	gone atomic.Uint32

	// stamp is the Seq of the last update dispatch looked at for this
	// subscriber; only the (serial) dispatch path touches it.
	stamp uint64

	lastWrite atomic.Int64 // unix nanoseconds of the last write
	notify    chan struct{}
	// parked is set once the stream is parked (park_linux.go): wake then
	// hands it to a pool writer, as no goroutine waits on notify.
	parked atomic.Pointer[parkedConn]

	mu      sync.Mutex
	queue   []queued
	limit   int
	lagging bool
	flags   uint32
}

func newSubscriber(limit int) *subscriber {
	return &subscriber{limit: limit, notify: make(chan struct{}, 1)}
}

// deadlineReason is why a subscription that reached its deadline ends.
func (s *subscriber) deadlineReason() goneReason {
	if s.expiry {
		return goneTokenExpired
	}
	return goneWriteTimeout
}

func (s *subscriber) wake() {
	if pc := s.parked.Load(); pc != nil {
		pc.wake()
		return
	}
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// push enqueues q without blocking; a full queue marks s as lagging.
func (s *subscriber) push(q queued) {
	s.mu.Lock()
	switch {
	case s.lagging:
	case len(s.queue) >= s.limit:
		s.lagging = true
		clear(s.queue)
		s.queue = s.queue[:0]
	default:
		s.queue = append(s.queue, q)
	}
	s.mu.Unlock()
	s.wake()
}

func (s *subscriber) signal(f uint32) {
	s.mu.Lock()
	s.flags |= f
	s.mu.Unlock()
	s.wake()
}

// take swaps the queue with spare (emptied) and returns the pending
// updates, whether s is lagging, and the pending signals.
func (s *subscriber) take(spare []queued) ([]queued, bool, uint32) {
	clear(spare)
	s.mu.Lock()
	q, lag, f := s.queue, s.lagging, s.flags
	s.queue, s.flags = spare[:0], 0
	s.mu.Unlock()
	return q, lag, f
}

// matches reports whether one of s's selectors matches one of u's topics.
func (s *subscriber) matches(c *match.Cache, u *history.Update) bool {
	for _, sel := range s.selectors {
		for _, t := range u.Topics {
			if c.Match(sel, t) {
				return true
			}
		}
	}
	return false
}

// authorized reports whether s may receive the private update u: some
// subscribe grant must match one of its topics
// (docs/protocol.md#private-delivery).
func (s *subscriber) authorized(c *match.Cache, u *history.Update) bool {
	return s.grants != nil && s.grants.allow(c, u)
}

// authorizedDispatch is authorized for the dispatch path, which checks each
// update against each distinct grant set once.
func (s *subscriber) authorizedDispatch(c *match.Cache, u *history.Update) bool {
	g := s.grants
	if g == nil {
		return false
	}
	if g.stamp != u.Seq {
		g.stamp, g.ok = u.Seq, g.allow(c, u)
	}
	return g.ok
}

func (g *grantSet) allow(c *match.Cache, u *history.Update) bool {
	for _, sel := range g.sels {
		for _, t := range u.Topics {
			if c.Match(sel, t) {
				return true
			}
		}
	}
	return false
}

// canSee is the full check used for replay.
func (s *subscriber) canSee(c *match.Cache, u *history.Update) bool {
	return s.matches(c, u) && (!u.Private || s.authorized(c, u))
}

// encodeUpdate appends the SSE wire form of u (docs/protocol.md#event-stream).
func encodeUpdate(dst []byte, u *history.Update) []byte {
	return sse.AppendEvent(dst, sse.Event{ID: u.ID, HasID: true, Type: u.Type, Data: u.Data, Retry: u.Retry, HasRetry: u.HasRetry})
}
