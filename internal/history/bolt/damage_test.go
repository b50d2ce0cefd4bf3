package bolt

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/mercurectl/mercurectl/internal/history"
)

// usedSize is the size of the pages a bolt file's meta page claims.
func usedSize(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var n int64
	if err := db.View(func(tx *bbolt.Tx) error { n = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOpenTruncatedFileIsAnError(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s := openT(t, path, Options{})
	bulkLoad(t, s, 2000, 500)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, usedSize(t, path)/2); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open = %v, want ErrCorrupt naming %s", err, path)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("the error spans several lines: %q", err)
	}
}

func TestOpenEmptyFileWarns(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s := openT(t, path, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer func() { _ = s.Close() }()
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "was empty") {
		t.Fatalf("no warning for the empty file; logs: %s", logs.String())
	}
	// A new file is not worth a warning.
	logs.Reset()
	s2 := openT(t, tempPath(t), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer func() { _ = s2.Close() }()
	if strings.Contains(logs.String(), "WARN") {
		t.Fatalf("a warning for a new file: %s", logs.String())
	}
}

// TestScanOfADamagedPageIsAnError zeroes one leaf page in the middle of the
// log, which Open does not read, so the damage is met by a replay.
func TestScanOfADamagedPageIsAnError(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s := openT(t, path, Options{})
	bulkLoad(t, s, 4000, 200)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	victim, pageSize := middleLeaf(t, path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, pageSize), victim*int64(pageSize)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	s = openT(t, path, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer func() { _ = s.Close() }()
	n := 0
	err = s.Scan(context.Background(), 0, s.LastSeq(), func(*history.Update) error { n++; return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Scan = %v after %d updates, want ErrCorrupt", err, n)
	}
	if n == 0 || n >= 4000 {
		t.Errorf("Scan returned %d updates before the damage, want some but not all", n)
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("no ERROR log; logs: %s", logs.String())
	}
	// The store still answers.
	if _, _, err := s.Lookup(context.Background(), bulkID(3999)); err != nil {
		t.Errorf("Lookup after the damage: %v", err)
	}
}

// middleLeaf finds a leaf page of the log bucket (one that holds
// payloads) in the middle of the file, and the page size.
func middleLeaf(t *testing.T, path string) (int64, int) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	pageSize := db.Info().PageSize
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(strings.Repeat("d", 100))
	var leaves []int64
	err = db.View(func(tx *bbolt.Tx) error {
		for id := 2; int64(id+1)*int64(pageSize) <= int64(len(raw)); id++ {
			p, err := tx.Page(id)
			if err != nil || p == nil {
				break
			}
			page := raw[id*pageSize : (id+1)*pageSize]
			if p.Type == "leaf" && bytes.Contains(page, payload) {
				leaves = append(leaves, int64(id))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(leaves) < 3 {
		t.Fatalf("only %d log leaves", len(leaves))
	}
	return leaves[len(leaves)/2], pageSize
}
