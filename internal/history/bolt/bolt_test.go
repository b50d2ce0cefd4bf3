package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/historytest"
)

func TestMain(m *testing.M) {
	// The kill -9 test re-executes this binary as the process to kill.
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

func openT(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func tempPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "hub.db")
}

func TestConformance(t *testing.T) {
	t.Parallel()
	historytest.Run(t, func(t *testing.T, r history.Retention) history.Store {
		return openT(t, tempPath(t), Options{Retention: r})
	})
}

func TestConformanceClock(t *testing.T) {
	t.Parallel()
	historytest.RunClock(t, func(t *testing.T, r history.Retention, now func() time.Time) history.Store {
		return openT(t, tempPath(t), Options{Retention: r, Now: now})
	})
}

func TestConformanceRestart(t *testing.T) {
	t.Parallel()
	historytest.RunRestart(t, func(t *testing.T) historytest.Opener {
		path := tempPath(t)
		return func(t *testing.T, r history.Retention) history.Store {
			return openT(t, path, Options{Retention: r})
		}
	})
}

// checkFile verifies the file's invariants: bbolt's own consistency check,
// log keys contiguous, one id-index entry per log entry and none other, and
// the stored Seq counter not behind the log. It returns the retained Seqs.
func checkFile(t testing.TB, s *Store) (first, last uint64, n int) {
	t.Helper()
	// bbolt's Check reads the freelist, which only a write transaction may
	// do while the store's writer is active; it is rolled back.
	tx, err := s.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	err = func() error {
		var checkErrs []error
		for err := range tx.Check() { // drained: Check runs in a goroutine
			checkErrs = append(checkErrs, err)
		}
		if len(checkErrs) > 0 {
			return fmt.Errorf("bbolt check: %w", errors.Join(checkErrs...))
		}
		want := map[string]bool{}
		c := tx.Bucket(bucketLog).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			seq := binary.BigEndian.Uint64(k)
			if n > 0 && seq != last+1 {
				return fmt.Errorf("log gap: %d after %d", seq, last)
			}
			if n == 0 {
				first = seq
			}
			last = seq
			n++
			u, err := decodeUpdate(seq, v)
			if err != nil {
				return err
			}
			want[string(appendIDKey(nil, u.ID, seq))] = true
		}
		ic := tx.Bucket(bucketIDs).Cursor()
		got := 0
		for k, _ := ic.First(); k != nil; k, _ = ic.Next() {
			if !want[string(k)] {
				return fmt.Errorf("id index entry %q has no log entry", k)
			}
			got++
		}
		if got != len(want) {
			return fmt.Errorf("id index has %d entries, log %d", got, len(want))
		}
		if seq := binary.BigEndian.Uint64(tx.Bucket(bucketMeta).Get(keySeq)); n > 0 && seq < last {
			return fmt.Errorf("meta seq %d behind the log's %d", seq, last)
		}
		return nil
	}()
	if err != nil {
		t.Fatal(err)
	}
	return first, last, n
}

// TestInUse checks that a second Open of a held file waits LockTimeout, by
// the clock of a synctest bubble, then fails with ErrInUse.
func TestInUse(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		path := tempPath(t)
		s := openT(t, path, Options{})
		start := time.Now()
		_, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
		if !errors.Is(err, ErrInUse) {
			t.Fatalf("second Open = %v, want ErrInUse", err)
		}
		if want := fmt.Sprintf("history file %s is in use by another process", path); !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
		// bbolt tries the lock every 50ms until LockTimeout.
		if d := time.Since(start); d < 150*time.Millisecond || d > 200*time.Millisecond {
			t.Errorf("second Open gave up after %v, want about the 200ms LockTimeout", d)
		}
		// No LockTimeout: no wait.
		if _, err := Open(path, Options{}); !errors.Is(err, ErrInUse) {
			t.Fatalf("Open without LockTimeout = %v, want ErrInUse", err)
		}
		if _, err := Open(path, Options{LockTimeout: -1}); err == nil || errors.Is(err, ErrInUse) {
			t.Fatalf("Open with a negative LockTimeout = %v, want a refusal", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2 := openT(t, path, Options{LockTimeout: 200 * time.Millisecond})
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(garbage, Options{}); err == nil || !strings.Contains(err.Error(), garbage) {
		t.Errorf("Open of a non-database file = %v, want an error naming it", err)
	}
	if _, err := Open(filepath.Join(dir, "missing", "hub.db"), Options{}); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
	if _, err := Open("", Options{}); err == nil {
		t.Error("Open(\"\") succeeded")
	}

	future := filepath.Join(dir, "future.db")
	db, err := bbolt.Open(future, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keyVersion, []byte{99})
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(future, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open of a file from a future format = %v, want ErrCorrupt", err)
	}
}

func TestIDTooLong(t *testing.T) {
	t.Parallel()
	s := openT(t, tempPath(t), Options{})
	defer func() { _ = s.Close() }()
	u := historytest.NewUpdate(strings.Repeat("x", MaxIDLen+1))
	if err := s.Append(t.Context(), u); !errors.Is(err, ErrIDTooLong) {
		t.Fatalf("Append with a %d-byte id = %v, want ErrIDTooLong", len(u.ID), err)
	}
	if !u.Time.IsZero() || u.Seq != 0 {
		t.Error("a refused Append changed the update")
	}
	long := historytest.NewUpdate(strings.Repeat("y", MaxIDLen))
	if err := s.Append(t.Context(), long); err != nil {
		t.Fatalf("Append with a %d-byte id: %v", MaxIDLen, err)
	}
	if seq, ok, err := s.Lookup(t.Context(), long.ID); err != nil || !ok || seq != long.Seq {
		t.Errorf("Lookup of the longest id = %d, %v, %v", seq, ok, err)
	}
}

// TestGroupCommit checks that concurrent appends share transactions, the
// point of the single writer.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	s := openT(t, tempPath(t), Options{})
	defer func() { _ = s.Close() }()
	if _, err := historytest.Fill(s, "g", 1600); err != nil {
		t.Fatal(err)
	}
	commits, updates := s.commits.Load(), s.committed.Load()
	if updates != 1600 {
		t.Fatalf("committed %d updates, want 1600", updates)
	}
	if factor := float64(updates) / float64(commits); factor < 2 {
		t.Errorf("16 concurrent publishers averaged %.1f updates per commit, want at least 2", factor)
	}
	t.Logf("%d updates in %d commits", updates, commits)
}

// TestCommitFailure checks that when a commit fails, every Append of the
// batch gets the error, nothing reaches the sink, and Ready reports it.
func TestCommitFailure(t *testing.T) {
	t.Parallel()
	s := openT(t, tempPath(t), Options{})
	var delivered sync.Map
	if err := s.Start(func(u *history.Update) { delivered.Store(u.ID, true) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(t.Context(), historytest.NewUpdate("ok")); err != nil {
		t.Fatal(err)
	}
	// Pull the file from under the writer.
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			u := historytest.NewUpdate(fmt.Sprintf("fail%d", i))
			err := s.Append(context.Background(), u)
			if !errors.Is(err, history.ErrUnavailable) {
				t.Errorf("Append after a failed commit = %v, want ErrUnavailable", err)
			}
			if u.Seq != 0 || !u.Time.IsZero() {
				t.Errorf("failed Append left Seq %d, Time %v", u.Seq, u.Time)
			}
			if _, ok := delivered.Load(u.ID); ok {
				t.Errorf("update %q of a failed commit reached the sink", u.ID)
			}
		})
	}
	wg.Wait()
	if err := s.Ready(t.Context()); !errors.Is(err, history.ErrUnavailable) {
		t.Errorf("Ready after a failed commit = %v, want ErrUnavailable", err)
	}
	if got := s.LastSeq(); got != 1 {
		t.Errorf("LastSeq = %d, want 1", got)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestFileStopsGrowing checks the point of retention on disk: once
// MaxUpdates are stored, freed pages are reused and the file keeps its size,
// while the same appends without retention keep growing it.
func TestFileStopsGrowing(t *testing.T) {
	t.Parallel()
	const n, rounds = 1000, 6
	capped := growth(t, history.Retention{MaxUpdates: n}, n, rounds)
	uncapped := growth(t, history.Retention{}, n, rounds)
	t.Logf("file sizes after each round of %d appends: MaxUpdates %d: %v; unlimited: %v", n, n, capped, uncapped)
	// The first rounds may still grow the file while the freelist settles;
	// after that it must not grow at all.
	if capped[rounds-1] > capped[2] {
		t.Errorf("file grew from %d to %d bytes after retention was reached", capped[2], capped[rounds-1])
	}
	if uncapped[rounds-1] < 2*capped[rounds-1] {
		t.Errorf("without retention the file reached only %d bytes, with it %d: the test proves nothing",
			uncapped[rounds-1], capped[rounds-1])
	}
}

// growth appends rounds*n updates of 1 KB from 16 goroutines and returns the
// file size after each round.
func growth(t *testing.T, r history.Retention, n, rounds int) []int64 {
	t.Helper()
	path := tempPath(t)
	s := openT(t, path, Options{Retention: r})
	defer func() { _ = s.Close() }()
	payload := strings.Repeat("p", 1000)
	var sizes []int64
	for round := range rounds {
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				for i := w; i < n; i += 16 {
					u := historytest.NewUpdate(fmt.Sprintf("r%d-%d", round, i))
					u.Data = payload
					if err := s.Append(context.Background(), u); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, fi.Size())
		want := (round + 1) * n
		if r.MaxUpdates > 0 {
			want = min(want, int(r.MaxUpdates))
		}
		if _, _, got := checkFile(t, s); got != want {
			t.Fatalf("round %d: %d updates stored, want %d", round, got, want)
		}
	}
	return sizes
}

// TestSweepWhenIdle checks that retention by age deletes expired updates
// from the file even when nobody publishes: at the first sweep after they
// outlived MaxAge, on the clock of a synctest bubble, which is the store's
// clock (Options.Now nil) and its sweeper's.
func TestSweepWhenIdle(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const maxAge = 100 * time.Millisecond
		every := sweepInterval(maxAge)
		start := time.Now()
		s := openT(t, tempPath(t), Options{Retention: history.Retention{MaxAge: maxAge}})
		defer func() { _ = s.Close() }()
		if _, err := historytest.Fill(s, "s", 50); err != nil {
			t.Fatal(err)
		}
		// At maxAge the updates are as old as retention allows, not older.
		time.Sleep(time.Until(start.Add(maxAge)))
		synctest.Wait()
		if _, _, n := checkFile(t, s); n != 50 {
			t.Fatalf("%d updates stored at MaxAge, want 50", n)
		}
		// The next sweep deletes them.
		time.Sleep(time.Until(start.Add(maxAge + every)))
		synctest.Wait()
		if _, _, n := checkFile(t, s); n != 0 {
			t.Fatalf("%d expired updates still in the file after the next sweep", n)
		}
		if got := s.LastSeq(); got != 50 {
			t.Errorf("LastSeq = %d after the sweep, want 50", got)
		}
	})
}

// TestRestartAfterFullEviction checks that Seq keeps growing across a restart
// even when retention left nothing in the log.
func TestRestartAfterFullEviction(t *testing.T) {
	t.Parallel()
	clock := historytest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	path := tempPath(t)
	opts := Options{Retention: history.Retention{MaxAge: time.Minute}, Now: clock.Now}
	s := openT(t, path, opts)
	if _, err := historytest.Fill(s, "a", 20); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	s = openT(t, path, opts)
	defer func() { _ = s.Close() }()
	if _, _, n := checkFile(t, s); n != 0 {
		t.Errorf("%d expired updates survived Open", n)
	}
	if got := s.LastSeq(); got != 20 {
		t.Errorf("LastSeq after reopening an expired history = %d, want 20", got)
	}
	u := historytest.NewUpdate("b")
	if err := s.Append(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if u.Seq != 21 {
		t.Errorf("Seq after restart = %d, want 21", u.Seq)
	}
}

// TestScanDoesNotPinTransactions checks that a slow Scan callback holds no
// read transaction, so the writer's freed pages can be reused meanwhile.
func TestScanDoesNotPinTransactions(t *testing.T) {
	t.Parallel()
	s := openT(t, tempPath(t), Options{})
	defer func() { _ = s.Close() }()
	if _, err := historytest.Fill(s, "x", 100); err != nil {
		t.Fatal(err)
	}
	calls := 0
	err := s.Scan(t.Context(), 0, math.MaxUint64, func(*history.Update) error {
		calls++
		if open := s.db.Stats().OpenTxN; open != 0 {
			return fmt.Errorf("%d read transactions open while fn runs", open)
		}
		return nil
	})
	if err != nil || calls != 100 {
		t.Fatalf("Scan: %v after %d calls", err, calls)
	}
}

// TestLargeReplay replays 120k stored updates from old and recent cursors.
func TestLargeReplay(t *testing.T) {
	t.Parallel()
	n := 120_000
	if testing.Short() {
		n = 20_000
	}
	s := openT(t, tempPath(t), Options{})
	defer func() { _ = s.Close() }()
	bulkLoad(t, s, n, 100)
	for _, tc := range []struct {
		name   string
		cursor int // index of the cursor's update; -1 for "earliest"
	}{
		{"earliest", -1}, {"old", 7}, {"middle", n / 2}, {"recent", n - 10}, {"newest", n - 1},
	} {
		var after uint64
		if tc.cursor >= 0 {
			id := bulkID(tc.cursor)
			seq, ok, err := s.Lookup(t.Context(), id)
			if err != nil || !ok || seq != uint64(tc.cursor+1) {
				t.Fatalf("%s: Lookup(%q) = %d, %v, %v", tc.name, id, seq, ok, err)
			}
			after = seq
		}
		start := time.Now()
		next := after + 1
		err := s.Scan(t.Context(), after, s.LastSeq(), func(u *history.Update) error {
			if u.Seq != next || u.ID != bulkID(int(next-1)) {
				return fmt.Errorf("got seq %d id %q, want seq %d", u.Seq, u.ID, next)
			}
			next++
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got, want := next-1-after, uint64(n)-after; got != want {
			t.Fatalf("%s: replayed %d updates, want %d", tc.name, got, want)
		}
		t.Logf("%s cursor: replayed %d updates in %v", tc.name, next-1-after, time.Since(start))
	}
}

func bulkID(i int) string { return fmt.Sprintf("bulk-%08d", i) }

// bulkLoad appends n updates with dataLen-byte payloads in large batches.
func bulkLoad(tb testing.TB, s *Store, n, dataLen int) {
	tb.Helper()
	const batch = 5000
	data := strings.Repeat("d", dataLen)
	for i := 0; i < n; i += batch {
		ups := make([]*history.Update, 0, batch)
		for j := i; j < min(i+batch, n); j++ {
			ups = append(ups, &history.Update{
				ID:     bulkID(j),
				Topics: []string{"https://example.com/books/" + bulkID(j)},
				Data:   data,
			})
		}
		if err := s.appendBatch(context.Background(), ups); err != nil {
			tb.Fatal(err)
		}
	}
}
