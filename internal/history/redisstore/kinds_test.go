package redisstore

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/historytest"
	"github.com/mercurectl/mercurectl/internal/history/redisstore/redistest"
)

// writeLegacy appends us to {prefix}:stream the way the store did before
// subscription events had a stream of their own: fields i, t and u only,
// both kinds in one stream, Seqs 1, 2, 3…
func writeLegacy(t *testing.T, srv *redistest.Server, prefix string, us []*history.Update) {
	t.Helper()
	rc := rawClient(t, srv)
	for i, u := range us {
		u.Seq = uint64(i + 1)
		sid := fmt.Sprintf("0-%d", u.Seq)
		if err := rc.XAdd(t.Context(), &redis.XAddArgs{
			Stream: "{" + prefix + "}:stream", ID: sid,
			Values: []any{fieldID, u.ID, fieldTime, encodeTime(u.Time), fieldUpdate, encodeUpdate(u)},
		}).Err(); err != nil {
			t.Fatal(err)
		}
		member := fmt.Sprintf("%d:%s%016x", len(u.ID), u.ID, u.Seq)
		if err := rc.ZAdd(t.Context(), "{"+prefix+"}:ids", redis.Z{Member: member}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rc.Set(t.Context(), "{"+prefix+"}:seq", len(us), 0).Err(); err != nil {
		t.Fatal(err)
	}
}

// legacyMix is what an earlier version stored for three updates and a
// subscriber that came and went: its events were ordinary updates.
func legacyMix() []*history.Update {
	var us []*history.Update
	for i := range 8 {
		u := historytest.NewUpdate(fmt.Sprintf("old%d", i))
		if i >= 3 && i < 6 {
			u = historytest.NewEvent(fmt.Sprintf("oldev%d", i))
			u.SubscriptionEvent = false // that version did not tell them apart
		}
		u.Time = time.Date(2030, 1, 1, 0, 0, i, 0, time.UTC)
		us = append(us, u)
	}
	return us
}

func TestStreamFromBeforeKindsReplaysAsItWas(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	prefix := newPrefix(t)
	old := legacyMix()
	writeLegacy(t, srv, prefix, old)
	r := history.Retention{MaxUpdates: uint64(len(old))}
	s := startNode(t, srv, Options{Stream: prefix, Retention: r})
	if got := s.LastSeq(); got != uint64(len(old)) {
		t.Fatalf("LastSeq = %d, want %d", got, len(old))
	}
	got := historytest.ScanAll(t, s, 0, math.MaxUint64)
	if len(got) != len(old) {
		t.Fatalf("replayed %d updates, want %d", len(got), len(old))
	}
	for i := range old {
		if d := historytest.SameUpdate(got[i], old[i]); d != "" {
			t.Errorf("update %d: %s", i, d)
		}
	}
	// New subscription events do not push the old entries out: they all
	// count as published updates, exactly as many as the bound.
	for i := range 20 {
		if err := s.Append(t.Context(), historytest.NewEvent(fmt.Sprintf("new%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	got = historytest.ScanAll(t, s, 0, math.MaxUint64)
	if len(got) != 2*len(old) || got[0].ID != "old0" || got[len(old)-1].ID != "old7" {
		t.Fatalf("after 20 events retained %d updates from %q; want the %d old ones and as many events", len(got), updateIDs(got)[:1], len(old))
	}
	if seq, found, err := s.Lookup(t.Context(), "old0"); err != nil || !found || seq != 1 {
		t.Errorf("Lookup(old0) = %d, %v, %v; want 1", seq, found, err)
	}
	// A published update evicts the oldest of them, by count, exactly.
	if err := s.Append(t.Context(), historytest.NewUpdate("new-update")); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.Lookup(t.Context(), "old0"); err != nil || found {
		t.Errorf("Lookup(old0) after one more published update = %v, %v; want evicted", found, err)
	}
	if got := historytest.ScanAll(t, s, 0, math.MaxUint64); got[0].ID != "old1" {
		t.Errorf("oldest retained = %q, want old1", got[0].ID)
	}
}

// TestStreamFromBeforeKindsUnderAByteBound pins the one approximation of
// scripts.go: entries from before the counters are counted alone, on top of
// the bytes appended since, so they go together once those reach the bound.
func TestStreamFromBeforeKindsUnderAByteBound(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	prefix := newPrefix(t)
	old := legacyMix()
	writeLegacy(t, srv, prefix, old)
	// Ten new updates fill the bound, and any old update fits it alone.
	unit := history.Size(historytest.NewUpdate("new0"))
	r := history.Retention{MaxBytes: 10 * unit}
	for _, u := range old {
		if history.Size(u) > r.MaxBytes {
			t.Fatalf("old update %s is %d bytes: too large for this test", u.ID, history.Size(u))
		}
	}
	s := startNode(t, srv, Options{Stream: prefix, Retention: r})
	if got := historytest.ScanAll(t, s, 0, math.MaxUint64); len(got) != len(old) {
		t.Fatalf("retained %d of the old updates, want all %d (each fits the bound alone)", len(got), len(old))
	}
	var want []string
	for i := range 9 {
		id := fmt.Sprintf("new%d", i)
		if err := s.Append(t.Context(), historytest.NewUpdate(id)); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	// Nine new updates and one old one fit; the old events do not.
	if got := historytest.ScanAll(t, s, 0, math.MaxUint64); len(got) != 5+9 || got[0].ID != "old0" {
		t.Errorf("after nine new updates retained %q, want the five old updates and the new ones", updateIDs(got))
	}
	for i := 9; i < 10; i++ {
		id := fmt.Sprintf("new%d", i)
		if err := s.Append(t.Context(), historytest.NewUpdate(id)); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	if got := updateIDs(historytest.ScanAll(t, s, 0, math.MaxUint64)); !slices.Equal(got, want) {
		t.Errorf("retained %q, want the ten new updates only", got)
	}
}

// A node that lags behind a burst of both kinds, by several reads' worth,
// delivers every update once, in Seq order: the reader merges the two
// streams without overtaking one that a read cut short.
func TestLaggingNodeMergesBothStreams(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	prefix := newPrefix(t)
	log := newTestLog(t)
	a := startNode(t, srv, Options{Stream: prefix})
	release := make(chan struct{})
	b := &node{Store: openStore(t, srv, Options{Stream: prefix, Logger: log.logger()})}
	var once sync.Once
	if err := b.Start(func(u *history.Update) {
		once.Do(func() { <-release })
		b.sink(u)
	}); err != nil {
		t.Fatal(err)
	}
	// Runs of each kind, longer and shorter than one read.
	var want []*history.Update
	for run, n := range []int{3, readCount + 7, 1, 2*readCount + 1, readCount, 5, readCount - 1, 2} {
		for i := range n {
			u := historytest.NewUpdate(fmt.Sprintf("r%d-%d", run, i))
			if run%2 == 1 {
				u = historytest.NewEvent(fmt.Sprintf("r%d-%d", run, i))
			}
			if err := a.Append(t.Context(), u); err != nil {
				t.Fatal(err)
			}
			want = append(want, u)
		}
	}
	close(release)
	sameDeliveries(t, want, a, b)
	for i, u := range b.updates() {
		if u.SubscriptionEvent != want[i].SubscriptionEvent {
			t.Fatalf("delivery %d (%s) has the wrong kind", i, u.ID)
		}
	}
	if log.contains("missed") || log.contains("skipping") {
		t.Errorf("the lagging node logged a loss: %q", log.msgs)
	}
}

// Each stream stays within its bounds plus the readers' slack, in entries
// and in bytes, and events never shorten the stream of published updates.
func TestTrimBoundsEachStream(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	prefix := newPrefix(t)
	rc := rawClient(t, srv)
	xlen := func(name string) int64 {
		t.Helper()
		n, err := rc.XLen(t.Context(), "{"+prefix+"}:"+name).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	const big = 1 << 20
	s := startNode(t, srv, Options{Stream: prefix, Retention: history.Retention{MaxUpdates: 10, MaxBytes: 3 * big}})
	if _, err := historytest.Fill(s, "p", 50); err != nil {
		t.Fatal(err)
	}
	for i := range readerSlack + 100 {
		if err := s.Append(t.Context(), historytest.NewEvent(fmt.Sprintf("e%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if got := xlen("stream"); got != 50 {
		t.Errorf("the stream of published updates holds %d entries after the events, want all 50 (10 retained, the rest slack)", got)
	}
	if got, want := xlen("events"), int64(10+readerSlack); got != want {
		t.Errorf("the stream of events holds %d entries, want %d", got, want)
	}
	// Bytes: updates of 1 MiB each, far more than the bound and the slack.
	for i := range 3 + readerSlackBytes/big + 4 {
		u := historytest.NewUpdate(fmt.Sprintf("big%d", i))
		u.Data = strings.Repeat("x", big-200)
		if err := s.Append(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := xlen("stream"), int64(3+readerSlackBytes/big+1); got > want {
		t.Errorf("the stream of published updates holds %d entries of about 1 MiB, want at most %d", got, want)
	}
	if got := historytest.ScanAll(t, s, 0, math.MaxUint64); len(got) != 10+3 || got[10].ID[:3] != "big" {
		t.Errorf("retained %d updates, want 10 events and the 3 newest big updates", len(got))
	}
}
