package hub

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchFsync are the appendfsync settings the cluster benchmarks run with:
// always (nothing acknowledged is ever lost, the setting redistest uses) and
// everysec (a crash of Redis may lose the last second).
var benchFsync = []string{"always", "everysec"}

// benchClient is an HTTP client that keeps enough idle connections for
// concurrent publishers (the default transport keeps two per host, which
// would measure TCP handshakes instead of the hub).
func benchClient(tb testing.TB) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// benchPublish posts one update and fails unless the hub answers 200.
func benchPublish(ctx context.Context, c *http.Client, hubURL, body, tok string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hubURL, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("publish: %d %s", resp.StatusCode, b)
	}
	return nil
}

// BenchmarkClusterPublish measures acknowledged publishes per second on a
// two-node cluster: concurrent publishers over HTTP, spread over both nodes,
// while one subscriber per node receives every update.
func BenchmarkClusterPublish(b *testing.B) {
	for _, fsync := range benchFsync {
		for _, publishers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("fsync=%s/publishers=%d", fsync, publishers), func(b *testing.B) {
				c := &testCluster{mod: func(c *Config) { c.Heartbeat = 0 }}
				c.start(b, "--appendfsync", fsync)
				nodes := []*clusterNode{c.addNode(b, nil), c.addNode(b, nil)}
				tok := legacyToken(b, []string{"*"}, []string{"*"})
				subs := make([]*stream, len(nodes))
				for i, n := range nodes {
					subs[i] = n.mustSubscribe(b, "topic=bench", bearer(tok))
				}
				var received atomic.Int64
				var wg sync.WaitGroup
				for _, s := range subs {
					wg.Go(func() {
						for range s.events {
							received.Add(1)
						}
					})
				}
				client := benchClient(b)
				body := url.Values{"topic": {"bench"}, "data": {strings.Repeat("x", 100)}}.Encode()

				var next atomic.Int64
				var pubs sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for p := range publishers {
					n := nodes[p%len(nodes)]
					pubs.Go(func() {
						for next.Add(1) <= int64(b.N) {
							if err := benchPublish(context.Background(), client, n.url, body, tok); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				pubs.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "updates/s")
				// Every update reaches both nodes' subscribers.
				deadline := time.Now().Add(30 * time.Second)
				for received.Load() < int64(len(subs)*b.N) && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				if got := received.Load(); got != int64(len(subs)*b.N) {
					b.Errorf("subscribers received %d events, want %d", got, len(subs)*b.N)
				}
				for _, s := range subs {
					s.cancel()
				}
				wg.Wait()
			})
		}
	}
}

// BenchmarkClusterDeliveryLatency measures, one update at a time, the time
// from the start of a publish on node A to the arrival of its SSE event at a
// subscriber of node B, and reports the median and 99th percentile.
func BenchmarkClusterDeliveryLatency(b *testing.B) {
	for _, fsync := range benchFsync {
		b.Run("fsync="+fsync, func(b *testing.B) {
			c := &testCluster{mod: func(c *Config) { c.Heartbeat = 0 }}
			c.start(b, "--appendfsync", fsync)
			a, nb := c.addNode(b, nil), c.addNode(b, nil)
			tok := legacyToken(b, []string{"*"}, []string{"*"})
			s := nb.mustSubscribe(b, "topic=bench", bearer(tok))
			client := benchClient(b)
			body := url.Values{"topic": {"bench"}, "data": {strings.Repeat("x", 100)}}.Encode()

			// Arrival times are taken as events are decoded, not after the
			// publish returns: B may receive the event before A answers.
			arrivals := make(chan time.Time, 1)
			go func() {
				for range s.events {
					arrivals <- time.Now()
				}
				close(arrivals)
			}()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if err := benchPublish(context.Background(), client, a.url, body, tok); err != nil {
					b.Fatal(err)
				}
				select {
				case at, ok := <-arrivals:
					if !ok {
						b.Fatal("stream ended")
					}
					lat = append(lat, at.Sub(start))
				case <-time.After(5 * time.Second):
					b.Fatal("no event on node B within 5s")
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			s.cancel()
			for range arrivals {
			}
		})
	}
}
