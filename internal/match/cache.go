package match

import (
	"hash/maphash"
	"runtime"
	"sync"
	"unsafe"
)

// DefaultCacheBytes is the capacity NewCache uses when given 0 or less: far
// more than the (distinct selector, topic) pairs a hub usually sees between
// two evictions, and small next to the subscriptions that create them.
const DefaultCacheBytes = 8 << 20

// MaxCachedTopicLength is the longest topic, in bytes, whose results a Cache
// stores; longer topics are matched every time.
const MaxCachedTopicLength = 512

// cacheEntryOverhead is what one entry costs besides its strings: the map
// slot (key and value) and the map's own bookkeeping, rounded up.
const cacheEntryOverhead = 64

// Cache memoises Selector.Match results for template and URL pattern
// selectors, which can cost microseconds and allocate, so that a publish
// does not re-run them for every topic. "*" and exact selectors are evaluated
// directly (cheaper than a lookup).
//
// Entries are keyed by the selector's matching behaviour, not its identity:
// selectors compiled from the same string (against the same base URL) share
// entries. The cache is bounded by bytes: each entry counts its topic, the
// selector's identity string and a fixed overhead, so a few long selectors
// cannot hold more memory than many short ones. Forget and Purge drop the
// entries of selectors that nobody uses any more, so that memory comes back
// when the subscriptions that created them are gone.
//
// A Cache is safe for concurrent use and designed for many goroutines: it is
// split into independently locked shards, lookups that hit take only a read
// lock, and each shard holds at most two generations of entries; when the
// current generation is full the previous one is dropped wholesale, so
// eviction is O(1) and recently used entries survive (a hit in the previous
// generation moves the entry to the current one). The price of that cheap
// eviction is that only the most recent half of the capacity is guaranteed
// to survive a rotation: size the cache at about twice the working set. A
// nil *Cache is valid and caches nothing.
type Cache struct {
	shards []cacheShard
	shift  uint // 64 - log2(len(shards)): the top bits of a hash pick the shard

	forgetMu  sync.Mutex
	forgotten map[string]struct{} // ids whose entries Purge drops
}

type cacheShard struct {
	mu                  sync.RWMutex
	cur, prev           map[uint64]cacheEntry
	curBytes, prevBytes int
	limit               int    // bytes per generation
	misses              uint64 // lookups that ran the matcher; guarded by mu
	// Pad to two cache lines so that neighbouring shards' locks do not
	// share a line (or an adjacent-line prefetch pair).
	_ [128 - (unsafe.Sizeof(sync.RWMutex{})+2*unsafe.Sizeof(map[uint64]cacheEntry(nil))+3*unsafe.Sizeof(int(0))+unsafe.Sizeof(uint64(0)))%128]byte
}

// cacheEntry is one memoised result. The map key is a 64-bit hash of
// (id, topic); the strings are kept to tell hash collisions apart.
type cacheEntry struct {
	id      string
	topic   string
	matched bool
}

func (e *cacheEntry) cost() int { return cacheEntryOverhead + len(e.id) + len(e.topic) }

// NewCache returns a cache holding at most maxBytes bytes of results (0 or
// less means DefaultCacheBytes). Whatever the bound, each shard keeps at
// least one entry per generation.
func NewCache(maxBytes int) *Cache {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	// About four shards per CPU keeps lock contention low; each shard keeps
	// at least 16 KiB per generation so that small caches still work as
	// caches.
	n := 1
	for n < 4*runtime.GOMAXPROCS(0) && n < 256 && maxBytes/(4*n) >= 16<<10 {
		n *= 2
	}
	bits := uint(0)
	for 1<<bits < n {
		bits++
	}
	c := &Cache{shards: make([]cacheShard, n), shift: 64 - bits}
	for i := range c.shards {
		c.shards[i].limit = max(1, maxBytes/(2*n))
		c.shards[i].cur = make(map[uint64]cacheEntry)
	}
	return c
}

// TopicHash returns the hash of topic that MatchHashed takes, so that a
// caller matching one topic against many selectors hashes it once.
func TopicHash(topic string) uint64 { return maphash.String(seed, topic) }

// Match returns s.Match(topic), from the cache when possible.
func (c *Cache) Match(s *Selector, topic string) bool {
	if c == nil || s.id == "" || len(topic) > MaxCachedTopicLength {
		return s.Match(topic)
	}
	return c.MatchHashed(s, topic, TopicHash(topic))
}

// MatchHashed is Match for a topic whose TopicHash is th.
func (c *Cache) MatchHashed(s *Selector, topic string, th uint64) bool {
	if c == nil || s.id == "" || len(topic) > MaxCachedTopicLength {
		return s.Match(topic)
	}
	h := mix(th ^ s.idHash)
	sh := &c.shards[h>>c.shift] // with one shard, shift is 64 and h>>64 is 0

	sh.mu.RLock()
	e, ok := sh.cur[h]
	inPrev := false
	if !ok {
		e, ok = sh.prev[h]
		inPrev = ok
	}
	sh.mu.RUnlock()
	if ok && e.id == s.id && e.topic == topic {
		if inPrev {
			sh.store(h, e, false)
		}
		return e.matched
	}

	// Miss (or a hash collision, which simply replaces the older entry).
	// Match outside the lock: concurrent misses on one key compute the same
	// result and the last store wins.
	m := s.Match(topic)
	sh.store(h, cacheEntry{id: s.id, topic: topic, matched: m}, true)
	return m
}

// store puts e in the current generation, starting a new generation first
// when e does not fit in the current one. miss tells a fresh result from a
// promotion.
func (sh *cacheShard) store(h uint64, e cacheEntry, miss bool) {
	sh.mu.Lock()
	if miss {
		sh.misses++
	}
	old, replace := sh.cur[h]
	if replace {
		sh.curBytes -= old.cost()
	} else if len(sh.cur) > 0 && sh.curBytes+e.cost() > sh.limit {
		sh.prev, sh.prevBytes = sh.cur, sh.curBytes
		sh.cur, sh.curBytes = make(map[uint64]cacheEntry, len(sh.prev)), 0
	}
	sh.cur[h] = e
	sh.curBytes += e.cost()
	sh.mu.Unlock()
}

// Forget records that no subscription or grant uses s any more: the next
// Purge drops its entries. Forgetting a selector that is compiled again
// later costs only cache misses, since equal selectors match alike.
func (c *Cache) Forget(s *Selector) {
	if c == nil || s.id == "" {
		return
	}
	c.forgetMu.Lock()
	if c.forgotten == nil {
		c.forgotten = make(map[string]struct{})
	}
	c.forgotten[s.id] = struct{}{}
	c.forgetMu.Unlock()
}

// Purge drops the entries of the selectors given to Forget since the last
// Purge and returns how many it dropped. It takes each shard's lock in turn
// and costs one pass over the cache, so call it periodically rather than for
// each selector.
func (c *Cache) Purge() int {
	if c == nil {
		return 0
	}
	c.forgetMu.Lock()
	dead := c.forgotten
	c.forgotten = nil
	c.forgetMu.Unlock()
	if len(dead) == 0 {
		return 0
	}
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		var dropped int
		sh.cur, sh.curBytes, dropped = purgeGeneration(sh.cur, dead)
		n += dropped
		sh.prev, sh.prevBytes, dropped = purgeGeneration(sh.prev, dead)
		n += dropped
		sh.mu.Unlock()
	}
	return n
}

// purgeGeneration returns m without the entries of dead ids, in a new map
// when it dropped some (a Go map keeps its size after deletes), with its
// byte count.
func purgeGeneration(m map[uint64]cacheEntry, dead map[string]struct{}) (map[uint64]cacheEntry, int, int) {
	bytes, dropped := 0, 0
	for _, e := range m {
		if _, ok := dead[e.id]; ok {
			dropped++
		} else {
			bytes += e.cost()
		}
	}
	if dropped == 0 {
		return m, bytes, 0
	}
	out := make(map[uint64]cacheEntry, len(m)-dropped)
	for h, e := range m {
		if _, ok := dead[e.id]; !ok {
			out[h] = e
		}
	}
	return out, bytes, dropped
}

// Len returns the number of distinct results currently held. It is meant
// for tests and metrics: it takes every shard's lock in turn.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.cur)
		for h := range sh.prev {
			if _, ok := sh.cur[h]; !ok {
				n++
			}
		}
		sh.mu.RUnlock()
	}
	return n
}

// Bytes returns the bytes the cache accounts for, never more than the
// capacity given to NewCache (except that each shard keeps at least one
// entry per generation). It is meant for tests and metrics.
func (c *Cache) Bytes() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += sh.curBytes + sh.prevBytes
		sh.mu.RUnlock()
	}
	return n
}

// Misses returns how many lookups ran the matcher because the cache had no
// result (lookups of "*" and exact selectors, and of topics too long to
// cache, are not counted). It is meant for tests and metrics.
func (c *Cache) Misses() uint64 {
	if c == nil {
		return 0
	}
	var n uint64
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += sh.misses
		sh.mu.RUnlock()
	}
	return n
}

// mix is the splitmix64 finaliser. It spreads the xor of two hashes so that
// the top bits (the shard) and the map key both depend on all input bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
