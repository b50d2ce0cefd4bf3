package redisstore

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/historytest"
	"github.com/mercurectl/mercurectl/internal/history/redisstore/redistest"
)

func TestParseDSN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dsn                 string
		network, addr, user string
		pass                string
		db                  int
		tls                 bool
		stream              string
		readTimeout         time.Duration
		wantErr             bool
	}{
		{dsn: "redis://localhost:6379/0", network: "tcp", addr: "localhost:6379"},
		{dsn: "redis://127.0.0.1:6380/3", network: "tcp", addr: "127.0.0.1:6380", db: 3},
		{dsn: "redis://user:p%40ss@[::1]:6379/2", network: "tcp", addr: "[::1]:6379", user: "user", pass: "p@ss", db: 2},
		{dsn: "redis://:secret@redis.internal", network: "tcp", addr: "redis.internal:6379", pass: "secret"},
		{dsn: "rediss://cache.example.com:6380/1", network: "tcp", addr: "cache.example.com:6380", db: 1, tls: true},
		{dsn: "unix:///run/redis/redis.sock", network: "unix", addr: "/run/redis/redis.sock"},
		{dsn: "unix:///run/redis.sock?db=5&stream=blue", network: "unix", addr: "/run/redis.sock", db: 5, stream: "blue"},
		{dsn: "redis://h:1/0?stream=green&read_timeout=2s", network: "tcp", addr: "h:1", stream: "green", readTimeout: 2 * time.Second},
		{dsn: "memory", wantErr: true},
		{dsn: "bolt:///tmp/x.db", wantErr: true},
		{dsn: "http://localhost:6379", wantErr: true},
		{dsn: "redis://localhost/notanumber", wantErr: true},
		{dsn: "redis://localhost/0?no_such_option=1", wantErr: true},
		{dsn: "unix://", wantErr: true},
		{dsn: "redis://%zz", wantErr: true},
	}
	for _, tc := range tests {
		ro, stream, err := parseDSN(tc.dsn)
		if tc.wantErr {
			if !errors.Is(err, ErrBadDSN) {
				t.Errorf("parseDSN(%q) error = %v, want ErrBadDSN", tc.dsn, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseDSN(%q): %v", tc.dsn, err)
			continue
		}
		if ro.Network != tc.network || ro.Addr != tc.addr || ro.Username != tc.user || ro.Password != tc.pass ||
			ro.DB != tc.db || (ro.TLSConfig != nil) != tc.tls || stream != tc.stream {
			t.Errorf("parseDSN(%q) = %s %s user %q pass %q db %d tls %v stream %q", tc.dsn,
				ro.Network, ro.Addr, ro.Username, ro.Password, ro.DB, ro.TLSConfig != nil, stream)
		}
		if tc.readTimeout != 0 && ro.ReadTimeout != tc.readTimeout {
			t.Errorf("parseDSN(%q) read timeout %s, want %s", tc.dsn, ro.ReadTimeout, tc.readTimeout)
		}
		// Retries stay off whatever the DSN says: see parseDSN.
		if ro.MaxRetries != -1 || !ro.ContextTimeoutEnabled {
			t.Errorf("parseDSN(%q): MaxRetries %d, ContextTimeoutEnabled %v", tc.dsn, ro.MaxRetries, ro.ContextTimeoutEnabled)
		}
	}
	for _, dsn := range []string{"redis://u:hunter2@h:1/0?db=x", "redis://u:hunter2@h:%zz/0", "redis://u:hunter2@h:1/0?bad=1"} {
		if _, _, err := parseDSN(dsn); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error for a bad DSN with a password = %v; want one that hides the password", err)
		}
	}
}

func TestCheckVersion(t *testing.T) {
	t.Parallel()
	for info, ok := range map[string]bool{
		"# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n": true,
		"redis_version:6.2.0\r\n":                         true,
		"redis_version:7.2.4\r\nvalkey_version:8.0.1\r\n": true,
		"redis_version:10.0.0\r\n":                        true,
		"redis_version:6.0.16\r\n":                        false,
		"redis_version:5.0.7\r\n":                         false,
		"redis_version:x.y\r\n":                           false,
		"# Server\r\n":                                    false,
	} {
		err := checkVersion(info)
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrIncompatible)) {
			t.Errorf("checkVersion(%q) = %v, want ok=%v", info, err, ok)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "")
	rc := rawClient(t, srv)

	// Nobody listening: ErrUnavailable, promptly.
	start := time.Now()
	_, err := Open(t.Context(), "unix://"+filepath.Join(t.TempDir(), "none.sock"), Options{})
	if !errors.Is(err, history.ErrUnavailable) {
		t.Errorf("Open with no server = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open with no server took %s", d)
	}

	// A stream written by someone else.
	foreign := newPrefix(t)
	if err := rc.XAdd(t.Context(), &redis.XAddArgs{Stream: "{" + foreign + "}:stream", Values: map[string]any{"k": "v"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), srv.DSN(), Options{Stream: foreign}); !errors.Is(err, ErrIncompatible) {
		t.Errorf("Open on a foreign stream = %v, want ErrIncompatible", err)
	}
	// A key of another type.
	wrong := newPrefix(t)
	if err := rc.Set(t.Context(), "{"+wrong+"}:stream", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), srv.DSN(), Options{Stream: wrong}); !errors.Is(err, ErrIncompatible) {
		t.Errorf("Open on a string key = %v, want ErrIncompatible", err)
	}
	if _, err := Open(t.Context(), srv.DSN(), Options{Stream: "a{b}"}); !errors.Is(err, ErrBadDSN) {
		t.Errorf("Open with braces in the prefix = %v, want ErrBadDSN", err)
	}
	if _, err := Open(t.Context(), "memory", Options{}); !errors.Is(err, ErrBadDSN) {
		t.Errorf("Open(memory) = %v, want ErrBadDSN", err)
	}

	// The DSN's stream parameter names the prefix; Options.Stream wins.
	s, err := Open(t.Context(), srv.DSN()+"?stream=fromdsn", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if s.keys.stream != "{fromdsn}:stream" {
		t.Errorf("stream key = %q", s.keys.stream)
	}
	s2, err := Open(t.Context(), srv.DSN()+"?stream=fromdsn", Options{Stream: "opt"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s2.Close() }()
	if s2.keys.stream != "{opt}:stream" {
		t.Errorf("stream key = %q", s2.keys.stream)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

// The redis:// form over TCP, with a password and a database number.
func TestTCPWithPassword(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	redistest.Start(t, "", "--port", strconv.Itoa(port), "--requirepass", "s3cret")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	dsn := "redis://:s3cret@127.0.0.1:" + strconv.Itoa(port) + "/2"
	s, err := Open(ctx, dsn, Options{Stream: newPrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	n := &node{Store: s}
	if err := s.Start(n.sink); err != nil {
		t.Fatal(err)
	}
	u := historytest.NewUpdate("tcp")
	if err := s.Append(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if got := n.updates(); len(got) != 1 || got[0].ID != "tcp" {
		t.Errorf("sink got %v", got)
	}

	_, err = Open(ctx, "redis://:wrong-password@127.0.0.1:"+strconv.Itoa(port)+"/2", Options{})
	if err == nil || errors.Is(err, history.ErrUnavailable) || strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("Open with a wrong password = %v; want a non-transient error that hides the password", err)
	}
}
