package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/historytest"
	"github.com/mercurectl/mercurectl/internal/history/redisstore/redistest"
)

// sameDeliveries fails tb unless every node's sink saw exactly want (same
// Seqs, same ids, same order).
func sameDeliveries(tb testing.TB, want []*history.Update, nodes ...*node) {
	tb.Helper()
	for i, n := range nodes {
		got := n.waitSeen(tb, len(want))
		if len(got) != len(want) {
			tb.Fatalf("node %d saw %d updates, want %d", i, len(got), len(want))
		}
		for j := range want {
			if got[j].Seq != want[j].Seq || got[j].ID != want[j].ID {
				tb.Fatalf("node %d, delivery %d: seq %d id %q, want seq %d id %q", i, j, got[j].Seq, got[j].ID, want[j].Seq, want[j].ID)
			}
		}
	}
}

func TestTwoNodesShareOneStream(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	prefix := newPrefix(t)
	a := startNode(t, srv, Options{Stream: prefix})
	b := startNode(t, srv, Options{Stream: prefix})

	var acked []*history.Update
	for i := range 10 {
		on := a
		if i%3 == 2 {
			on = b
		}
		u := historytest.NewUpdate(fmt.Sprintf("u%d", i))
		u.Type, u.Private, u.Retry, u.HasRetry = "t", i%2 == 0, uint64(i), true
		if err := on.Append(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, u)
	}
	for i, u := range acked {
		if u.Seq != uint64(i+1) {
			t.Fatalf("update %d got Seq %d: Seqs are not contiguous from 1", i, u.Seq)
		}
	}
	sameDeliveries(t, acked, a, b)
	// Every node decodes every field the same way.
	for i, u := range b.updates() {
		if d := historytest.SameUpdate(u, acked[i]); d != "" {
			t.Errorf("node b, update %d: %s", i, d)
		}
	}

	// A Last-Event-ID issued by one node resolves on the other.
	seq, found, err := b.Lookup(t.Context(), "u4")
	if err != nil || !found || seq != acked[4].Seq {
		t.Fatalf("Lookup on b of an id appended on a = %d, %v, %v; want %d", seq, found, err, acked[4].Seq)
	}
	got := historytest.ScanAll(t, b, seq, b.LastSeq())
	if want := []string{"u5", "u6", "u7", "u8", "u9"}; !slices.Equal(updateIDs(got), want) {
		t.Errorf("Scan on b after u4 = %q, want %q", updateIDs(got), want)
	}
	if a.LastSeq() != b.LastSeq() {
		t.Errorf("LastSeq a=%d b=%d", a.LastSeq(), b.LastSeq())
	}

	// A node that joins later starts after the tail, with the same history.
	c := startNode(t, srv, Options{Stream: prefix})
	if got := c.LastSeq(); got != acked[9].Seq {
		t.Errorf("LastSeq of a new node = %d, want %d", got, acked[9].Seq)
	}
	u := historytest.NewUpdate("late")
	if err := c.Append(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	sameDeliveries(t, append(slices.Clone(acked), u), a, b)
	sameDeliveries(t, []*history.Update{u}, c)
}

func updateIDs(us []*history.Update) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

func TestConcurrentAppendsFromThreeNodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	prefix := newPrefix(t)
	nodes := []*node{
		startNode(t, srv, Options{Stream: prefix}),
		startNode(t, srv, Options{Stream: prefix}),
		startNode(t, srv, Options{Stream: prefix}),
	}
	const perNode = 400
	var wg sync.WaitGroup
	acked := make([][]*history.Update, len(nodes))
	for i, n := range nodes {
		wg.Go(func() {
			us, err := historytest.Fill(n, fmt.Sprintf("n%d-", i), perNode)
			if err != nil {
				t.Error(err)
			}
			acked[i] = us
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	all := slices.Concat(acked...)
	slices.SortFunc(all, func(x, y *history.Update) int { return int(x.Seq) - int(y.Seq) })
	for i, u := range all {
		if u.Seq != uint64(i+1) {
			t.Fatalf("acknowledged Seqs are not 1..%d: position %d has %d", len(all), i, u.Seq)
		}
	}
	// One global order, seen identically by every node.
	sameDeliveries(t, all, nodes...)
	if got := historytest.ScanAll(t, nodes[2], 0, math.MaxUint64); !slices.Equal(updateIDs(got), updateIDs(all)) {
		t.Error("Scan disagrees with the deliveries")
	}
}

func TestRetentionIsSharedByTheNodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	prefix := newPrefix(t)
	r := history.Retention{MaxUpdates: 4}
	a := startNode(t, srv, Options{Stream: prefix, Retention: r})
	b := startNode(t, srv, Options{Stream: prefix, Retention: r})
	for i := range 10 {
		on := []*node{a, b}[i%2]
		if err := on.Append(t.Context(), historytest.NewUpdate(fmt.Sprintf("r%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"r6", "r7", "r8", "r9"}
	for name, n := range map[string]*node{"a": a, "b": b} {
		if got := updateIDs(historytest.ScanAll(t, n, 0, math.MaxUint64)); !slices.Equal(got, want) {
			t.Errorf("node %s retains %q, want %q", name, got, want)
		}
		if _, found, err := n.Lookup(t.Context(), "r5"); err != nil || found {
			t.Errorf("node %s: Lookup of an evicted id = %v, %v", name, found, err)
		}
		if seq, found, err := n.Lookup(t.Context(), "r6"); err != nil || !found || seq != 7 {
			t.Errorf("node %s: Lookup(r6) = %d, %v, %v; want 7", name, seq, found, err)
		}
	}
}

// A node whose reader lags behind a burst from another node, by more than
// the history size, still delivers every update: the stream keeps
// readerSlack entries beyond the retention for it.
func TestLaggingNodeMissesNothing(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	prefix := newPrefix(t)
	r := history.Retention{MaxUpdates: 5}
	a := startNode(t, srv, Options{Stream: prefix, Retention: r})
	release := make(chan struct{})
	b := &node{Store: openStore(t, srv, Options{Stream: prefix, Retention: r})}
	var once sync.Once
	if err := b.Start(func(u *history.Update) {
		once.Do(func() { <-release })
		b.sink(u)
	}); err != nil {
		t.Fatal(err)
	}
	us, err := historytest.Fill(a, "burst", 300)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(b.updates()); got != 0 {
		t.Fatalf("b delivered %d updates while its sink was blocked", got)
	}
	close(release)
	sameDeliveries(t, us, a, b)
	if got := historytest.ScanAll(t, b, 0, math.MaxUint64); len(got) != 5 {
		t.Errorf("Scan returned %d updates, want the 5 retained", len(got))
	}
}

// When entries disappear before a node read them (here trimmed by hand), the
// node goes on with the next ones and says how many it missed.
func TestReaderReportsTrimmedEntries(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	prefix := newPrefix(t)
	a := startNode(t, srv, Options{Stream: prefix})
	blocked, release := make(chan struct{}), make(chan struct{})
	log := newTestLog(t)
	b := &node{Store: openStore(t, srv, Options{Stream: prefix, Logger: log.logger()})}
	var once sync.Once
	if err := b.Start(func(u *history.Update) {
		once.Do(func() { close(blocked); <-release })
		b.sink(u)
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.Append(t.Context(), historytest.NewUpdate("first")); err != nil {
		t.Fatal(err)
	}
	<-blocked // b's reader holds "first" only
	for i := range 10 {
		if err := a.Append(t.Context(), historytest.NewUpdate(fmt.Sprintf("x%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Remove seqs 2..6 (x0..x4) behind the store's back.
	rc := rawClient(t, srv)
	if err := rc.XTrimMinID(t.Context(), "{"+prefix+"}:stream", "0-7").Err(); err != nil {
		t.Fatal(err)
	}
	close(release)
	got := b.waitSeen(t, 6)
	if want := []string{"first", "x5", "x6", "x7", "x8", "x9"}; !slices.Equal(updateIDs(got), want) {
		t.Fatalf("b delivered %q, want %q", updateIDs(got), want)
	}
	if !log.contains("missed=5") {
		t.Error("the gap was not logged")
	}
	// The id index healed: the trimmed ids are gone for good.
	if _, found, err := b.Lookup(t.Context(), "x0"); err != nil || found {
		t.Errorf("Lookup of a trimmed id = %v, %v", found, err)
	}
	if n, err := rc.ZCard(t.Context(), "{"+prefix+"}:ids").Result(); err != nil || n != 10 {
		t.Errorf("index holds %d members after the lookup healed one, want 10 (err %v)", n, err)
	}
}

// The stream and the id index stay bounded, together.
func TestTrimBoundsStreamAndIndex(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	clock := historytest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	prefix := newPrefix(t)
	s := startNode(t, srv, Options{Stream: prefix, Now: clock.Now, Retention: history.Retention{MaxUpdates: 10, MaxAge: time.Hour}})
	rc := rawClient(t, srv)
	sizes := func() (int64, int64) {
		t.Helper()
		x, err1 := rc.XLen(t.Context(), "{"+prefix+"}:stream").Result()
		z, err2 := rc.ZCard(t.Context(), "{"+prefix+"}:ids").Result()
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		return x, z
	}
	const n = readerSlack + 700
	if _, err := historytest.Fill(s, "b", n); err != nil {
		t.Fatal(err)
	}
	if x, z := sizes(); x != 10+readerSlack || z != x {
		t.Errorf("after %d appends: stream %d entries, index %d; want %d each", n, x, z, 10+readerSlack)
	}
	// Age: a quiet cluster still lets old updates go (the janitor's trim).
	clock.Advance(time.Hour + ageGrace + time.Second)
	s.trim(t.Context())
	if x, z := sizes(); x != 0 || z != 0 {
		t.Errorf("after expiry: stream %d entries, index %d; want 0", x, z)
	}
	u := historytest.NewUpdate("after")
	if err := s.Append(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if u.Seq != n+1 {
		t.Errorf("Seq after the stream emptied = %d, want %d", u.Seq, n+1)
	}
}

// A retention lowered on a large backlog is applied in bounded steps, in the
// background, until it holds.
func TestLoweredRetentionCatchesUp(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	prefix := newPrefix(t)
	s := startNode(t, srv, Options{Stream: prefix})
	if _, err := historytest.Fill(s, "o", readerSlack+3*trimBudget); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := startNode(t, srv, Options{Stream: prefix, Retention: history.Retention{MaxUpdates: 1}})
	if err := s2.Append(t.Context(), historytest.NewUpdate("one")); err != nil {
		t.Fatal(err)
	}
	rc := rawClient(t, srv)
	deadline := time.Now().Add(10 * time.Second)
	for {
		x, err := rc.XLen(t.Context(), "{"+prefix+"}:stream").Result()
		if err != nil {
			t.Fatal(err)
		}
		if x == 1+readerSlack {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream still holds %d entries, want %d", x, 1+readerSlack)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := updateIDs(historytest.ScanAll(t, s2, 0, math.MaxUint64)); !slices.Equal(got, []string{"one"}) {
		t.Errorf("retained %q", got)
	}
}

// If Redis loses its data (no persistence), Seqs still increase on every
// node, so that readers do not wait for Seqs they already passed.
func TestSeqsKeepIncreasingAfterDataLoss(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	prefix := newPrefix(t)
	a := startNode(t, srv, Options{Stream: prefix})
	b := startNode(t, srv, Options{Stream: prefix})
	us, err := historytest.Fill(a, "before", 20)
	if err != nil {
		t.Fatal(err)
	}
	sameDeliveries(t, us, a, b)
	if err := rawClient(t, srv).FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	u := historytest.NewUpdate("after")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := b.Append(ctx, u); err != nil {
		t.Fatal(err)
	}
	if u.Seq != 21 {
		t.Errorf("Seq after the data loss = %d, want 21", u.Seq)
	}
	sameDeliveries(t, append(us, u), a, b)
}

func TestAppendCanceledWhileWaitingForDelivery(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	release := make(chan struct{})
	defer close(release)
	s := openStore(t, srv, Options{})
	if err := s.Start(func(*history.Update) { <-release }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	u := historytest.NewUpdate("slow")
	start := time.Now()
	err := s.Append(ctx, u)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Append returned %s after its deadline", d)
	}
	// It was stored all the same (the error says so): the reader delivers it
	// once the sink moves on, and replays find it.
	if u.Seq != 1 {
		t.Errorf("Seq = %d, want 1", u.Seq)
	}
	if seq, found, err := s.Lookup(t.Context(), "slow"); err != nil || !found || seq != 1 {
		t.Errorf("Lookup = %d, %v, %v", seq, found, err)
	}
}

// Restarting redis-server: while it is down, appends fail promptly with
// ErrUnavailable and Ready fails; once it is back, nothing acknowledged is
// lost, and both readers resume, without duplicates.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	prefix := newPrefix(t)
	a := startNode(t, srv, Options{Stream: prefix})
	b := startNode(t, srv, Options{Stream: prefix})

	// Publishers on both nodes keep appending through the outage.
	var mu sync.Mutex
	var acked []*history.Update
	failures := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		on := []*node{a, b}[w%2]
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				u := historytest.NewUpdate(fmt.Sprintf("w%d-%d", w, i))
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := on.Append(ctx, u)
				cancel()
				mu.Lock()
				if err == nil {
					acked = append(acked, u)
				} else {
					if !errors.Is(err, history.ErrUnavailable) {
						t.Errorf("Append during the outage: %v (want ErrUnavailable)", err)
					}
					failures++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for ackedCount() < 200 {
		time.Sleep(5 * time.Millisecond)
	}
	srv.Kill()

	// Down: prompt failures, Ready reports it.
	u := historytest.NewUpdate("while-down")
	start := time.Now()
	err := a.Append(t.Context(), u)
	if !errors.Is(err, history.ErrUnavailable) {
		t.Errorf("Append while Redis is down = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Append while Redis is down took %s", d)
	}
	if err := b.Ready(t.Context()); !errors.Is(err, history.ErrUnavailable) {
		t.Errorf("Ready while Redis is down = %v, want ErrUnavailable", err)
	}
	if _, _, err := b.Lookup(t.Context(), "w0-0"); !errors.Is(err, history.ErrUnavailable) {
		t.Errorf("Lookup while Redis is down = %v, want ErrUnavailable", err)
	}
	time.Sleep(300 * time.Millisecond)

	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for a.Ready(t.Context()) != nil || b.Ready(t.Context()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("stores not ready 10s after Redis came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := ackedCount()
	deadline = time.Now().Add(10 * time.Second)
	for ackedCount() < before+200 {
		if time.Now().After(deadline) {
			t.Fatal("appends did not resume after Redis came back")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	// Every acknowledged update is in the history, as acknowledged.
	all := historytest.ScanAll(t, a, 0, math.MaxUint64)
	bySeq := make(map[uint64]*history.Update, len(all))
	for i, u := range all {
		if u.Seq != uint64(i+1) {
			t.Fatalf("history has a hole or a duplicate at position %d (seq %d)", i, u.Seq)
		}
		bySeq[u.Seq] = u
	}
	for _, u := range acked {
		if got := bySeq[u.Seq]; got == nil || got.ID != u.ID {
			t.Fatalf("acknowledged update %q (seq %d) is not in the history after the restart", u.ID, u.Seq)
		}
	}
	// Both readers resumed where they were and delivered the history
	// exactly: no loss, no duplicate.
	sameDeliveries(t, all, a, b)
	t.Logf("%d acknowledged, %d failed during the outage, %d in the history", len(acked), failures, len(all))
}
