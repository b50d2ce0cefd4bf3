package match

import (
	"hash/maphash"
	"runtime"
	"sync"
	"unsafe"
)

// DefaultCacheEntries is the capacity NewCache uses when given 0 or less.
// With MaxCachedTopicLength it bounds the memory held by topics in a
// default cache to about 16 MiB, and it is far more than the distinct
// (selector, topic) pairs a hub usually sees between two evictions.
const DefaultCacheEntries = 1 << 15

// MaxCachedTopicLength is the longest topic, in bytes, whose results a Cache
// stores; longer topics are matched every time. Cache keys keep their topic
// strings alive, so this bounds the cache's memory by its entry count.
const MaxCachedTopicLength = 512

// Cache memoises Selector.Match results for template and URL pattern
// selectors, which cost microseconds and allocate, so that a publish does not
// re-run them for every subscriber. "*" and exact selectors are evaluated
// directly (cheaper than a lookup).
//
// Entries are keyed by the selector's matching behaviour, not its identity:
// subscribers that compiled the same selector (against the same base URL)
// share entries. A Cache is safe for concurrent use and designed for many
// goroutines: it is split into independently locked shards, lookups that hit
// take only a read lock, and each shard holds at most two generations of
// entries; when the current generation is full the previous one is dropped
// wholesale, so eviction is O(1) and recently used entries survive (a hit in
// the previous generation moves the entry to the current one). The price of
// that cheap eviction is that only the most recent half of the capacity is
// guaranteed to survive a rotation: size the cache at about twice the working
// set of (distinct selector, topic) pairs. A nil *Cache is valid and caches
// nothing.
type Cache struct {
	shards []cacheShard
	shift  uint // 64 - log2(len(shards)): the top bits of a hash pick the shard
}

type cacheShard struct {
	mu     sync.RWMutex
	cur    map[uint64]cacheEntry
	prev   map[uint64]cacheEntry
	limit  int    // entries per generation
	misses uint64 // lookups that ran the matcher; guarded by mu
	// Pad to two cache lines so that neighbouring shards' locks do not
	// share a line (or an adjacent-line prefetch pair).
	_ [128 - (unsafe.Sizeof(sync.RWMutex{})+2*unsafe.Sizeof(map[uint64]cacheEntry(nil))+unsafe.Sizeof(int(0))+unsafe.Sizeof(uint64(0)))%128]byte
}

// cacheEntry is one memoised result. The map key is a 64-bit hash of
// (id, topic); the strings are kept to tell hash collisions apart.
type cacheEntry struct {
	id      string
	topic   string
	matched bool
}

// NewCache returns a cache holding at most maxEntries results (0 or less
// means DefaultCacheEntries; a cache holds at least 2).
func NewCache(maxEntries int) *Cache {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheEntries
	}
	// About four shards per CPU keeps lock contention low; each shard keeps
	// at least 64 entries (two generations of 32) so that small caches still
	// work as caches.
	n := 1
	for n < 4*runtime.GOMAXPROCS(0) && n < 256 && maxEntries/(2*n) >= 64 {
		n *= 2
	}
	bits := uint(0)
	for 1<<bits < n {
		bits++
	}
	limit := max(1, maxEntries/(2*n))
	c := &Cache{shards: make([]cacheShard, n), shift: 64 - bits}
	for i := range c.shards {
		c.shards[i].limit = limit
		c.shards[i].cur = make(map[uint64]cacheEntry)
	}
	return c
}

// Match returns s.Match(topic), from the cache when possible.
func (c *Cache) Match(s *Selector, topic string) bool {
	if c == nil || s.id == "" || len(topic) > MaxCachedTopicLength {
		return s.Match(topic)
	}
	h := mix(maphash.String(seed, topic) ^ s.idHash)
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
// when the current one is full. miss tells a fresh result from a promotion.
func (sh *cacheShard) store(h uint64, e cacheEntry, miss bool) {
	sh.mu.Lock()
	if miss {
		sh.misses++
	}
	if _, ok := sh.cur[h]; !ok && len(sh.cur) >= sh.limit {
		sh.prev = sh.cur
		sh.cur = make(map[uint64]cacheEntry, sh.limit)
	}
	sh.cur[h] = e
	sh.mu.Unlock()
}

// Len returns the number of distinct results currently held, never more
// than the capacity given to NewCache. It is meant for tests and metrics: it takes
// every shard's lock in turn.
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
