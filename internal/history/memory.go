package history

import (
	"context"
	"slices"
	"sort"
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
	// kinds holds the retained updates of each kind (published updates,
	// then subscription events), each in Seq order. Retention evicts from
	// the front of one kind without touching the other, so Scan merges the
	// two.
	kinds [2]kindLog
	ids   map[string]uint64 // id -> earliest retained Seq with that id
	// dups holds, for ids appended more than once, the later retained Seqs in
	// order, so that evicting the earliest one leaves the next findable
	// (docs/protocol.md#duplicate-ids).
	dups map[string][]uint64
	seq  uint64
}

// kindLog is the retained updates of one kind: buf[off:], in Seq order. The
// dead prefix is compacted when it is more than half of buf, which keeps
// appends amortised O(1).
type kindLog struct {
	buf   []*Update
	off   int
	bytes uint64 // the sum of Size over buf[off:]
}

func (k *kindLog) live() []*Update { return k.buf[k.off:] }

// drop evicts the n oldest updates.
func (k *kindLog) drop(n int) {
	for i := k.off; i < k.off+n; i++ {
		k.bytes -= Size(k.buf[i])
		k.buf[i] = nil
	}
	k.off += n
	if k.off > 1024 && k.off*2 > len(k.buf) {
		m := copy(k.buf, k.buf[k.off:])
		clear(k.buf[m:])
		k.buf = k.buf[:m]
		k.off = 0
	}
}

// after returns the index in live() of the first update with Seq > seq.
func (k *kindLog) after(seq uint64) int {
	live := k.live()
	return sort.Search(len(live), func(i int) bool { return live[i].Seq > seq })
}

func kindOf(u *Update) int {
	if u.SubscriptionEvent {
		return 1
	}
	return 0
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

// Append implements Store. An update larger than Retention.MaxBytes is
// delivered but not retained.
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
	if size := Size(u); m.retention.MaxBytes == 0 || size <= m.retention.MaxBytes {
		k := &m.kinds[kindOf(u)]
		k.buf = append(k.buf, u)
		k.bytes += size
		if _, dup := m.ids[u.ID]; dup {
			m.dups[u.ID] = append(m.dups[u.ID], u.Seq)
		} else {
			m.ids[u.ID] = u.Seq
		}
	}
	m.evictLocked()
	if m.sink != nil {
		m.sink(u)
	}
	return nil
}

// evictLocked drops, from the front of each kind, what Retention no longer
// allows.
func (m *Memory) evictLocked() {
	r := m.retention
	var cutoff time.Time
	if r.MaxAge > 0 {
		cutoff = m.now().Add(-r.MaxAge)
	}
	for i := range m.kinds {
		k := &m.kinds[i]
		live := k.live()
		drop := 0
		if r.MaxUpdates > 0 && uint64(len(live)) > r.MaxUpdates {
			drop = len(live) - int(r.MaxUpdates)
		}
		if r.MaxBytes > 0 {
			bytes := k.bytes
			for _, u := range live[:drop] {
				bytes -= Size(u)
			}
			for ; bytes > r.MaxBytes; drop++ {
				bytes -= Size(live[drop])
			}
		}
		if r.MaxAge > 0 {
			for drop < len(live) && live[drop].Time.Before(cutoff) {
				drop++
			}
		}
		for _, u := range live[:drop] {
			m.forgetID(u)
		}
		k.drop(drop)
	}
}

// forgetID removes evicted u from the id index. Within a kind eviction goes
// in Seq order, but the two kinds are evicted independently, so u is not
// always its id's earliest retained update.
func (m *Memory) forgetID(u *Update) {
	later := m.dups[u.ID]
	if m.ids[u.ID] == u.Seq {
		switch len(later) {
		case 0:
			delete(m.ids, u.ID)
		case 1:
			m.ids[u.ID] = later[0]
			delete(m.dups, u.ID)
		default:
			m.ids[u.ID] = later[0]
			m.dups[u.ID] = later[1:]
		}
		return
	}
	if i := slices.Index(later, u.Seq); i >= 0 {
		if later = slices.Delete(later, i, i+1); len(later) == 0 {
			delete(m.dups, u.ID)
		} else {
			m.dups[u.ID] = later
		}
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
		a, b := m.kinds[0].live(), m.kinds[1].live()
		a, b = a[m.kinds[0].after(after):], b[m.kinds[1].after(after):]
		for len(chunk) < scanChunk {
			var u *Update
			switch {
			case len(a) > 0 && (len(b) == 0 || a[0].Seq < b[0].Seq):
				u, a = a[0], a[1:]
			case len(b) > 0:
				u, b = b[0], b[1:]
			}
			if u == nil || u.Seq > until {
				break
			}
			chunk = append(chunk, u)
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
// amortised O(1).
func (m *Memory) Len() uint64 {
	u := m.Usage()
	return u.Updates + u.Events
}

// Usage returns what the store retains of each kind, after dropping what
// outlived Retention.MaxAge. It is amortised O(1); the hub exports it as
// the mercure_history_* gauges.
func (m *Memory) Usage() Usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Usage{}
	}
	m.evictLocked()
	return Usage{
		Updates: uint64(len(m.kinds[0].live())), UpdateBytes: m.kinds[0].bytes,
		Events: uint64(len(m.kinds[1].live())), EventBytes: m.kinds[1].bytes,
	}
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
	m.kinds = [2]kindLog{}
	m.ids, m.dups = nil, nil
	return nil
}
