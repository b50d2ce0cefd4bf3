package history_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
)

func TestMemoryLen(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	appendN := func(t *testing.T, m *history.Memory, prefix string, n int) {
		t.Helper()
		for i := range n {
			if err := m.Append(t.Context(), &history.Update{ID: fmt.Sprintf("%s-%d", prefix, i), Topics: []string{"t"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(t *testing.T, m *history.Memory, want uint64) {
		t.Helper()
		if got := m.Len(); got != want {
			t.Errorf("Len = %d, want %d", got, want)
		}
		var n uint64
		if err := m.Scan(t.Context(), 0, m.LastSeq(), func(*history.Update) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("Scan returned %d updates, want %d (Len must match Scan)", n, want)
		}
	}

	m := history.NewMemory(history.Retention{MaxUpdates: 3000, MaxAge: time.Hour}, clock)
	check(t, m, 0)
	appendN(t, m, "a", 5)
	appendN(t, m, "a", 2) // duplicates are separate updates
	check(t, m, 7)
	// Past MaxUpdates, and past the compaction threshold of the buffer.
	appendN(t, m, "b", 5000)
	check(t, m, 3000)
	advance(40 * time.Minute)
	appendN(t, m, "c", 10)
	check(t, m, 3000)
	advance(30 * time.Minute) // everything but the last ten is 70 minutes old
	check(t, m, 10)
	advance(time.Hour)
	check(t, m, 0)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := m.Len(); got != 0 {
		t.Errorf("Len after Close = %d, want 0", got)
	}
}
