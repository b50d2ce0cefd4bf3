package match

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// cacheFixture returns selectors of every kind and topics that some match.
func cacheFixture(tb testing.TB) ([]*Selector, []string) {
	tb.Helper()
	base := mustParse(tb, hubURL)
	sels := []*Selector{
		Compile07("*"),
		Compile07("https://example.com/books/1"),
		Compile07("https://example.com/books/{id}"),
		Compile07("https://example.com/{+path}"),
		Compile07("/.well-known/mercure/subscriptions/{topic}/{subscriber}"),
		mustCompile08(tb, "exact", "https://example.com/books/2", base),
		mustCompile08(tb, "urlpattern", "*", base),
		mustCompile08(tb, "urlpattern", "/books/:id", base),
		mustCompile08(tb, "urlpattern", "https://example.com/books/*", base),
		mustCompile08(tb, "urlpattern", `urn\:books\:*`, base),
	}
	var topics []string
	for i := range 40 {
		topics = append(topics,
			fmt.Sprintf("https://example.com/books/%d", i),
			fmt.Sprintf("https://example.com/books/%d/x", i),
			fmt.Sprintf("/books/%d", i),
			fmt.Sprintf("urn:books:%d", i),
		)
	}
	topics = append(topics, "https://example.com/books/{id}", "/.well-known/mercure/subscriptions/a/b", "")
	return sels, topics
}

func TestCacheAgreesWithMatch(t *testing.T) {
	t.Parallel()
	sels, topics := cacheFixture(t)
	c := NewCache(4096) // small, so that generations rotate during the test
	for round := range 3 {
		for _, s := range sels {
			for _, topic := range topics {
				if got, want := c.Match(s, topic), s.Match(topic); got != want {
					t.Fatalf("round %d: Cache.Match(%q, %q) = %v, Match = %v", round, s, topic, got, want)
				}
			}
		}
	}
	if n, b := c.Len(), c.Bytes(); n == 0 || b > 4096 {
		t.Errorf("Len() = %d, Bytes() = %d, want at least one entry and at most 4096 bytes", n, b)
	}
}

func TestCacheOnlyStoresCostlyKinds(t *testing.T) {
	t.Parallel()
	base := mustParse(t, hubURL)
	c := NewCache(1024)
	for _, s := range []*Selector{Compile07("*"), Compile07("a"), mustCompile08(t, "exact", "a", base), mustCompile08(t, "urlpattern", "*", base)} {
		c.Match(s, "a")
	}
	if n := c.Len(); n != 0 {
		t.Errorf("Len() = %d after any/exact lookups, want 0", n)
	}
	tmpl := Compile07("https://example.com/books/{id}")
	c.Match(tmpl, "https://example.com/books/1")
	c.Match(tmpl, "https://example.com/books/1")
	if n, m := c.Len(), c.Misses(); n != 1 || m != 1 {
		t.Errorf("Len() = %d, Misses() = %d after two identical template lookups, want 1, 1", n, m)
	}
	long := "https://example.com/books/" + strings.Repeat("1", MaxCachedTopicLength)
	if !c.Match(tmpl, long) {
		t.Errorf("long topic did not match")
	}
	if n, m := c.Len(), c.Misses(); n != 1 || m != 1 {
		t.Errorf("Len() = %d, Misses() = %d after a topic longer than MaxCachedTopicLength, want 1, 1", n, m)
	}
}

func TestCacheSharesEqualSelectors(t *testing.T) {
	t.Parallel()
	c := NewCache(1024)
	a, b := Compile07("https://example.com/books/{id}"), Compile07("https://example.com/books/{id}")
	c.Match(a, "https://example.com/books/1")
	c.Match(b, "https://example.com/books/1")
	if n, m := c.Len(), c.Misses(); n != 1 || m != 1 {
		t.Errorf("Len() = %d, Misses() = %d, want 1, 1: identical templates should share an entry", n, m)
	}
}

func TestCacheSeparatesBases(t *testing.T) {
	t.Parallel()
	// The same relative pattern against two hubs must not share results.
	c := NewCache(1024)
	a := mustCompile08(t, "urlpattern", "/books/:id", mustParse(t, "https://a.example/.well-known/mercure"))
	b := mustCompile08(t, "urlpattern", "/books/:id", mustParse(t, "https://b.example/.well-known/mercure"))
	topic := "https://a.example/books/1"
	if !c.Match(a, topic) {
		t.Fatalf("pattern on hub a did not match %q", topic)
	}
	if c.Match(b, topic) {
		t.Errorf("pattern on hub b matched %q through the cache", topic)
	}
	// A template and a URL pattern with the same text are different selectors.
	tm := Compile07("https://example.com/books/:id")
	up := mustCompile08(t, "urlpattern", "https://example.com/books/:id", nil)
	if tm.Kind() != KindExact {
		t.Fatalf("unexpected kind %v", tm.Kind())
	}
	if !c.Match(up, "https://example.com/books/1") || c.Match(tm, "https://example.com/books/1") {
		t.Errorf("cache confused a URL pattern with an exact selector of the same text")
	}
}

func TestCacheBoundedByBytes(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, 100, 1000, 100_000, 1 << 20} {
		c := NewCache(size)
		s := Compile07("https://example.com/books/{id}")
		long := Compile07("https://example.com/" + strings.Repeat("a", 3000) + "/{id}")
		for i := range 20000 {
			topic := fmt.Sprintf("https://example.com/books/%d", i)
			if !c.Match(s, topic) || c.Match(long, topic) {
				t.Fatalf("size %d: wrong result for %q", size, topic)
			}
		}
		// Each shard keeps at least one entry per generation whatever its
		// bound, so tiny caches may hold a few entries more.
		limit := max(size, 2*len(c.shards)*(cacheEntryOverhead+len(long.id)+40))
		if n, b := c.Len(), c.Bytes(); b > limit || n == 0 {
			t.Errorf("NewCache(%d): Len() = %d, Bytes() = %d after 20000 distinct topics, want 1 entry to %d bytes", size, n, b, limit)
		}
	}
}

func TestCachePurgeDropsForgottenSelectors(t *testing.T) {
	t.Parallel()
	c := NewCache(1 << 20)
	kept := Compile07("https://example.com/kept/{id}")
	gone := Compile07("https://example.com/gone/{id}")
	for i := range 100 {
		c.Match(kept, fmt.Sprintf("https://example.com/kept/%d", i))
		c.Match(gone, fmt.Sprintf("https://example.com/gone/%d", i))
	}
	before := c.Bytes()
	if n := c.Purge(); n != 0 {
		t.Fatalf("Purge() with nothing forgotten dropped %d entries", n)
	}
	c.Forget(gone)
	c.Forget(Compile07("https://example.com/exact")) // not cached: nothing to do
	if n := c.Purge(); n != 100 {
		t.Errorf("Purge() dropped %d entries, want the forgotten selector's 100", n)
	}
	if n, b := c.Len(), c.Bytes(); n != 100 || b >= before || b == 0 {
		t.Errorf("after Purge: Len() = %d, Bytes() = %d (before %d), want 100 entries and fewer bytes", n, b, before)
	}
	if !cacheHolds(c, kept, "https://example.com/kept/7") || cacheHolds(c, gone, "https://example.com/gone/7") {
		t.Errorf("Purge dropped the wrong entries")
	}
	// A selector compiled again after being forgotten matches as before.
	again := Compile07("https://example.com/gone/{id}")
	if !c.Match(again, "https://example.com/gone/7") || c.Match(again, "https://example.com/kept/7") {
		t.Errorf("recompiled selector gave wrong results")
	}
	var nilCache *Cache
	nilCache.Forget(gone)
	if nilCache.Purge() != 0 || nilCache.Bytes() != 0 {
		t.Errorf("nil cache Purge or Bytes is not 0")
	}
}

func TestCacheKeepsHotEntries(t *testing.T) {
	t.Parallel()
	// A hot entry looked up between rotations survives: it is promoted from
	// the previous generation to the current one.
	c := NewCache(128 * (cacheEntryOverhead + 64))
	s := Compile07("https://example.com/books/{id}")
	hot := "https://example.com/books/hot"
	c.Match(s, hot)
	const cold = 10000
	for i := range cold {
		c.Match(s, fmt.Sprintf("https://example.com/books/%d", i))
		c.Match(s, hot)
	}
	if !cacheHolds(c, s, hot) {
		t.Errorf("hot entry was evicted")
	}
	// Every cold topic missed once; the hot one only the first time.
	if got := c.Misses(); got != cold+1 {
		t.Errorf("Misses() = %d, want %d", got, cold+1)
	}
}

// cacheHolds reports whether c has a result for (s, topic).
func cacheHolds(c *Cache, s *Selector, topic string) bool {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		for _, m := range []map[uint64]cacheEntry{sh.cur, sh.prev} {
			for _, e := range m {
				if e.id == s.id && e.topic == topic {
					sh.mu.RUnlock()
					return true
				}
			}
		}
		sh.mu.RUnlock()
	}
	return false
}

func TestNilCache(t *testing.T) {
	t.Parallel()
	var c *Cache
	s := Compile07("https://example.com/books/{id}")
	if !c.Match(s, "https://example.com/books/1") || c.Match(s, "https://example.com/x") {
		t.Errorf("nil cache gave wrong results")
	}
	if c.Len() != 0 {
		t.Errorf("nil cache Len() != 0")
	}
}

func TestNewCacheDefault(t *testing.T) {
	t.Parallel()
	c := NewCache(0)
	total := 0
	for i := range c.shards {
		total += 2 * c.shards[i].limit
	}
	if total > DefaultCacheBytes || total < DefaultCacheBytes/2 {
		t.Errorf("NewCache(0) capacity = %d bytes, want about %d", total, DefaultCacheBytes)
	}
	if len(c.shards)&(len(c.shards)-1) != 0 {
		t.Errorf("shard count %d is not a power of two", len(c.shards))
	}
}

// TestCacheConcurrent hammers one small cache from many goroutines (run it
// with -race): results must always agree with Selector.Match.
func TestCacheConcurrent(t *testing.T) {
	t.Parallel()
	sels, topics := cacheFixture(t)
	want := make([][]bool, len(sels))
	for i, s := range sels {
		want[i] = make([]bool, len(topics))
		for j, topic := range topics {
			want[i][j] = s.Match(topic)
		}
	}
	for _, size := range []int{2048, 10 << 20} { // constant eviction, then mostly hits
		c := NewCache(size)
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for k := range 3000 {
					i := (g*7 + k) % len(sels)
					j := (g*13 + k*5) % len(topics)
					if got := c.Match(sels[i], topics[j]); got != want[i][j] {
						t.Errorf("size %d: Cache.Match(%q, %q) = %v, want %v", size, sels[i], topics[j], got, want[i][j])
						return
					}
				}
			})
		}
		wg.Wait()
		if b := c.Bytes(); b > max(size, 2*len(c.shards)*200) {
			t.Errorf("size %d: Bytes() = %d", size, b)
		}
	}
}
