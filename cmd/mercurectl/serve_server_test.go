package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history/bolt"
	"github.com/mercurectl/mercurectl/internal/hub"
)

// When a step of Open fails, what the earlier steps opened is closed again:
// the listeners (their ports can be bound again), the history file (another
// hub can open it), the hub, and no address file is left behind.
func TestHubServerOpenUndoesWhatItOpened(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = busy.Close() })

	tests := []struct {
		name string
		// args come after --addr 127.0.0.1:0 --transport bolt://DB and
		// --addr-file ADDR; dir is the test's directory.
		args func(dir string) []string
		// setup runs before Open, in the test's directory, and returns a
		// clean-up to run after it.
		setup func(t *testing.T, dir string, s *hubServer) func()
		// wantErr is in Open's error.
		wantErr string
		// opened says which steps succeeded before the failure.
		listened, stored bool
	}{
		{
			name:    "the key file",
			args:    func(dir string) []string { return []string{"--jwt-key", "@" + filepath.Join(dir, "missing")} },
			wantErr: "--jwt-key",
		},
		{
			name: "the TLS certificate",
			args: func(dir string) []string {
				return []string{"--anonymous", "--tls-cert", filepath.Join(dir, "c"), "--tls-key", filepath.Join(dir, "k")}
			},
			wantErr: "--tls-cert",
		},
		{
			name:     "the metrics listener",
			args:     func(string) []string { return []string{"--anonymous", "--metrics-addr", busy.Addr().String()} },
			wantErr:  "--metrics-addr",
			listened: true,
		},
		{
			name: "the history store",
			args: func(string) []string { return []string{"--anonymous", "--metrics-addr", "127.0.0.1:0"} },
			setup: func(t *testing.T, dir string, _ *hubServer) func() {
				other, err := bolt.Open(filepath.Join(dir, "hub.db"), bolt.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return func() { _ = other.Close() }
			},
			wantErr:  "in use by another process",
			listened: true,
		},
		{
			name: "the hub",
			args: func(string) []string { return []string{"--anonymous", "--metrics-addr", "127.0.0.1:0"} },
			setup: func(_ *testing.T, _ string, s *hubServer) func() {
				s.newHub = func(hub.Config) (*hub.Hub, error) { return nil, errors.New("no hub today") }
				return func() {}
			},
			wantErr:  "no hub today",
			listened: true, stored: true,
		},
		{
			name: "the address file",
			args: func(dir string) []string {
				return []string{"--anonymous", "--metrics-addr", "127.0.0.1:0", "--addr-file", filepath.Join(dir, "missing", "addr")}
			},
			wantErr:  "--addr-file",
			listened: true, stored: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			f, _ := newTestFactory(nil)
			args := append([]string{"--addr", "127.0.0.1:0", "--transport", "bolt://" + filepath.ToSlash(filepath.Join(dir, "hub.db")),
				"--addr-file", filepath.Join(dir, "addr"), "--shutdown-timeout", "5s"}, tt.args(dir)...)
			o, err := parseServe(t, f, args...)
			if err != nil {
				t.Fatal(err)
			}
			s := newHubServer(o, slog.New(slog.DiscardHandler))
			if tt.setup != nil {
				defer tt.setup(t, dir, s)()
			}
			err = s.Open(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Open = %v, want an error about %q", err, tt.wantErr)
			}
			if len(s.undo) != 0 {
				t.Errorf("%d steps left undone", len(s.undo))
			}
			if (s.ln != nil) != tt.listened || (s.store != nil) != tt.stored {
				t.Fatalf("listened %v, stored %v; want %v, %v", s.ln != nil, s.store != nil, tt.listened, tt.stored)
			}
			for _, ln := range []net.Listener{s.ln, s.mln} {
				if ln == nil {
					continue
				}
				again, err := net.Listen("tcp", ln.Addr().String())
				if err != nil {
					t.Errorf("%s is still bound: %v", ln.Addr(), err)
					continue
				}
				_ = again.Close()
			}
			if tt.stored {
				again, err := bolt.Open(filepath.Join(dir, "hub.db"), bolt.Options{LockTimeout: 100 * time.Millisecond})
				if err != nil {
					t.Errorf("the history file is still held: %v", err)
				} else {
					_ = again.Close()
				}
			}
			if _, err := os.Stat(o.AddrFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("address file left behind: %v", err)
			}
		})
	}
}

// Close undoes Open in the reverse order, once: the address file goes last,
// after the history file is released, and a second Close does nothing.
func TestHubServerCloseReleasesEverything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, _ := newTestFactory(nil)
	db := filepath.Join(dir, "hub.db")
	o, err := parseServe(t, f, "--anonymous", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
		"--transport", "bolt://"+filepath.ToSlash(db), "--addr-file", filepath.Join(dir, "addr"))
	if err != nil {
		t.Fatal(err)
	}
	s := newHubServer(o, slog.New(slog.DiscardHandler))
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(o.AddrFile); err != nil {
		t.Fatalf("no address file once open: %v", err)
	}
	// The last step removes the address file; wrap it to check that the
	// history file is released by then and the address file still there.
	var storeReleased bool
	last := s.undo[0]
	s.undo[0] = func(ctx context.Context) error {
		again, err := bolt.Open(db, bolt.Options{LockTimeout: 100 * time.Millisecond})
		if err == nil {
			storeReleased = true
			_ = again.Close()
		}
		if _, err := os.Stat(o.AddrFile); err != nil {
			t.Errorf("the address file went before the last step: %v", err)
		}
		return last(ctx)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !storeReleased {
		t.Error("the history file was still held when the address file was removed")
	}
	if _, err := os.Stat(o.AddrFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("address file left behind: %v", err)
	}
	for _, ln := range []net.Listener{s.ln, s.mln} {
		again, err := net.Listen("tcp", ln.Addr().String())
		if err != nil {
			t.Errorf("%s is still bound: %v", ln.Addr(), err)
			continue
		}
		_ = again.Close()
	}
	if err := s.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// serve never removes an address file it did not write: a second hub that
// fails to start leaves the first one's file alone.
func TestFailedServeKeepsAnotherHubsAddrFile(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = busy.Close() })
	addrFile := filepath.Join(t.TempDir(), "addr")
	if err := os.WriteFile(addrFile, []byte(busy.Addr().String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, _ := newTestFactory(nil)
	o, err := parseServe(t, f, "--anonymous", "--transport", "memory", "--addr", busy.Addr().String(), "--addr-file", addrFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := runServe(t.Context(), o); exitCode(err) != exitError {
		t.Fatalf("runServe on a used port: %v", err)
	}
	if _, err := os.Stat(addrFile); err != nil {
		t.Errorf("the other hub's address file is gone: %v", err)
	}
}
