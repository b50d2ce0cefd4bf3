package hub

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/match"
)

// benchSelector returns the selector of subscriber i and a topic it
// matches, for each kind of selector.
func benchSelector(tb testing.TB, kind string, i int) (*match.Selector, string) {
	tb.Helper()
	topic := fmt.Sprintf("https://example.com/lg/sel/%d/item", i)
	switch kind {
	case "exact":
		return match.Compile07(topic), topic
	case "template":
		return match.Compile07(fmt.Sprintf("https://example.com/lg/sel/%d/{x}", i)), topic
	default:
		base, _ := url.Parse("https://example.com/.well-known/mercure")
		s, err := match.Compile08(match.TypeURLPattern, fmt.Sprintf("https://example.com/lg/sel/%d/:x", i), base)
		if err != nil {
			tb.Fatal(err)
		}
		return s, topic
	}
}

// benchDispatch registers subscribers (subscriber i with selectors[i]) on
// a broadcaster and dispatches updates to topics in turn, emptying the
// queues now and then. It returns the deliveries made.
func benchDispatch(b *testing.B, sels []*match.Selector, topics []string) int {
	bc := newBroadcaster(match.NewCache(0))
	subs := make([]*subscriber, len(sels))
	for i, sel := range sels {
		s := newSubscriber(1 << 30)
		s.selectors = []*match.Selector{sel}
		bc.add(s)
		subs[i] = s
	}
	updates := make([]*history.Update, len(topics))
	for i, t := range topics {
		updates[i] = &history.Update{Topics: []string{t}, Data: "x", ID: fmt.Sprint("id-", i)}
	}
	drain := func() int {
		n := 0
		for _, s := range subs {
			q, _, _ := s.take(nil)
			n += len(q)
		}
		return n
	}
	delivered := 0
	seq := uint64(0)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		seq++
		u := updates[seq%uint64(len(updates))]
		u.Seq = seq
		bc.dispatch(u)
		if seq%8192 == 0 {
			b.StopTimer()
			delivered += drain()
			b.StartTimer()
		}
	}
	return delivered + drain()
}

// BenchmarkDispatchSelective measures one publish that reaches one
// subscriber among N, each with its own selector: the cost stays flat in N
// whether the selectors are exact topics, URI templates or URL patterns.
func BenchmarkDispatchSelective(b *testing.B) {
	for _, kind := range []string{"exact", "template", "urlpattern"} {
		for _, n := range []int{1000, 19_500, 100_000} {
			b.Run(fmt.Sprintf("%s/N=%d", kind, n), func(b *testing.B) {
				sels := make([]*match.Selector, n)
				topics := make([]string, n)
				for i := range n {
					sels[i], topics[i] = benchSelector(b, kind, i)
				}
				if got := benchDispatch(b, sels, topics); got != b.N {
					b.Fatalf("%d deliveries for %d updates", got, b.N)
				}
			})
		}
	}
}

// BenchmarkDispatchBroadcast measures one publish that reaches 10,000
// subscribers sharing one selector; ns/delivery compares the kinds.
func BenchmarkDispatchBroadcast(b *testing.B) {
	const n = 10_000
	for _, kind := range []string{"exact", "template", "urlpattern"} {
		b.Run(kind, func(b *testing.B) {
			sel, topic := benchSelector(b, kind, 1)
			sels := make([]*match.Selector, n)
			for i := range sels {
				sels[i] = sel
			}
			got := benchDispatch(b, sels, []string{topic})
			if got != b.N*n {
				b.Fatalf("%d deliveries for %d updates", got, b.N)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(got), "ns/delivery")
		})
	}
}

// budgetRequests are subscription requests at and beyond the budget, as
// an attacker with no grants (an anonymous subscriber) would send them.
func budgetRequests() map[string]string {
	q := func(name string, n int, f func(i int) string) string {
		v := url.Values{}
		for i := range n {
			v.Add(name, f(i))
		}
		return v.Encode()
	}
	tmpl := func(i int) string {
		var b strings.Builder
		fmt.Fprintf(&b, "https://example.com/dos/%d", i)
		for j := range 20 {
			fmt.Fprintf(&b, "/{v%d}", j)
		}
		return b.String()
	}
	return map[string]string{
		"templates-1000x20-refused": q("topic", 1000, tmpl),
		"templates-100x20":          q("topic", 100, tmpl),
		"patterns-100x4000-refused": q("match_urlpattern", 100, func(i int) string {
			return fmt.Sprintf("https://example.com/%03d/", i) + strings.Repeat("a", 3975) + "/:x"
		}),
		"patterns-16x4000": q("match_urlpattern", 16, func(i int) string {
			return fmt.Sprintf("https://example.com/%03d/", i) + strings.Repeat("a", 3975) + "/:x"
		}),
		"patterns-general-2x1024":       q("match_urlpattern", 2, func(i int) string { return fmt.Sprintf("https://example.com/%d/(\\d+)/", i) + strings.Repeat("a", 990) }),
		"exact-1000":                    q("topic", 1000, func(i int) string { return fmt.Sprintf("https://example.com/dos/exact/%d", i) }),
		"templates-100x20-no-prefix":    q("topic", 100, func(i int) string { return fmt.Sprintf("{a%d}", i) + strings.Repeat("{b}", 19) }),
		"templates-100-shared-by-all":   q("topic", 100, func(i int) string { return fmt.Sprintf("https://example.com/shared/%d/{x}", i) }),
		"patterns-100x40":               q("match_urlpattern", 100, func(i int) string { return fmt.Sprintf("https://example.com/users/%d/*", i) }),
		"mixed-900-exact-100-templates": q("topic", 1000, func(i int) string { return map[bool]string{true: tmpl(i), false: fmt.Sprintf("urn:x:%d", i)}[i < 100] }),
	}
}

// openBudgetRequest opens a subscription and returns the response once its headers
// are in.
func openBudgetRequest(b *testing.B, c *http.Client, target string) *http.Response {
	req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, target, nil)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	return resp
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkSubscribeBudget measures what one subscription request at or
// beyond the budget costs: time per request (hub and client together, so an
// upper bound on the hub's CPU when run with -cpu 1), heap retained per
// held request (MiB), and the heap left once every such client is gone,
// relative to before they came (heap-after/before).
func BenchmarkSubscribeBudget(b *testing.B) {
	for name, query := range budgetRequests() {
		b.Run(name, func(b *testing.B) {
			th := newTestHub(b, func(c *Config) { c.Anonymous = true; c.Heartbeat = 0 })
			c := benchClient(b)
			// A first request warms up the server's connection handling.
			warm := openBudgetRequest(b, c, th.url+"?topic=warm")
			_ = warm.Body.Close()
			eventually(b, "warm-up subscriber gone", func() bool { return th.h.Subscribers() == 0 })
			th.h.cache.Purge()
			target := th.url + "?" + query // the client's, live before and after
			before := heapInUse()
			var held []*http.Response
			status := 0
			b.ResetTimer()
			for b.Loop() {
				resp := openBudgetRequest(b, c, target)
				status = resp.StatusCode
				if status != http.StatusOK {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					continue
				}
				// Wait for the first line, which says the subscription is live.
				_, _ = bufio.NewReader(resp.Body).ReadString('\n')
				held = append(held, resp)
			}
			b.StopTimer()
			during := heapInUse()
			nHeld := len(held)
			for _, resp := range held {
				_ = resp.Body.Close()
			}
			clear(held) // the client's buffers are not the hub's
			c.CloseIdleConnections()
			eventually(b, "subscribers gone", func() bool { return th.h.Subscribers() == 0 })
			th.h.cache.Purge()
			time.Sleep(time.Second) // let the server notice closed connections
			after := heapInUse()
			if status != http.StatusOK {
				b.ReportMetric(0, "heap-MiB/held")
			} else {
				b.ReportMetric(float64(during-before)/float64(nHeld)/(1<<20), "heap-MiB/held")
			}
			b.ReportMetric(float64(after)/float64(before), "heap-after/before")
			b.ReportMetric(float64(before)/(1<<20), "heap-MiB-before")
			b.ReportMetric(float64(status), "status")
			runtime.KeepAlive(target)
		})
	}
}
