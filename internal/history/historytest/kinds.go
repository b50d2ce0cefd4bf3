package historytest

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
)

// The tests of this file check the retention of the two kinds of updates
// (published updates and subscription events, each bounded on its own) and
// the byte bound, against a model of what a store must keep.

// NewEvent returns a subscription event with the given id, shaped like the
// ones the hub stores: private, on a topic of the reserved namespace, with a
// JSON document of a few hundred bytes.
func NewEvent(id string) *history.Update {
	topic := "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2Fbooks%2F1/urn%3Auuid%3A" + id
	return &history.Update{
		ID:     id,
		Topics: []string{topic},
		Data: fmt.Sprintf(`{"@context": "https://mercure.rocks/", "id": %q, "type": "Subscription", `+
			`"topic": "https://example.com/books/1", "subscriber": "urn:uuid:%s", "active": true}`, topic, id),
		Private:           true,
		SubscriptionEvent: true,
	}
}

// sized returns an update whose data is n bytes long.
func sized(id string, n int, event bool) *history.Update {
	u := NewUpdate(id)
	if event {
		u = NewEvent(id)
	}
	u.Data = strings.Repeat("x", n)
	return u
}

// Retained returns what a store with retention r must keep of us, appended in
// this order with no retention by age: for each kind on its own, the newest
// updates within r.MaxUpdates and r.MaxBytes, leaving out any update larger
// than r.MaxBytes by itself (it is delivered, never retained). The result is
// in Seq order.
func Retained(us []*history.Update, r history.Retention) []*history.Update {
	keep := make([]bool, len(us))
	for _, event := range []bool{false, true} {
		var n, size uint64
		for i := len(us) - 1; i >= 0; i-- {
			u := us[i]
			if u.SubscriptionEvent != event {
				continue
			}
			sz := history.Size(u)
			if r.MaxBytes > 0 && sz > r.MaxBytes {
				continue
			}
			if r.MaxUpdates > 0 && n+1 > r.MaxUpdates || r.MaxBytes > 0 && size+sz > r.MaxBytes {
				break
			}
			n++
			size += sz
			keep[i] = true
		}
	}
	var out []*history.Update
	for i, u := range us {
		if keep[i] {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b *history.Update) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// UsageOf returns the usage of us, which a store's Usage must report when us
// is what it retains.
func UsageOf(us []*history.Update) history.Usage {
	var u history.Usage
	for _, x := range us {
		if x.SubscriptionEvent {
			u.Events++
			u.EventBytes += history.Size(x)
		} else {
			u.Updates++
			u.UpdateBytes += history.Size(x)
		}
	}
	return u
}

// usager is implemented by the stores that can report their usage cheaply.
type usager interface {
	Usage() history.Usage
}

// wantRetained checks that s retains exactly want (in Seq order, each with
// its kind), that Scan from any retained update's Seq returns what follows
// it, and that the store's Usage, if it has one, agrees.
func wantRetained(t *testing.T, s history.Store, want []*history.Update, context string) {
	t.Helper()
	got := ScanAll(t, s, 0, math.MaxUint64)
	if !slices.Equal(seqs(got), seqs(want)) {
		t.Fatalf("%s: retained %s, want %s", context, describe(got), describe(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].SubscriptionEvent != want[i].SubscriptionEvent {
			t.Fatalf("%s: retained %s, want %s", context, describe(got), describe(want))
		}
	}
	if len(want) > 1 {
		mid := len(want) / 2
		if rest := ScanAll(t, s, want[mid].Seq, math.MaxUint64); !slices.Equal(seqs(rest), seqs(want[mid+1:])) {
			t.Fatalf("%s: Scan after seq %d = %s, want %s", context, want[mid].Seq, describe(rest), describe(want[mid+1:]))
		}
	}
	if us, ok := s.(usager); ok {
		if got, want := us.Usage(), UsageOf(want); got != want {
			t.Fatalf("%s: Usage = %+v, want %+v", context, got, want)
		}
	}
}

// describe lists updates as id@seq, with a star for subscription events.
func describe(us []*history.Update) string {
	parts := make([]string, len(us))
	for i, u := range us {
		star := ""
		if u.SubscriptionEvent {
			star = "*"
		}
		parts[i] = fmt.Sprintf("%s%s@%d", u.ID, star, u.Seq)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func testEventsNeverEvictUpdates(t *testing.T, open Opener) {
	s, rec := start(t, open, history.Retention{MaxUpdates: 4})
	var all []*history.Update
	add := func(u *history.Update) *history.Update {
		all = append(all, mustAppend(t, s, u))
		return u
	}
	p0 := add(NewUpdate("p0"))
	add(NewUpdate("p1"))
	add(NewUpdate("p2"))
	for i := range 5 {
		add(NewEvent(fmt.Sprintf("e%02d", i)))
	}
	add(NewUpdate("p3"))
	for i := 5; i < 40; i++ {
		add(NewEvent(fmt.Sprintf("e%02d", i)))
		wantRetained(t, s, Retained(all, history.Retention{MaxUpdates: 4}), fmt.Sprintf("after event %d", i))
	}
	// Forty events later, the four published updates are all there, and a
	// client that saw p0 is not told that history was lost.
	want := Retained(all, history.Retention{MaxUpdates: 4})
	if got := describe(want); !strings.HasPrefix(got, "[p0@") || strings.Count(got, "*") != 4 {
		t.Fatalf("the model itself is wrong: %s", got)
	}
	wantRetained(t, s, want, "after 40 events")
	wantLookup(t, s, "p0", p0.Seq, true)
	wantLookup(t, s, "e35", 0, false)
	wantLookup(t, s, "e36", all[len(all)-4].Seq, true)
	// Published updates evict published updates only.
	add(NewUpdate("p4"))
	wantRetained(t, s, Retained(all, history.Retention{MaxUpdates: 4}), "after p4")
	wantLookup(t, s, "p0", 0, false)
	wantLookup(t, s, "e36", all[len(all)-5].Seq, true)
	// The sink saw every update, in order, with its kind.
	seen := rec.updates()
	if len(seen) != len(all) {
		t.Fatalf("sink saw %d updates, want %d", len(seen), len(all))
	}
	for i, u := range seen {
		if u.Seq != all[i].Seq || u.SubscriptionEvent != all[i].SubscriptionEvent {
			t.Fatalf("sink update %d = %s, want %s", i, describe(seen[i:i+1]), describe(all[i:i+1]))
		}
	}
}

// testRetentionByBytes appends updates of both kinds and of many sizes, and
// checks after each append that what is kept is exactly what the model keeps.
func testRetentionByBytes(t *testing.T, open Opener) {
	unit := history.Size(sized("b000", 100, false))
	for _, r := range []history.Retention{
		{MaxBytes: 5 * unit},
		{MaxBytes: 5 * unit, MaxUpdates: 3},
		{MaxBytes: 2*unit + 7},
	} {
		t.Run(fmt.Sprintf("%d bytes, %d updates", r.MaxBytes, r.MaxUpdates), func(t *testing.T) {
			s, rec := start(t, open, r)
			var all []*history.Update
			for i := range 60 {
				// Sizes from 0 to about 3 units, with one update larger
				// than the whole bound among the published ones (i = 23)
				// and among the events (i = 41).
				u := sized(fmt.Sprintf("b%03d", i), (i*37)%290, i%3 == 1)
				for (i == 23 || i == 41) && history.Size(u) <= r.MaxBytes {
					u.Data += strings.Repeat("x", 64)
				}
				all = append(all, mustAppend(t, s, u))
				wantRetained(t, s, Retained(all, r), fmt.Sprintf("after update %d (%d bytes)", i, history.Size(u)))
			}
			// An update over the bound is delivered all the same, and
			// evicts nothing of its own kind.
			if got := rec.updates(); len(got) != len(all) || got[23].ID != "b023" {
				t.Errorf("sink saw %d updates, want %d", len(got), len(all))
			}
			retained := Retained(all, r)
			for _, u := range all {
				want := slices.Contains(retained, u)
				seq := u.Seq
				if !want {
					seq = 0
				}
				wantLookup(t, s, u.ID, seq, want)
			}
		})
	}
}

// testLookupDuplicateAcrossKinds checks that an id used by both kinds
// resolves to its earliest retained update whichever kind is evicted first
// (docs/protocol.md#duplicate-ids).
func testLookupDuplicateAcrossKinds(t *testing.T, open Opener) {
	s, _ := start(t, open, history.Retention{MaxUpdates: 1})
	ev := mustAppend(t, s, NewEvent("x"))
	mustAppend(t, s, NewUpdate("x"))
	wantLookup(t, s, "x", ev.Seq, true)
	later := mustAppend(t, s, NewUpdate("y"))
	// The published "x" is gone; the event "x" stays.
	wantLookup(t, s, "x", ev.Seq, true)
	mustAppend(t, s, NewEvent("z"))
	wantLookup(t, s, "x", 0, false)
	wantLookup(t, s, "y", later.Seq, true)
	mustAppend(t, s, NewEvent("y"))
	mustAppend(t, s, NewUpdate("w"))
	// The published "y" is evicted: the event "y", later, is found.
	wantLookup(t, s, "y", s.LastSeq()-1, true)
}

func testAgeAppliesToEvents(t *testing.T, open ClockOpener) {
	clock := NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s, _ := started(t, open(t, history.Retention{MaxAge: time.Minute, MaxUpdates: 2, MaxBytes: 10000}, clock.Now))
	old := []*history.Update{mustAppend(t, s, NewEvent("e0")), mustAppend(t, s, NewUpdate("p0"))}
	clock.Advance(50 * time.Second)
	fresh := []*history.Update{mustAppend(t, s, NewUpdate("p1")), mustAppend(t, s, NewEvent("e1"))}
	wantRetained(t, s, append(slices.Clone(old), fresh...), "before expiry")
	clock.Advance(11 * time.Second)
	wantRetained(t, s, fresh, "after the first two expired")
	wantLookup(t, s, "e0", 0, false)
	wantLookup(t, s, "e1", fresh[1].Seq, true)
	clock.Advance(time.Minute)
	wantRetained(t, s, nil, "after all expired")
}

// testReopenKeepsKinds checks that each update keeps its kind across a
// restart, and that a tighter bound at the next start applies to each kind
// at once, before any append.
func testReopenKeepsKinds(t *testing.T, loc Location) {
	open := loc(t)
	s1 := open(t, history.Retention{})
	if err := s1.Start(func(*history.Update) {}); err != nil {
		t.Fatal(err)
	}
	var all []*history.Update
	for i := range 12 {
		u := NewUpdate(fmt.Sprintf("p%02d", i))
		if i%4 != 0 {
			u = NewEvent(fmt.Sprintf("e%02d", i))
		}
		all = append(all, mustAppend(t, s1, u))
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2, _ := started(t, open(t, history.Retention{}))
	wantRetained(t, s2, all, "after reopen")
	got := ScanAll(t, s2, 0, math.MaxUint64)
	for i := range all {
		if d := SameUpdate(got[i], all[i]); d != "" {
			t.Fatalf("after reopen, update %d: %s", i, d)
		}
	}
	if err := s2.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r := history.Retention{MaxUpdates: 2}
	s3, _ := started(t, open(t, r))
	wantRetained(t, s3, Retained(all, r), "after reopen with 2 of each kind")
	for i := range 3 {
		all = append(all, mustAppend(t, s3, NewEvent(fmt.Sprintf("f%02d", i))))
	}
	wantRetained(t, s3, Retained(all, r), "after three more events")
}

// testReopenKeepsByteCount checks that a byte bound holds across restarts:
// the store knows, after reopening, how many bytes it holds, and a tighter
// bound applies at once.
func testReopenKeepsByteCount(t *testing.T, loc Location) {
	open := loc(t)
	unit := history.Size(sized("s00", 100, false))
	r := history.Retention{MaxBytes: 6 * unit}
	s1 := open(t, r)
	if err := s1.Start(func(*history.Update) {}); err != nil {
		t.Fatal(err)
	}
	var all []*history.Update
	for i := range 20 {
		all = append(all, mustAppend(t, s1, sized(fmt.Sprintf("s%02d", i), 40+i*13%150, i%2 == 0)))
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := open(t, r)
	s2, _ = started(t, s2)
	wantRetained(t, s2, Retained(all, r), "after reopen")
	for i := 20; i < 26; i++ {
		all = append(all, mustAppend(t, s2, sized(fmt.Sprintf("s%02d", i), 60+i*7%120, i%3 == 0)))
		wantRetained(t, s2, Retained(all, r), fmt.Sprintf("after reopen and update %d", i))
	}
	if err := s2.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	tight := history.Retention{MaxBytes: 3 * unit}
	s3, _ := started(t, open(t, tight))
	wantRetained(t, s3, Retained(all, tight), "after reopen with a tighter bound")
}
