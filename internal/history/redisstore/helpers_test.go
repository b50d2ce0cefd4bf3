package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/redisstore/redistest"
)

var prefixes atomic.Int64

// newPrefix returns a key prefix no other store of this test binary uses.
func newPrefix(tb testing.TB) string {
	name := strings.NewReplacer("/", ".", " ", "_").Replace(tb.Name())
	return fmt.Sprintf("%s.%d", name, prefixes.Add(1))
}

// testLogger returns a logger that writes warnings and errors to tb's log
// until tb ends (and drops them afterwards, instead of panicking), and
// remembers every message for assertions.
type testLog struct {
	mu   sync.Mutex
	tb   testing.TB
	done bool
	msgs []string
}

func newTestLog(tb testing.TB) *testLog {
	l := &testLog{tb: tb}
	tb.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, string(p))
	if !l.done {
		l.tb.Logf("%s", strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func (l *testLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func (l *testLog) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// openStore opens a store on srv, closed when tb ends. opts.Stream "" gets a
// fresh prefix; opts.Logger nil logs to tb.
func openStore(tb testing.TB, srv *redistest.Server, opts Options) *Store {
	tb.Helper()
	if opts.Stream == "" {
		opts.Stream = newPrefix(tb)
	}
	if opts.Logger == nil {
		opts.Logger = newTestLog(tb).logger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, srv.DSN(), opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// node is a started store with a sink that records what it receives.
type node struct {
	*Store
	mu   sync.Mutex
	seen []*history.Update
	// ch, when set, receives every update too.
	ch chan *history.Update
}

func startNode(tb testing.TB, srv *redistest.Server, opts Options) *node {
	tb.Helper()
	n := &node{Store: openStore(tb, srv, opts)}
	if err := n.Start(n.sink); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	return n
}

func (n *node) sink(u *history.Update) {
	n.mu.Lock()
	n.seen = append(n.seen, u)
	ch := n.ch
	n.mu.Unlock()
	if ch != nil {
		ch <- u
	}
}

func (n *node) updates() []*history.Update {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*history.Update(nil), n.seen...)
}

// waitSeen waits until n's sink has seen at least count updates.
func (n *node) waitSeen(tb testing.TB, count int) []*history.Update {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := n.updates()
		if len(got) >= count {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("sink saw %d updates after 10s, want %d", len(got), count)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawClient returns a plain client for srv, to inspect or tamper with keys.
func rawClient(tb testing.TB, srv *redistest.Server) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: srv.Addr(), MaxRetries: -1})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}
