package hub

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/match"
)

// broadcaster is the fan-out: it routes every update that the store delivers
// to the queues of the subscribers that match it and may see it.
//
// Cost per update: subscribers are grouped by distinct selector in a
// match.Index, which finds exact selectors by topic, never evaluates "*",
// and evaluates only the templates and URL patterns whose literal prefix the
// topic starts with, once per distinct selector whatever the number of
// subscribers sharing it. So a publish costs in proportion to the
// subscribers that receive it plus the length of its topics. Nothing blocks:
// a full queue marks its subscriber as lagging, and that subscriber's own
// goroutine catches up from the store.
type broadcaster struct {
	cache *match.Cache

	// mu guards the index and the groups. dispatch holds it for reading
	// (dispatch is serial by the store's contract, which is what the index's
	// Match needs); add/remove hold it for writing, which makes "register,
	// then read last" atomic with respect to dispatch.
	mu  sync.RWMutex
	idx *match.Index[*selGroup]
	all map[*subscriber]struct{}
	// allPeak is the size of all when it was last made: a Go map keeps the
	// memory of its peak size, so it is remade once it shrinks to a quarter.
	allPeak int

	// last and lastID describe the newest update fully dispatched. They are
	// written by dispatch only.
	last   atomic.Uint64
	lastID atomic.Pointer[string]
}

// selGroup is the subscribers that use one distinct selector.
type selGroup struct {
	subs []*subscriber
}

func newBroadcaster(cache *match.Cache) *broadcaster {
	return &broadcaster{
		cache: cache,
		idx:   match.NewIndex[*selGroup](cache),
		all:   make(map[*subscriber]struct{}),
	}
}

// resumeTimeout bounds the read of the newest stored update at start-up.
const resumeTimeout = 10 * time.Second

// resume starts the broadcaster where store's history ends, before any
// dispatch: last is the newest stored update, and lastID its id, so that
// the response cursor of a subscription that sends an empty cursor names
// that update right after a restart too (not "earliest", which would make
// a client that resumes from it receive the whole history again).
func (b *broadcaster) resume(store history.Store) error {
	last := store.LastSeq()
	b.last.Store(last)
	if last == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), resumeTimeout)
	defer cancel()
	err := store.Scan(ctx, last-1, last, func(u *history.Update) error {
		id := u.ID
		b.lastID.Store(&id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the newest stored update: %w", err)
	}
	return nil
}

// add registers s and returns the Seq and id of the newest update it will
// not get live: history up to and including it is for replay.
func (b *broadcaster) add(s *subscriber) (uint64, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, sel := range s.selectors {
		g, ok := b.idx.Get(sel)
		if !ok {
			g = &selGroup{}
			b.idx.Put(sel, g)
		}
		if n := len(g.subs); n > 0 && g.subs[n-1] == s {
			continue // a selector s repeats
		}
		g.subs = append(g.subs, s)
	}
	b.all[s] = struct{}{}
	b.allPeak = max(b.allPeak, len(b.all))
	id := ""
	if p := b.lastID.Load(); p != nil {
		id = *p
	}
	return b.last.Load(), id
}

// remove unregisters s.
func (b *broadcaster) remove(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, sel := range s.selectors {
		g, ok := b.idx.Get(sel)
		if !ok {
			continue
		}
		i := slices.Index(g.subs, s)
		if i < 0 {
			continue // a selector s repeats, already removed
		}
		last := len(g.subs) - 1
		g.subs[i] = g.subs[last]
		g.subs[last] = nil
		g.subs = g.subs[:last]
		switch {
		case last == 0:
			b.idx.Delete(sel)
		case cap(g.subs) >= 64 && last <= cap(g.subs)/4:
			g.subs = slices.Clip(slices.Clone(g.subs)) // give back the memory of a group that shrank
		}
	}
	delete(b.all, s)
	if b.allPeak >= 64 && len(b.all) <= b.allPeak/4 {
		b.all = shrinkMap(b.all)
		b.allPeak = len(b.all)
	}
}

// resync empties s's queue and returns the newest dispatched Seq: s then
// reads the range it missed from the store, atomically with respect to
// dispatch, so nothing is lost or doubled.
func (b *broadcaster) resync(s *subscriber) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	s.mu.Lock()
	clear(s.queue)
	s.queue = s.queue[:0]
	s.lagging = false
	s.mu.Unlock()
	return b.last.Load()
}

// count returns the number of registered subscribers.
func (b *broadcaster) count() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.all)
}

// dispatch is the store's sink.
func (b *broadcaster) dispatch(u *history.Update) {
	// The wire form is encoded once, and only if some subscriber gets it:
	// updates on topics nobody follows cost no encoding.
	q := queued{u: u}
	b.mu.RLock()
	b.idx.Match(u.Topics, func(g *selGroup) {
		for _, s := range g.subs {
			b.deliver(s, &q)
		}
	})
	b.lastID.Store(&u.ID) // updates are read-only once dispatched
	b.last.Store(u.Seq)
	b.mu.RUnlock()
}

func (b *broadcaster) deliver(s *subscriber, q *queued) {
	if s.stamp == q.u.Seq {
		return // already reached through another topic
	}
	s.stamp = q.u.Seq
	if q.u.Private && !s.authorizedDispatch(b.cache, q.u) {
		return
	}
	if q.ev == nil {
		q.ev = encodeUpdate(nil, q.u)
	}
	s.push(*q)
}

// sweep signals subscribers whose heartbeat is due or whose deadline comes
// within one tick. One pass over all subscribers per tick replaces a timer
// per connection.
func (b *broadcaster) sweep(now time.Time, heartbeat, tick time.Duration) {
	nowNano := now.UnixNano()
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.all {
		var f uint32
		if heartbeat > 0 && nowNano-s.lastWrite.Load() >= int64(heartbeat) {
			f |= flagHeartbeat
		}
		if !s.deadline.IsZero() && !now.Add(tick).Before(s.deadline) {
			f |= flagExpire
		}
		if f != 0 {
			s.signal(f)
		}
	}
}
