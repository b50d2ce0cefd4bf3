// Package historytest is the conformance suite for history.Store
// implementations. Every store (memory, bolt, Redis) runs it from its own
// tests, so that the hub can rely on the same contract whatever the transport:
//
//	func TestConformance(t *testing.T) {
//		historytest.Run(t, func(t *testing.T, r history.Retention) history.Store {
//			return history.NewMemory(r, nil)
//		})
//	}
//
// The suite starts every store it opens (with a sink of its own) and closes
// it at the end of the subtest; openers must return a new, empty store that
// has not been started.
package historytest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
)

// Opener returns a new, empty, not yet started store with retention r.
type Opener func(t *testing.T, r history.Retention) history.Store

// ClockOpener is an Opener for stores whose clock can be injected: now is the
// store's only source of time.
type ClockOpener func(t *testing.T, r history.Retention, now func() time.Time) history.Store

// Location returns an opener bound to one durable location (a file, a key
// prefix): every call opens a store over the data that the previous,
// closed, store left there.
type Location func(t *testing.T) Opener

// Run runs the conformance suite on the stores that open returns.
func Run(t *testing.T, open Opener) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"Empty", testEmpty},
		{"AppendAssignsSeqAndTime", testAppendAssignsSeqAndTime},
		{"RoundTrip", testRoundTrip},
		{"SinkOrderAndAck", testSinkOrderAndAck},
		{"SinkSeesScannable", testSinkSeesScannable},
		{"LookupDuplicates", testLookupDuplicates},
		{"LookupDuplicateAfterEviction", testLookupDuplicateAfterEviction},
		{"ScanBounds", testScanBounds},
		{"ScanStreamsLargeRange", testScanStreamsLargeRange},
		{"ScanStopsOnError", testScanStopsOnError},
		{"ScanContext", testScanContext},
		{"ScanWhileAppending", testScanWhileAppending},
		{"RetentionByCount", testRetentionByCount},
		{"RetentionByAge", testRetentionByAge},
		{"RetentionByBytes", testRetentionByBytes},
		{"EventsNeverEvictUpdates", testEventsNeverEvictUpdates},
		{"LookupDuplicateAcrossKinds", testLookupDuplicateAcrossKinds},
		{"ConcurrentAppends", testConcurrentAppends},
		{"AppendCanceledContext", testAppendCanceledContext},
		{"Close", testClose},
		{"CloseDuringAppends", testCloseDuringAppends},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open)
		})
	}
}

// RunClock runs the tests that need a controlled clock: stamping and
// retention by age, deterministically.
func RunClock(t *testing.T, open ClockOpener) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, ClockOpener)
	}{
		{"TimeFromClock", testTimeFromClock},
		{"AgeEvictsWithoutAppend", testAgeEvictsWithoutAppend},
		{"AgeKeepsLaterDuplicate", testAgeKeepsLaterDuplicate},
		{"AgeAndCount", testAgeAndCount},
		{"AgeAppliesToEvents", testAgeAppliesToEvents},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open)
		})
	}
}

// RunRestart runs the tests for durable stores: what one store appended, the
// next one opened at the same location finds.
func RunRestart(t *testing.T, loc Location) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, Location)
	}{
		{"ReopenKeepsHistory", testReopenKeepsHistory},
		{"ReopenAppliesRetention", testReopenAppliesRetention},
		{"ReopenKeepsKinds", testReopenKeepsKinds},
		{"ReopenKeepsByteCount", testReopenKeepsByteCount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, loc)
		})
	}
}

// Clock is a manual clock for stores with an injectable one.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// recorder is a sink that remembers what it was given.
type recorder struct {
	mu   sync.Mutex
	seen []*history.Update
}

func (r *recorder) sink(u *history.Update) {
	r.mu.Lock()
	r.seen = append(r.seen, u)
	r.mu.Unlock()
}

func (r *recorder) updates() []*history.Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

func (r *recorder) last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) == 0 {
		return 0
	}
	return r.seen[len(r.seen)-1].Seq
}

// start opens a store, starts it with a recorder and closes it when t ends.
func start(t *testing.T, open Opener, r history.Retention) (history.Store, *recorder) {
	t.Helper()
	s := open(t, r)
	return started(t, s)
}

func started(t *testing.T, s history.Store) (history.Store, *recorder) {
	t.Helper()
	rec := &recorder{}
	if err := s.Start(rec.sink); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, rec
}

// NewUpdate returns a typical update with the given id.
func NewUpdate(id string) *history.Update {
	return &history.Update{
		ID:     id,
		Topics: []string{"https://example.com/books/" + id},
		Data:   "data of " + id,
	}
}

func mustAppend(t *testing.T, s history.Store, u *history.Update) *history.Update {
	t.Helper()
	if err := s.Append(t.Context(), u); err != nil {
		t.Fatalf("Append(%q): %v", u.ID, err)
	}
	return u
}

func appendIDs(t *testing.T, s history.Store, ids ...string) []*history.Update {
	t.Helper()
	out := make([]*history.Update, len(ids))
	for i, id := range ids {
		out[i] = mustAppend(t, s, NewUpdate(id))
	}
	return out
}

// fill appends n updates from 16 goroutines and returns them in Seq order.
// Concurrency lets group-committing stores fill quickly.
func fill(t *testing.T, s history.Store, prefix string, n int) []*history.Update {
	t.Helper()
	us, err := Fill(s, prefix, n)
	if err != nil {
		t.Fatal(err)
	}
	return us
}

// Fill appends n updates with ids prefix+"%06d" from 16 goroutines and
// returns them in Seq order. It may be called from any goroutine.
func Fill(s history.Store, prefix string, n int) ([]*history.Update, error) {
	const workers = 16
	out := make([]*history.Update, n)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				u := NewUpdate(fmt.Sprintf("%s%06d", prefix, i))
				if err := s.Append(context.Background(), u); err != nil {
					errs <- fmt.Errorf("Append(%q): %w", u.ID, err)
					return
				}
				out[i] = u
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *history.Update) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// ScanAll returns what s.Scan(after, until) yields, failing t on error.
func ScanAll(t testing.TB, s history.Store, after, until uint64) []*history.Update {
	t.Helper()
	var out []*history.Update
	if err := s.Scan(context.Background(), after, until, func(u *history.Update) error {
		out = append(out, u)
		return nil
	}); err != nil {
		t.Fatalf("Scan(%d, %d): %v", after, until, err)
	}
	return out
}

func ids(us []*history.Update) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

func seqs(us []*history.Update) []uint64 {
	out := make([]uint64, len(us))
	for i, u := range us {
		out[i] = u.Seq
	}
	return out
}

func wantLookup(t *testing.T, s history.Store, id string, want uint64, wantFound bool) {
	t.Helper()
	seq, found, err := s.Lookup(t.Context(), id)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", id, err)
	}
	if found != wantFound || seq != want && wantFound {
		t.Fatalf("Lookup(%q) = %d, %v; want %d, %v", id, seq, found, want, wantFound)
	}
}

// SameUpdate reports how got differs from want ("" when equal): every field,
// with times compared as instants and nil and empty topic lists alike.
func SameUpdate(got, want *history.Update) string {
	var diffs []string
	if got.Seq != want.Seq {
		diffs = append(diffs, fmt.Sprintf("Seq %d, want %d", got.Seq, want.Seq))
	}
	if got.ID != want.ID {
		diffs = append(diffs, fmt.Sprintf("ID %q, want %q", got.ID, want.ID))
	}
	if !slices.Equal(got.Topics, want.Topics) {
		diffs = append(diffs, fmt.Sprintf("Topics %q, want %q", got.Topics, want.Topics))
	}
	if got.Data != want.Data {
		diffs = append(diffs, fmt.Sprintf("Data %q, want %q", got.Data, want.Data))
	}
	if got.Type != want.Type {
		diffs = append(diffs, fmt.Sprintf("Type %q, want %q", got.Type, want.Type))
	}
	if got.Retry != want.Retry || got.HasRetry != want.HasRetry {
		diffs = append(diffs, fmt.Sprintf("Retry %d/%v, want %d/%v", got.Retry, got.HasRetry, want.Retry, want.HasRetry))
	}
	if got.Private != want.Private {
		diffs = append(diffs, fmt.Sprintf("Private %v, want %v", got.Private, want.Private))
	}
	if got.SubscriptionEvent != want.SubscriptionEvent {
		diffs = append(diffs, fmt.Sprintf("SubscriptionEvent %v, want %v", got.SubscriptionEvent, want.SubscriptionEvent))
	}
	if !got.Time.Equal(want.Time) {
		diffs = append(diffs, fmt.Sprintf("Time %v, want %v", got.Time, want.Time))
	}
	return strings.Join(diffs, "; ")
}

func testEmpty(t *testing.T, open Opener) {
	s, _ := start(t, open, history.Retention{})
	if got := s.LastSeq(); got != 0 {
		t.Errorf("LastSeq = %d, want 0", got)
	}
	wantLookup(t, s, "nope", 0, false)
	if got := ScanAll(t, s, 0, math.MaxUint64); len(got) != 0 {
		t.Errorf("Scan of an empty store = %q", ids(got))
	}
	if err := s.Ready(t.Context()); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

func testAppendAssignsSeqAndTime(t *testing.T, open Opener) {
	s, _ := start(t, open, history.Retention{})
	before := time.Now()
	a := mustAppend(t, s, NewUpdate("a"))
	after := time.Now()
	if a.Seq == 0 {
		t.Fatal("Seq = 0 after Append")
	}
	// The store stamps a zero Time with its clock; allow for coarse clocks.
	if a.Time.IsZero() || a.Time.Before(before.Add(-time.Second)) || a.Time.After(after.Add(time.Second)) {
		t.Errorf("Time = %v, want about %v", a.Time, before)
	}
	set := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	b := NewUpdate("b")
	b.Time = set
	mustAppend(t, s, b)
	if !b.Time.Equal(set) {
		t.Errorf("Append changed a set Time to %v", b.Time)
	}
	if b.Seq <= a.Seq {
		t.Errorf("Seq %d after %d: not increasing", b.Seq, a.Seq)
	}
	got := ScanAll(t, s, 0, math.MaxUint64)
	if len(got) != 2 || !got[1].Time.Equal(set) {
		t.Fatalf("Scan = %v", got)
	}
}

func testRoundTrip(t *testing.T, open Opener) {
	s, _ := start(t, open, history.Retention{})
	big := strings.Repeat("0123456789abcdef", 70000) // > 1 MiB, several pages
	in := []*history.Update{
		{ID: "full", Topics: []string{"https://example.com/a", "https://example.com/b/{id}", "urn:x"},
			Data: "line 1\nline 2\r\n\nline 4", Type: "custom-type", Retry: 1500, HasRetry: true, Private: true},
		{ID: "zero-retry", Topics: []string{"t"}, Retry: 0, HasRetry: true},
		{ID: "", Topics: []string{"empty id"}, Data: ""},
		{ID: "unicodé ✓ 日本", Topics: []string{"/ü/🙂"}, Data: "😀 ünïcødé"},
		{ID: "no-topics"},
		{ID: "big", Topics: []string{"big"}, Data: big},
		{ID: "max-retry", Topics: []string{"t"}, Retry: math.MaxUint64, HasRetry: true,
			Time: time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.UTC)},
	}
	want := make([]history.Update, len(in))
	for i, u := range in {
		mustAppend(t, s, u)
		want[i] = *u
		want[i].Topics = slices.Clone(u.Topics)
	}
	got := ScanAll(t, s, 0, math.MaxUint64)
	if len(got) != len(want) {
		t.Fatalf("Scan returned %d updates, want %d", len(got), len(want))
	}
	for i := range want {
		if d := SameUpdate(got[i], &want[i]); d != "" {
			t.Errorf("update %q: %s", want[i].ID, d)
		}
	}
}

func testSinkOrderAndAck(t *testing.T, open Opener) {
	s, rec := start(t, open, history.Retention{})
	var prev uint64
	for i := range 50 {
		u := mustAppend(t, s, NewUpdate(fmt.Sprintf("u%d", i)))
		// Append returns only after the sink got u.
		if got := rec.last(); got != u.Seq {
			t.Fatalf("after Append(seq %d) the sink's last seq is %d", u.Seq, got)
		}
		if got := s.LastSeq(); got != u.Seq {
			t.Fatalf("after Append(seq %d) LastSeq = %d", u.Seq, got)
		}
		if u.Seq <= prev {
			t.Fatalf("Seq %d after %d", u.Seq, prev)
		}
		prev = u.Seq
	}
	seen := rec.updates()
	if len(seen) != 50 {
		t.Fatalf("sink saw %d updates, want 50", len(seen))
	}
	for i, u := range seen {
		if u.ID != fmt.Sprintf("u%d", i) {
			t.Fatalf("sink update %d has id %q", i, u.ID)
		}
	}
}

// testSinkSeesScannable checks that whatever the sink saw, Scan returns: a
// store that delivered before making the update readable would lose it for a
// subscriber replaying in between.
func testSinkSeesScannable(t *testing.T, open Opener) {
	s := open(t, history.Retention{})
	delivered := make(chan *history.Update, 1000)
	if err := s.Start(func(u *history.Update) { delivered <- u }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		if _, err := Fill(s, "s", 400); err != nil {
			t.Error(err)
		}
	})
	checked := 0
	finished := (<-chan struct{})(done)
	for checked < 400 {
		select {
		case u := <-delivered:
			got := ScanAll(t, s, u.Seq-1, u.Seq)
			if len(got) != 1 || got[0].ID != u.ID {
				t.Fatalf("sink got seq %d (%q) but Scan(%d, %d) = %q", u.Seq, u.ID, u.Seq-1, u.Seq, ids(got))
			}
			checked++
		case <-finished:
			finished = nil // all Appends returned: the rest is in the channel
			if len(delivered) < 400-checked {
				t.Fatalf("only %d of 400 updates reached the sink", checked)
			}
		}
	}
	wg.Wait()
}

func testLookupDuplicates(t *testing.T, open Opener) {
	s, _ := start(t, open, history.Retention{})
	us := appendIDs(t, s, "a", "b", "a", "c", "b", "a")
	// docs/protocol.md#duplicate-ids: duplicate ids resolve to the earliest entry.
	wantLookup(t, s, "a", us[0].Seq, true)
	wantLookup(t, s, "b", us[1].Seq, true)
	wantLookup(t, s, "c", us[3].Seq, true)
	wantLookup(t, s, "d", 0, false)
	wantLookup(t, s, "", 0, false)
	// Prefixes and extensions of stored ids are other ids.
	wantLookup(t, s, "aa", 0, false)
	appendIDs(t, s, "ab", "a\x01")
	wantLookup(t, s, "a", us[0].Seq, true)
	// Everything after the earliest duplicate is replayed.
	if got := ids(ScanAll(t, s, us[0].Seq, s.LastSeq())); !slices.Equal(got, []string{"b", "a", "c", "b", "a", "ab", "a\x01"}) {
		t.Errorf("Scan after the earliest duplicate = %q", got)
	}
}

func testLookupDuplicateAfterEviction(t *testing.T, open Opener) {
	s, _ := start(t, open, history.Retention{MaxUpdates: 3})
	us := appendIDs(t, s, "x", "y", "x", "z")
	// "x"@1 is evicted; "x"@3 is still retained and is now the earliest.
	wantLookup(t, s, "x", us[2].Seq, true)
	appendIDs(t, s, "w", "v")
	// Now "x"@3 is evicted too.
	wantLookup(t, s, "x", 0, false)
	wantLookup(t, s, "z", us[3].Seq, true)
}

func testScanBounds(t *testing.T, open Opener) {
	s, _ := start(t, open, history.Retention{})
	us := appendIDs(t, s, "a", "b", "c", "d", "e")
	first, last := us[0].Seq, us[4].Seq
	tests := []struct {
		after, until uint64
		want         []string
	}{
		{0, math.MaxUint64, []string{"a", "b", "c", "d", "e"}},
		{0, last, []string{"a", "b", "c", "d", "e"}},
		{first, last, []string{"b", "c", "d", "e"}},
		{us[1].Seq, us[3].Seq, []string{"c", "d"}},
		{us[2].Seq, us[2].Seq, nil},
		{us[3].Seq, us[1].Seq, nil},
		{last, math.MaxUint64, nil},
		{last + 10, math.MaxUint64, nil},
		{0, first - 1, nil},
		{0, first, []string{"a"}},
		{us[3].Seq, us[4].Seq, []string{"e"}},
	}
	for _, tc := range tests {
		got := ids(ScanAll(t, s, tc.after, tc.until))
		if !slices.Equal(got, tc.want) {
			t.Errorf("Scan(%d, %d) = %q, want %q", tc.after, tc.until, got, tc.want)
		}
	}
}

func testScanStreamsLargeRange(t *testing.T, open Opener) {
	s, _ := start(t, open, history.Retention{})
	const n = 3000
	us := fill(t, s, "l", n)
	got := ScanAll(t, s, 0, math.MaxUint64)
	if !slices.Equal(seqs(got), seqs(us)) || !slices.Equal(ids(got), ids(us)) {
		t.Fatalf("Scan of %d updates returned %d, not the appended ones in order", n, len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("Scan not in Seq order at %d: %d after %d", i, got[i].Seq, got[i-1].Seq)
		}
	}
	// From the middle, across chunk boundaries of any plausible size.
	for _, from := range []int{1, 63, 255, 511, 1000, n - 2} {
		got := ScanAll(t, s, us[from].Seq, us[n-1].Seq)
		if len(got) != n-1-from || got[0].Seq != us[from+1].Seq {
			t.Fatalf("Scan after update %d returned %d updates, want %d", from, len(got), n-1-from)
		}
	}
}

func testScanStopsOnError(t *testing.T, open Opener) {
	s, _ := start(t, open, history.Retention{})
	fill(t, s, "e", 1500)
	stop := errors.New("stop here")
	for _, at := range []int{1, 2, 700, 1499} {
		calls := 0
		err := s.Scan(t.Context(), 0, math.MaxUint64, func(*history.Update) error {
			calls++
			if calls == at {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) {
			t.Errorf("Scan stopped at %d returned %v, want the callback's error", at, err)
		}
		if calls != at {
			t.Errorf("callback called %d times after returning an error at call %d", calls, at)
		}
	}
}

func testScanContext(t *testing.T, open Opener) {
	s, _ := start(t, open, history.Retention{})
	const n = 5000
	fill(t, s, "c", n)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := 0
	err := s.Scan(ctx, 0, math.MaxUint64, func(*history.Update) error { calls++; return nil })
	if !errors.Is(err, context.Canceled) || calls != 0 {
		t.Errorf("Scan with a canceled context = %v after %d calls, want context.Canceled and none", err, calls)
	}
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	calls = 0
	err = s.Scan(ctx, 0, math.MaxUint64, func(*history.Update) error {
		calls++
		if calls == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Scan canceled midway returned %v, want context.Canceled", err)
	}
	if calls >= n {
		t.Errorf("Scan canceled at call 10 went on to the end (%d calls)", calls)
	}
}

func testScanWhileAppending(t *testing.T, open Opener) {
	s, _ := start(t, open, history.Retention{})
	fill(t, s, "p", 500)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := Fill(s, "q", 500); err != nil {
			t.Error(err)
		}
	})
	for range 5 {
		until := s.LastSeq()
		got := ScanAll(t, s, 0, until)
		if len(got) == 0 || got[len(got)-1].Seq != until {
			t.Errorf("Scan(0, LastSeq=%d) ended at %v", until, seqs(got)[max(len(got)-1, 0):])
		}
		for i := 1; i < len(got); i++ {
			if got[i].Seq <= got[i-1].Seq {
				t.Fatalf("Scan not in Seq order at %d", i)
			}
		}
	}
	wg.Wait()
	if got := ScanAll(t, s, 0, math.MaxUint64); len(got) != 1000 {
		t.Errorf("Scan after the appends returned %d updates, want 1000", len(got))
	}
}

func testRetentionByCount(t *testing.T, open Opener) {
	s, _ := start(t, open, history.Retention{MaxUpdates: 5})
	var us []*history.Update
	for i := range 12 {
		us = append(us, mustAppend(t, s, NewUpdate(fmt.Sprintf("r%d", i))))
		got := ScanAll(t, s, 0, math.MaxUint64)
		if want := min(i+1, 5); len(got) != want {
			t.Fatalf("after %d appends %d retained, want %d", i+1, len(got), want)
		}
	}
	if got := ids(ScanAll(t, s, 0, math.MaxUint64)); !slices.Equal(got, []string{"r7", "r8", "r9", "r10", "r11"}) {
		t.Errorf("retained %q, want the newest 5", got)
	}
	wantLookup(t, s, "r6", 0, false)
	wantLookup(t, s, "r7", us[7].Seq, true)
	if got := s.LastSeq(); got != us[11].Seq {
		t.Errorf("LastSeq = %d, want %d", got, us[11].Seq)
	}
	// A cursor older than what is retained replays what is left, nothing more.
	if got := ids(ScanAll(t, s, us[2].Seq, math.MaxUint64)); len(got) != 5 {
		t.Errorf("Scan from an evicted cursor = %q", got)
	}
}

// testRetentionByAge uses the real clock, for stores whose clock cannot be
// injected; RunClock covers the details deterministically.
func testRetentionByAge(t *testing.T, open Opener) {
	const maxAge = time.Second
	s, _ := start(t, open, history.Retention{MaxAge: maxAge})
	old := appendIDs(t, s, "old1", "old2")
	time.Sleep(maxAge + 300*time.Millisecond)
	fresh := mustAppend(t, s, NewUpdate("fresh"))
	wantLookup(t, s, "fresh", fresh.Seq, true)
	wantLookup(t, s, "old1", 0, false)
	wantLookup(t, s, "old2", 0, false)
	if got := ids(ScanAll(t, s, 0, math.MaxUint64)); !slices.Equal(got, []string{"fresh"}) {
		t.Errorf("retained %q, want only the fresh update", got)
	}
	if got := ScanAll(t, s, old[0].Seq, math.MaxUint64); len(got) != 1 {
		t.Errorf("Scan from an expired cursor returned %d updates, want 1", len(got))
	}
}

func testConcurrentAppends(t *testing.T, open Opener) {
	s, rec := start(t, open, history.Retention{})
	const workers, each = 8, 150
	var wg sync.WaitGroup
	acked := make([][]uint64, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				u := NewUpdate(fmt.Sprintf("w%d-%d", w, i))
				if err := s.Append(context.Background(), u); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				acked[w] = append(acked[w], u.Seq)
				if got := s.LastSeq(); got < u.Seq {
					t.Errorf("LastSeq %d after the ack of %d", got, u.Seq)
				}
			}
		})
	}
	wg.Wait()
	seen := rec.updates()
	if len(seen) != workers*each {
		t.Fatalf("sink saw %d updates, want %d", len(seen), workers*each)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].Seq <= seen[i-1].Seq {
			t.Fatalf("sink order broken at %d: seq %d after %d", i, seen[i].Seq, seen[i-1].Seq)
		}
	}
	for w := range workers {
		if !slices.IsSorted(acked[w]) {
			t.Errorf("worker %d got Seqs out of order: %v", w, acked[w])
		}
	}
	got := ScanAll(t, s, 0, math.MaxUint64)
	if !slices.Equal(seqs(got), seqs(seen)) {
		t.Fatal("Scan and the sink disagree")
	}
	for _, u := range got {
		wantLookup(t, s, u.ID, u.Seq, true)
	}
}

func testAppendCanceledContext(t *testing.T, open Opener) {
	s, rec := start(t, open, history.Retention{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	u := NewUpdate("never")
	if err := s.Append(ctx, u); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a canceled context = %v, want context.Canceled", err)
	}
	if s.LastSeq() != 0 || len(rec.updates()) != 0 {
		t.Error("a canceled Append stored or delivered an update")
	}
	wantLookup(t, s, "never", 0, false)
}

func testClose(t *testing.T, open Opener) {
	s := open(t, history.Retention{})
	if err := s.Start(func(*history.Update) {}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, NewUpdate("a"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Append(t.Context(), NewUpdate("b")); !errors.Is(err, history.ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if _, _, err := s.Lookup(t.Context(), "a"); !errors.Is(err, history.ErrClosed) {
		t.Errorf("Lookup after Close = %v, want ErrClosed", err)
	}
	if err := s.Scan(t.Context(), 0, math.MaxUint64, func(*history.Update) error { return nil }); !errors.Is(err, history.ErrClosed) {
		t.Errorf("Scan after Close = %v, want ErrClosed", err)
	}
	if err := s.Ready(t.Context()); err == nil {
		t.Error("Ready after Close = nil")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func testCloseDuringAppends(t *testing.T, open Opener) {
	s := open(t, history.Retention{})
	var delivered sync.Map
	if err := s.Start(func(u *history.Update) { delivered.Store(u.ID, u.Seq) }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ok, closed atomic.Int64
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				u := NewUpdate(fmt.Sprintf("c%d-%d", w, i))
				err := s.Append(context.Background(), u)
				switch {
				case err == nil:
					if seq, _ := delivered.Load(u.ID); seq != u.Seq {
						t.Errorf("acknowledged %q (seq %d) never reached the sink", u.ID, u.Seq)
					}
					ok.Add(1)
				case errors.Is(err, history.ErrClosed):
					closed.Add(1)
					return
				default:
					t.Errorf("Append during Close: %v", err)
					return
				}
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for ok.Load() < 50 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	if closed.Load() != 8 {
		t.Errorf("%d appenders saw ErrClosed, want 8", closed.Load())
	}
}

func testTimeFromClock(t *testing.T, open ClockOpener) {
	clock := NewClock(time.Date(2030, 5, 6, 7, 8, 9, 10, time.UTC))
	s, _ := started(t, open(t, history.Retention{}, clock.Now))
	u := mustAppend(t, s, NewUpdate("a"))
	if !u.Time.Equal(clock.Now()) {
		t.Errorf("Time = %v, want the clock's %v", u.Time, clock.Now())
	}
	if got := ScanAll(t, s, 0, math.MaxUint64); len(got) != 1 || !got[0].Time.Equal(clock.Now()) {
		t.Errorf("stored Time = %v", got)
	}
}

func testAgeEvictsWithoutAppend(t *testing.T, open ClockOpener) {
	clock := NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s, _ := started(t, open(t, history.Retention{MaxAge: time.Minute}, clock.Now))
	us := appendIDs(t, s, "a", "b")
	clock.Advance(30 * time.Second)
	c := mustAppend(t, s, NewUpdate("c"))
	clock.Advance(30 * time.Second) // a and b are exactly MaxAge old: kept
	wantLookup(t, s, "a", us[0].Seq, true)
	clock.Advance(time.Nanosecond) // now they are older than MaxAge
	// Scan first: it must not depend on a Lookup having noticed the expiry.
	if got := ids(ScanAll(t, s, 0, math.MaxUint64)); !slices.Equal(got, []string{"c"}) {
		t.Errorf("retained %q, want [c]", got)
	}
	wantLookup(t, s, "a", 0, false)
	wantLookup(t, s, "b", 0, false)
	wantLookup(t, s, "c", c.Seq, true)
	clock.Advance(time.Hour)
	if got := ScanAll(t, s, 0, math.MaxUint64); len(got) != 0 {
		t.Errorf("retained %q, want nothing", ids(got))
	}
	wantLookup(t, s, "c", 0, false)
	if got := s.LastSeq(); got != c.Seq {
		t.Errorf("LastSeq = %d after expiry, want %d", got, c.Seq)
	}
	d := mustAppend(t, s, NewUpdate("d"))
	if d.Seq <= c.Seq {
		t.Errorf("Seq %d after expiry, want more than %d", d.Seq, c.Seq)
	}
	if got := ids(ScanAll(t, s, 0, math.MaxUint64)); !slices.Equal(got, []string{"d"}) {
		t.Errorf("retained %q, want [d]", got)
	}
}

func testAgeKeepsLaterDuplicate(t *testing.T, open ClockOpener) {
	clock := NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s, _ := started(t, open(t, history.Retention{MaxAge: time.Minute}, clock.Now))
	appendIDs(t, s, "x")
	clock.Advance(50 * time.Second)
	later := mustAppend(t, s, NewUpdate("x"))
	clock.Advance(20 * time.Second)
	wantLookup(t, s, "x", later.Seq, true)
}

func testAgeAndCount(t *testing.T, open ClockOpener) {
	clock := NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s, _ := started(t, open(t, history.Retention{MaxUpdates: 3, MaxAge: time.Minute}, clock.Now))
	appendIDs(t, s, "a", "b", "c", "d")
	if got := ids(ScanAll(t, s, 0, math.MaxUint64)); !slices.Equal(got, []string{"b", "c", "d"}) {
		t.Errorf("retained %q, want [b c d]", got)
	}
	clock.Advance(2 * time.Minute)
	appendIDs(t, s, "e")
	if got := ids(ScanAll(t, s, 0, math.MaxUint64)); !slices.Equal(got, []string{"e"}) {
		t.Errorf("retained %q, want [e]", got)
	}
}

func testReopenKeepsHistory(t *testing.T, loc Location) {
	open := loc(t)
	s1 := open(t, history.Retention{})
	if err := s1.Start(func(*history.Update) {}); err != nil {
		t.Fatal(err)
	}
	want := appendIDs(t, s1, "a", "b", "a", "c")
	want = append(want, fill(t, s1, "f", 300)...)
	last := s1.LastSeq()
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s2, rec := started(t, open(t, history.Retention{}))
	// History replays right after a restart, before any new publish.
	if got := s2.LastSeq(); got != last {
		t.Fatalf("LastSeq after reopen = %d, want %d", got, last)
	}
	got := ScanAll(t, s2, 0, s2.LastSeq())
	if len(got) != len(want) {
		t.Fatalf("after reopen Scan returned %d updates, want %d", len(got), len(want))
	}
	for i := range want {
		if d := SameUpdate(got[i], want[i]); d != "" {
			t.Fatalf("after reopen, update %d: %s", i, d)
		}
	}
	wantLookup(t, s2, "a", want[0].Seq, true)
	wantLookup(t, s2, "c", want[3].Seq, true)
	for _, u := range want[4:] {
		wantLookup(t, s2, u.ID, u.Seq, true)
	}
	u := mustAppend(t, s2, NewUpdate("after"))
	if u.Seq <= last {
		t.Errorf("first Seq after reopen = %d, want more than %d", u.Seq, last)
	}
	if got := rec.last(); got != u.Seq {
		t.Errorf("the new sink's last seq = %d, want %d", got, u.Seq)
	}
}

func testReopenAppliesRetention(t *testing.T, loc Location) {
	open := loc(t)
	s1 := open(t, history.Retention{})
	if err := s1.Start(func(*history.Update) {}); err != nil {
		t.Fatal(err)
	}
	fill(t, s1, "r", 40)
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2, _ := started(t, open(t, history.Retention{MaxUpdates: 10}))
	mustAppend(t, s2, NewUpdate("new"))
	got := ScanAll(t, s2, 0, math.MaxUint64)
	if len(got) != 10 || got[9].ID != "new" {
		t.Errorf("after reopening with MaxUpdates 10 and one append, retained %q", ids(got))
	}
}
