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
// Cost per update: subscribers with an exact selector are found through an
// index by topic, so a publish costs in proportion to the subscribers that
// match, plus one (cached) match per subscriber that uses a template, a URL
// pattern or "*". Nothing blocks: a full queue marks its subscriber as
// lagging, and that subscriber's own goroutine catches up from the store.
type broadcaster struct {
	cache *match.Cache

	// mu guards the indexes. dispatch holds it for reading (dispatch is
	// serial by the store's contract); add/remove hold it for writing, which
	// makes "register, then read last" atomic with respect to dispatch.
	mu    sync.RWMutex
	exact map[string][]*subscriber
	wild  []*subscriber
	all   map[*subscriber]struct{}

	// last and lastID describe the newest update fully dispatched. They are
	// written by dispatch only.
	last   atomic.Uint64
	lastID atomic.Pointer[string]
}

func newBroadcaster(cache *match.Cache) *broadcaster {
	return &broadcaster{
		cache: cache,
		exact: make(map[string][]*subscriber),
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
	for _, t := range s.exact {
		b.exact[t] = append(b.exact[t], s)
	}
	if len(s.wild) > 0 {
		b.wild = append(b.wild, s)
	}
	b.all[s] = struct{}{}
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
	for _, t := range s.exact {
		list := b.exact[t]
		if i := slices.Index(list, s); i >= 0 {
			list = slices.Delete(list, i, i+1)
		}
		if len(list) == 0 {
			delete(b.exact, t)
		} else {
			b.exact[t] = list
		}
	}
	if len(s.wild) > 0 {
		if i := slices.Index(b.wild, s); i >= 0 {
			b.wild = slices.Delete(b.wild, i, i+1)
		}
	}
	delete(b.all, s)
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
	for _, t := range u.Topics {
		for _, s := range b.exact[t] {
			b.deliver(s, &q)
		}
	}
	for _, s := range b.wild {
		if s.stamp != u.Seq && s.matchesWild(b.cache, u) {
			b.deliver(s, &q)
		}
	}
	b.lastID.Store(&u.ID) // updates are read-only once dispatched
	b.last.Store(u.Seq)
	b.mu.RUnlock()
}

func (b *broadcaster) deliver(s *subscriber, q *queued) {
	if s.stamp == q.u.Seq {
		return // already reached through another topic
	}
	s.stamp = q.u.Seq
	if q.u.Private && !s.authorized(b.cache, q.u) {
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
