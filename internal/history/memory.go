package history

import (
	"context"
	"sync"
	"time"
)

// scanChunk is how many updates Scan copies per lock acquisition, so that a
// long replay never holds the store's lock for long.
const scanChunk = 256

// Memory is an in-process Store bounded by its Retention. It keeps nothing
// across restarts.
type Memory struct {
	retention Retention
	now       func() time.Time

	mu     sync.Mutex
	sink   Sink
	closed bool
	// buf holds the retained updates in Seq order: buf[head:] then buf[:head]
	// would be a ring; we use a simple slice with an offset that is compacted
	// when half of it is dead, which keeps Append amortised O(1).
	buf []*Update
	off int
	ids map[string]uint64 // id -> earliest retained Seq with that id
	// dups holds, for ids appended more than once, the later retained Seqs in
	// order, so that evicting the earliest one leaves the next findable
	// (docs/protocol.md#duplicate-ids).
	dups map[string][]uint64
	seq  uint64
}

// NewMemory returns an empty in-memory store. now may be nil (time.Now).
func NewMemory(r Retention, now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{retention: r, now: now, ids: make(map[string]uint64), dups: make(map[string][]uint64)}
}

// Start implements Store.
func (m *Memory) Start(sink Sink) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sink = sink
	return nil
}

// Append implements Store.
func (m *Memory) Append(ctx context.Context, u *Update) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.seq++
	u.Seq = m.seq
	if u.Time.IsZero() {
		u.Time = m.now()
	}
	m.buf = append(m.buf, u)
	if _, dup := m.ids[u.ID]; dup {
		m.dups[u.ID] = append(m.dups[u.ID], u.Seq)
	} else {
		m.ids[u.ID] = u.Seq
	}
	m.evictLocked()
	if m.sink != nil {
		m.sink(u)
	}
	return nil
}

func (m *Memory) evictLocked() {
	live := m.buf[m.off:]
	drop := 0
	if m.retention.MaxUpdates > 0 && uint64(len(live)) > m.retention.MaxUpdates {
		drop = len(live) - int(m.retention.MaxUpdates)
	}
	if m.retention.MaxAge > 0 {
		cutoff := m.now().Add(-m.retention.MaxAge)
		for drop < len(live) && live[drop].Time.Before(cutoff) {
			drop++
		}
	}
	// Eviction goes in Seq order, so the evicted update is always its id's
	// earliest retained one.
	for _, u := range live[:drop] {
		if m.ids[u.ID] != u.Seq {
			continue
		}
		if later := m.dups[u.ID]; len(later) > 0 {
			m.ids[u.ID] = later[0]
			if len(later) == 1 {
				delete(m.dups, u.ID)
			} else {
				m.dups[u.ID] = later[1:]
			}
		} else {
			delete(m.ids, u.ID)
		}
	}
	for i := m.off; i < m.off+drop; i++ {
		m.buf[i] = nil
	}
	m.off += drop
	if m.off > 1024 && m.off*2 > len(m.buf) {
		n := copy(m.buf, m.buf[m.off:])
		clear(m.buf[n:])
		m.buf = m.buf[:n]
		m.off = 0
	}
}

// Lookup implements Store.
func (m *Memory) Lookup(_ context.Context, id string) (uint64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, false, ErrClosed
	}
	m.evictLocked()
	seq, ok := m.ids[id]
	return seq, ok, nil
}

// Scan implements Store.
func (m *Memory) Scan(ctx context.Context, after, until uint64, fn func(*Update) error) error {
	chunk := make([]*Update, 0, scanChunk)
	for after < until {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk = chunk[:0]
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return ErrClosed
		}
		// Like Lookup, honour retention by age even when nobody appended since.
		m.evictLocked()
		live := m.buf[m.off:]
		// Seqs are contiguous in buf: live[i].Seq == first+i.
		if len(live) > 0 {
			first := live[0].Seq
			start := 0
			if after >= first {
				start = int(after - first + 1)
			}
			for i := start; i < len(live) && len(chunk) < scanChunk && live[i].Seq <= until; i++ {
				chunk = append(chunk, live[i])
			}
		}
		m.mu.Unlock()
		if len(chunk) == 0 {
			return nil
		}
		for _, u := range chunk {
			if err := fn(u); err != nil {
				return err
			}
		}
		after = chunk[len(chunk)-1].Seq
	}
	return nil
}

// LastSeq implements Store.
func (m *Memory) LastSeq() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seq
}

// Len returns how many updates the store retains, after dropping those that
// outlived Retention.MaxAge: what Scan(0, LastSeq()) would return. It is
// amortised O(1); the hub exports it as mercure_history_updates.
func (m *Memory) Len() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0
	}
	m.evictLocked()
	return uint64(len(m.buf) - m.off)
}

// Ready implements Store.
func (m *Memory) Ready(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.buf, m.ids, m.dups = nil, nil, nil
	return nil
}
