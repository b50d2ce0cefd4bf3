package bolt

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
)

// scanCount counts what Scan returns over the whole history: Len must agree.
func scanCount(t *testing.T, s *Store) uint64 {
	t.Helper()
	var n uint64
	if err := s.Scan(t.Context(), 0, s.LastSeq(), func(*history.Update) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func appendN(t *testing.T, s *Store, prefix string, n int) {
	t.Helper()
	for i := range n {
		u := &history.Update{ID: fmt.Sprintf("%s-%d", prefix, i), Topics: []string{"t"}}
		if err := s.Append(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLen(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, s *Store, want uint64) {
		t.Helper()
		if got := s.Len(); got != want {
			t.Errorf("Len = %d, want %d", got, want)
		}
		if got := scanCount(t, s); got != want {
			t.Errorf("Scan returned %d updates, want %d (Len must match Scan)", got, want)
		}
	}

	t.Run("unbounded", func(t *testing.T) {
		t.Parallel()
		path := tempPath(t)
		s := openT(t, path, Options{})
		check(t, s, 0)
		appendN(t, s, "a", 7)
		// A duplicate id is a separate update.
		appendN(t, s, "a", 3)
		check(t, s, 10)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if got := s.Len(); got != 0 {
			t.Errorf("Len after Close = %d, want 0", got)
		}
		// The count survives a restart, before any new append.
		s = openT(t, path, Options{})
		defer func() { _ = s.Close() }()
		check(t, s, 10)
	})

	t.Run("max updates", func(t *testing.T) {
		t.Parallel()
		path := tempPath(t)
		s := openT(t, path, Options{Retention: history.Retention{MaxUpdates: 4}})
		appendN(t, s, "b", 3)
		check(t, s, 3)
		appendN(t, s, "c", 9)
		check(t, s, 4)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// A tighter bound at the next start applies at once.
		s = openT(t, path, Options{Retention: history.Retention{MaxUpdates: 2}})
		defer func() { _ = s.Close() }()
		check(t, s, 2)
	})

	t.Run("max age", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
		// An hour of retention: the writer's sweep (every 15 minutes of
		// real time) never runs during the test, so Len must honour the
		// clock by itself, as Scan does.
		s := openT(t, tempPath(t), Options{Retention: history.Retention{MaxAge: time.Hour}, Now: clock})
		defer func() { _ = s.Close() }()
		appendN(t, s, "old", 5)
		advance(40 * time.Minute)
		appendN(t, s, "new", 3)
		check(t, s, 8)
		advance(30 * time.Minute) // the first five are now 70 minutes old
		check(t, s, 3)
		advance(time.Hour)
		check(t, s, 0)
	})
}

// BenchmarkLen shows that Len does not depend on the size of the history.
func BenchmarkLen(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := openT(b, tempPath(b), Options{})
			defer func() { _ = s.Close() }()
			bulkLoad(b, s, n, 16)
			b.ResetTimer()
			for b.Loop() {
				if got := s.Len(); got != uint64(n) {
					b.Fatalf("Len = %d, want %d", got, n)
				}
			}
		})
	}
}
