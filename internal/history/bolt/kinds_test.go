package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/historytest"
)

// testdata/v1-mixed.db was written by the hub before subscription events had
// a bucket of their own (commit d71369e, `serve --subscriptions`): three
// published updates, the events of a draft-07 and a draft-08 subscriber
// that connected and left, then two more updates, one reusing an id.
// testdata/v1-mixed.json is what that version replayed from it.
func openLegacy(t *testing.T, opts Options) (*Store, string, []*history.Update) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "v1-mixed.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hub.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "v1-mixed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want []*history.Update
	if err := json.Unmarshal(golden, &want); err != nil {
		t.Fatal(err)
	}
	return openT(t, path, opts), path, want
}

func TestFileFromBeforeKindsOpensAndReplaysAsItWas(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	s, _, want := openLegacy(t, Options{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	defer func() { _ = s.Close() }()
	if len(want) != 11 {
		t.Fatalf("the golden file holds %d updates, want 11", len(want))
	}
	if got := s.LastSeq(); got != 11 {
		t.Errorf("LastSeq = %d, want 11", got)
	}
	got := historytest.ScanAll(t, s, 0, math.MaxUint64)
	if len(got) != len(want) {
		t.Fatalf("replayed %d updates, want %d", len(got), len(want))
	}
	var bytes uint64
	for i := range want {
		// Everything in the old log counts as published, subscription
		// events included: that version did not tell them apart.
		if d := historytest.SameUpdate(got[i], want[i]); d != "" {
			t.Errorf("update %d: %s", i, d)
		}
		bytes += history.Size(want[i])
	}
	if got, want := s.Usage(), (history.Usage{Updates: 11, UpdateBytes: bytes}); got != want {
		t.Errorf("Usage = %+v, want %+v", got, want)
	}
	if !strings.Contains(logs.String(), `"counted":true`) {
		t.Errorf("opening a file without a usage record did not count it: %s", logs.String())
	}
	seq, ok, err := s.Lookup(t.Context(), "legacy-1")
	if err != nil || !ok || seq != 1 {
		t.Errorf("Lookup(legacy-1) = %d, %v, %v; want the earliest, 1", seq, ok, err)
	}
	checkFile(t, s)
}

// TestFileFromBeforeKindsKeepsItsUpdatesUnderNewEvents opens the old file with
// a history bound equal to what it holds: new subscription events must not
// push any of it out, new published updates do, oldest first.
func TestFileFromBeforeKindsKeepsItsUpdatesUnderNewEvents(t *testing.T) {
	t.Parallel()
	r := history.Retention{MaxUpdates: 11}
	s, path, want := openLegacy(t, Options{Retention: r})
	for i := range 30 {
		if err := s.Append(t.Context(), historytest.NewEvent(fmt.Sprintf("new-event-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	got := historytest.ScanAll(t, s, 0, math.MaxUint64)
	if len(got) != 22 || got[0].ID != want[0].ID || got[10].Seq != 11 || !got[11].SubscriptionEvent {
		t.Fatalf("after 30 events, retained %d updates starting %q; want the 11 old ones then 11 events", len(got), got[0].ID)
	}
	if err := s.Append(t.Context(), historytest.NewUpdate("new-update")); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Lookup(t.Context(), want[0].ID); !ok {
		t.Errorf("Lookup(%q) lost it: the duplicate at seq 10 should remain", want[0].ID)
	}
	got = historytest.ScanAll(t, s, 0, math.MaxUint64)
	if got[0].Seq != 2 {
		t.Errorf("after one published update the oldest retained is seq %d, want 2", got[0].Seq)
	}
	checkFile(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The file now has both kinds and a usage record; it opens as it was
	// left, without counting.
	var logs bytes.Buffer
	s = openT(t, path, Options{Retention: r, Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	defer func() { _ = s.Close() }()
	if again := historytest.ScanAll(t, s, 0, math.MaxUint64); len(again) != len(got) || again[11].ID != got[11].ID || !again[11].SubscriptionEvent {
		t.Errorf("after reopening, retained %d updates, want %d", len(again), len(got))
	}
	if !strings.Contains(logs.String(), `"counted":false`) {
		t.Errorf("reopening counted the file again: %s", logs.String())
	}
	checkFile(t, s)
}

// TestUsageRecordIsCheckedAgainstTheBuckets plays an earlier version on a file
// this one wrote: it appends to and evicts from the log bucket without
// keeping the usage record, which the next Open must notice.
func TestUsageRecordIsCheckedAgainstTheBuckets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		tamper func(tx *bbolt.Tx) error
	}{
		{"an append", func(tx *bbolt.Tx) error {
			u := &history.Update{ID: "old-version", Topics: []string{"t"}, Data: "written by an earlier version", Time: time.Unix(1, 0)}
			key := binary.BigEndian.AppendUint64(nil, 7)
			if err := tx.Bucket(bucketLog).Put(key, appendUpdate(nil, u)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketIDs).Put(appendIDKey(nil, u.ID, 7), nil); err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(keySeq, key)
		}},
		{"an eviction", func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucketLog).Cursor()
			k, v := c.First()
			_, id, _, err := decodeHead(v)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketIDs).Delete(appendIDKey(nil, string(id), binary.BigEndian.Uint64(k))); err != nil {
				return err
			}
			return c.Delete()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := tempPath(t)
			s := openT(t, path, Options{})
			for i := range 6 {
				u := historytest.NewUpdate(fmt.Sprintf("u%d", i))
				if i%2 == 1 {
					u = historytest.NewEvent(fmt.Sprintf("e%d", i))
				}
				if err := s.Append(t.Context(), u); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			db, err := bbolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(tc.tamper); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			s = openT(t, path, Options{})
			defer func() { _ = s.Close() }()
			checkFile(t, s)
			retained := historytest.ScanAll(t, s, 0, math.MaxUint64)
			if got, want := s.Usage(), historytest.UsageOf(retained); got != want {
				t.Errorf("Usage = %+v, want %+v", got, want)
			}
		})
	}
}
