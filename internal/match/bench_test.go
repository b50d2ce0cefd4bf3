package match

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

var benchSink bool

// benchSelectors returns one selector of each costly kind, and a topic that
// it matches.
func benchSelectors(b *testing.B) []struct {
	name  string
	sel   *Selector
	topic string
} {
	b.Helper()
	base := mustParse(b, hubURL)
	return []struct {
		name  string
		sel   *Selector
		topic string
	}{
		{"template", Compile07("https://example.com/books/{id}"), "https://example.com/books/12345"},
		{"urlpattern", mustCompile08(b, "urlpattern", "https://example.com/books/:id", base), "https://example.com/books/12345"},
		{"urlpattern-relative", mustCompile08(b, "urlpattern", "/books/:id", base), "/books/12345"},
		{"exact", Compile07("https://example.com/books/12345"), "https://example.com/books/12345"},
	}
}

// BenchmarkMatch measures one match, directly and through a warm Cache.
func BenchmarkMatch(b *testing.B) {
	for _, bc := range benchSelectors(b) {
		b.Run(bc.name+"/direct", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchSink = bc.sel.Match(bc.topic)
			}
		})
		b.Run(bc.name+"/cached", func(b *testing.B) {
			c := NewCache(0)
			c.Match(bc.sel, bc.topic)
			b.ReportAllocs()
			for b.Loop() {
				benchSink = c.Match(bc.sel, bc.topic)
			}
		})
	}
}

// BenchmarkMatchMiss measures a non-matching topic (the common case in a
// fan-out: most subscribers do not want most updates).
func BenchmarkMatchMiss(b *testing.B) {
	for _, bc := range benchSelectors(b)[:2] {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchSink = bc.sel.Match("https://example.com/authors/12345")
			}
		})
	}
}

// BenchmarkMatchWorstCase measures the costliest patterns the caps allow
// (MaxPatternLength bytes, MaxPatternGroups groups, literals after a
// wildcard) against 128-byte and 1 KiB topics.
func BenchmarkMatchWorstCase(b *testing.B) {
	base := mustParse(b, hubURL)
	sels := map[string]*Selector{
		"urlpattern": mustCompile08(b, "urlpattern", strings.Repeat("/*", MaxPatternGroups)+strings.Repeat("a", MaxPatternLength-2*MaxPatternGroups), base),
		"template":   Compile07("{+a}" + strings.Repeat("a", MaxPatternLength-4)),
	}
	for name, s := range sels {
		for _, n := range []int{128, 1024} {
			topic := "https://example.com/" + strings.Repeat("a", n-20)
			b.Run(name+"/topic="+strconv.Itoa(n), func(b *testing.B) {
				for b.Loop() {
					benchSink = s.Match(topic)
				}
			})
		}
	}
}

// BenchmarkCacheParallel measures the cache under the hub's dispatch load:
// every goroutine matches a stream of topics against many subscribers'
// selectors. hits: 1000 topics × 100 selectors, all cached after warm-up.
// churn: every lookup is a new topic (all misses, constant eviction).
func BenchmarkCacheParallel(b *testing.B) {
	base := mustParse(b, hubURL)
	var sels []*Selector
	for i := range 50 {
		sels = append(sels,
			Compile07(fmt.Sprintf("https://example.com/shelves/%d/books/{id}", i)),
			mustCompile08(b, "urlpattern", fmt.Sprintf("/shelves/%d/books/:id", i), base))
	}
	topics := make([]string, 1000)
	for i := range topics {
		topics[i] = fmt.Sprintf("https://example.com/shelves/%d/books/%d", i%50, i)
	}

	b.Run("hits", func(b *testing.B) {
		c := NewCache(len(sels) * len(topics) * 2 * (cacheEntryOverhead + 100)) // twice the working set, per the Cache doc
		for _, s := range sels {
			for _, t := range topics {
				c.Match(s, t)
			}
		}
		var next atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(7919))
			for pb.Next() {
				i++
				benchSink = c.Match(sels[i%len(sels)], topics[(i/len(sels))%len(topics)])
			}
		})
	})
	b.Run("direct", func(b *testing.B) {
		var next atomic.Uint64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(7919))
			for pb.Next() {
				i++
				benchSink = sels[i%len(sels)].Match(topics[(i/len(sels))%len(topics)])
			}
		})
	})
	b.Run("churn", func(b *testing.B) {
		c := NewCache(4096 * (cacheEntryOverhead + 100))
		var next atomic.Uint64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := next.Add(1)
				benchSink = c.Match(sels[n%uint64(len(sels))], "https://example.com/shelves/1/books/"+strconv.FormatUint(n, 10))
			}
		})
	})
}

// BenchmarkHasControlOrFormat measures the topic validation scan.
func BenchmarkHasControlOrFormat(b *testing.B) {
	topic := "https://example.com/livres/été/12345"
	b.ReportAllocs()
	for b.Loop() {
		benchSink = HasControlOrFormat(topic)
	}
}

// BenchmarkCompile measures compiling one selector, with its time and the
// bytes it allocates per byte of input (the issue's "linear with a small
// constant": compare B/byte with 1).
func BenchmarkCompile(b *testing.B) {
	base := mustParse(b, hubURL)
	var t20 strings.Builder
	t20.WriteString("https://example.com/lg/sel/1")
	for j := range 20 {
		fmt.Fprintf(&t20, "/{v%d}", j)
	}
	general := func(n int) string {
		p := "https://example.com/(\\d+)/"
		return p + strings.Repeat("a", n-len(p))
	}
	cases := []struct {
		name, sel string
		compile   func(string) *Selector
	}{
		{"template-20-expressions", t20.String(), Compile07},
		{"template-4000-bytes", "https://example.com/{a}/" + strings.Repeat("a", 3970) + "{/b}", Compile07},
		{"urlpattern-simple-40-bytes", "https://example.com/books/:id", nil},
		{"urlpattern-simple-4000-bytes", "https://example.com/" + strings.Repeat("a", 3970) + "/:id", nil},
		{"urlpattern-general-1024-bytes", general(1024), nil},
		{"urlpattern-general-4096-bytes", general(4096), nil},
	}
	for _, c := range cases {
		compile := c.compile
		if compile == nil {
			compile = func(s string) *Selector { return mustCompile08(b, "urlpattern", s, base) }
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			for b.Loop() {
				benchSelector = compile(c.sel)
			}
			runtime.ReadMemStats(&m1)
			n := float64(b.N) * float64(len(c.sel))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/byte")
			b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/n, "B/byte")
		})
	}
}

var benchSelector *Selector

// BenchmarkIndexMatch measures finding the selectors that match one topic
// among N distinct templates or URL patterns (one per subscriber in a
// selective fan-out): the cost stays flat in N.
func BenchmarkIndexMatch(b *testing.B) {
	base := mustParse(b, hubURL)
	for _, kind := range []string{"template", "urlpattern"} {
		for _, n := range []int{100, 10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/N=%d", kind, n), func(b *testing.B) {
				x := NewIndex[int](NewCache(0))
				for i := range n {
					if kind == "template" {
						x.Put(Compile07(fmt.Sprintf("https://example.com/lg/sel/%d/{x}", i)), i)
					} else {
						x.Put(mustCompile08(b, "urlpattern", fmt.Sprintf("https://example.com/lg/sel/%d/:x", i), base), i)
					}
				}
				topics := make([][]string, 64)
				for i := range topics {
					topics[i] = []string{fmt.Sprintf("https://example.com/lg/sel/%d/item", (i*7919)%n)}
				}
				found := 0
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					x.Match(topics[i%len(topics)], func(int) { found++ })
					i++
				}
				if found != i {
					b.Fatalf("%d matches for %d lookups", found, i)
				}
			})
		}
	}
}
