package redisstore

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/historytest"
	"github.com/mercurectl/mercurectl/internal/history/redisstore/redistest"
)

// benchRedisArgs are extra redis-server arguments for the benchmarks. By
// default the server fsyncs every write (appendfsync always, the setting
// that loses nothing acknowledged); -redis.fsync=everysec measures the
// store without the disk.
var benchRedisArgs []string

func init() {
	flag.Func("redis.fsync", "appendfsync setting of the benchmarks' redis-server (always, everysec, no)", func(v string) error {
		benchRedisArgs = []string{"--appendfsync", v}
		return nil
	})
}

// BenchmarkAppend measures acknowledged publishes (script run + local
// delivery) with 1 and 16 concurrent publishers on one node, and with 16
// publishers spread over two nodes of one cluster.
func BenchmarkAppend(b *testing.B) {
	srv := redistest.Start(b, "", benchRedisArgs...)
	for _, bc := range []struct {
		name       string
		nodes      int
		publishers int
	}{
		{"nodes=1/publishers=1", 1, 1},
		{"nodes=1/publishers=16", 1, 16},
		{"nodes=2/publishers=16", 2, 16},
	} {
		b.Run(bc.name, func(b *testing.B) {
			prefix := newPrefix(b)
			nodes := make([]*Store, bc.nodes)
			for i := range nodes {
				nodes[i] = openStore(b, srv, Options{Stream: prefix, Retention: history.Retention{MaxUpdates: 100_000}})
				if err := nodes[i].Start(func(*history.Update) {}); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for p := range bc.publishers {
				s := nodes[p%len(nodes)]
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						u := historytest.NewUpdate("bench")
						if err := s.Append(context.Background(), u); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
		})
	}
}

// BenchmarkCrossNodeLatency measures the time from the start of an Append
// on node A to the delivery of that update to node B's sink.
func BenchmarkCrossNodeLatency(b *testing.B) {
	srv := redistest.Start(b, "", benchRedisArgs...)
	prefix := newPrefix(b)
	a := openStore(b, srv, Options{Stream: prefix, Retention: history.Retention{MaxUpdates: 100_000}})
	if err := a.Start(func(*history.Update) {}); err != nil {
		b.Fatal(err)
	}
	got := make(chan time.Time, 1)
	nb := openStore(b, srv, Options{Stream: prefix})
	if err := nb.Start(func(*history.Update) { got <- time.Now() }); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := a.Append(context.Background(), historytest.NewUpdate(fmt.Sprint(i))); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-got).Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
