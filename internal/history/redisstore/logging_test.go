package redisstore

import (
	"context"
	"log/slog"
	"testing"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/redisstore/redistest"
)

// debugLog is a testLog that also records debug lines, where the Redis
// library's own lines go.
func debugLog(tb testing.TB) (*testLog, *slog.Logger) {
	l := newTestLog(tb)
	return l, slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Two stores in one process keep their own loggers: the library's line about
// a failed dial of one store's client reaches that store's logger only, and
// opening the second store does not take the first one's lines.
func TestLibraryLogLinesReachTheirOwnStore(t *testing.T) {
	t.Parallel()
	srvA := redistest.Start(t, "")
	srvB := redistest.Start(t, "")
	logA, la := debugLog(t)
	logB, lb := debugLog(t)
	a := openStore(t, srvA, Options{Logger: la})
	b := openStore(t, srvB, Options{Logger: lb})
	if err := a.Start(func(*history.Update) {}); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(func(*history.Update) {}); err != nil {
		t.Fatal(err)
	}

	srvA.Kill()
	// The first append may fail on the broken pooled connection; the next
	// ones must dial, and the dial fails.
	for range 3 {
		if err := a.Append(t.Context(), &history.Update{ID: "x", Topics: []string{"t"}}); err == nil {
			t.Fatal("Append with redis down succeeded")
		}
	}
	if !logA.contains("component=go-redis") || !logA.contains("failed to dial") {
		t.Errorf("store A's logger got no library line about its failed dial:\n%q", logA.msgs)
	}
	if logB.contains("failed to dial") {
		t.Errorf("store B's logger got store A's library line:\n%q", logB.msgs)
	}
}

// A line the library writes without a store's context goes to every open
// store, and no longer to a store once it is closed.
func TestUnattributedLibraryLinesReachEveryOpenStore(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	logA, la := debugLog(t)
	logB, lb := debugLog(t)
	a := openStore(t, srv, Options{Logger: la})
	_ = openStore(t, srv, Options{Logger: lb})

	logRouter{}.Printf(context.Background(), "background line %d", 1)
	if !logA.contains("background line 1") || !logB.contains("background line 1") {
		t.Errorf("an unattributed line did not reach both stores: A %q, B %q", logA.msgs, logB.msgs)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	logRouter{}.Printf(context.Background(), "background line %d", 2)
	if logA.contains("background line 2") {
		t.Errorf("a closed store still receives library lines: %q", logA.msgs)
	}
	if !logB.contains("background line 2") {
		t.Errorf("the open store lost an unattributed line: %q", logB.msgs)
	}
}
