package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// syncBuffer is a bytes.Buffer safe for concurrent use: serve writes logs
// from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testStreams are the buffers behind test IOStreams.
type testStreams struct {
	In  *bytes.Buffer
	Out *syncBuffer
	Err *syncBuffer
}

// newTestIOStreams returns IOStreams on buffers, none of them a terminal,
// with colour disabled (NO_COLOR), as gh's iostreams.Test().
func newTestIOStreams() (*IOStreams, *testStreams) {
	ts := &testStreams{In: &bytes.Buffer{}, Out: &syncBuffer{}, Err: &syncBuffer{}}
	ios := newIOStreams(ts.In, ts.Out, ts.Err, envMap{"NO_COLOR": "1"}.Getenv)
	return ios, ts
}

// envMap is a fake environment.
type envMap map[string]string

func (e envMap) Getenv(k string) string { return e[k] }

// fixedNow is the clock of unit tests.
var fixedNow = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// newTestFactory returns a factory on test streams and a fake environment.
func newTestFactory(env envMap) (*factory, *testStreams) {
	ios, ts := newTestIOStreams()
	if env == nil {
		env = envMap{}
	}
	return &factory{
		IO:         ios,
		HTTPClient: func() (*http.Client, error) { return &http.Client{}, nil },
		Now:        func() time.Time { return fixedNow },
		Getenv:     env.Getenv,
		Logger:     func() *slog.Logger { return slog.New(slog.DiscardHandler) },
	}, ts
}

// execCmd runs cmd (a command under test, built with a runF hook) with args,
// under a root built by the production newRootCmdBase, so that flag errors,
// environment variables and --no-color behave as in the real binary.
func execCmd(tb testing.TB, f *factory, cmd *cobra.Command, args ...string) error {
	tb.Helper()
	root := newRootCmdBase(f)
	root.AddCommand(cmd)
	root.SetArgs(append([]string{cmd.Name()}, args...))
	_, err := root.ExecuteC()
	return err
}

// checkExit fails the test unless err maps to wantCode and, when wantErr is
// set, contains it. It reports whether the case expected an error (so the
// caller stops there).
func checkExit(tb testing.TB, err error, wantCode int, wantErr string) bool {
	tb.Helper()
	if code := exitCode(err); code != wantCode {
		tb.Fatalf("exit %d (%v), want %d", code, err, wantCode)
	}
	if wantErr == "" {
		return false
	}
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		tb.Fatalf("error %v, want %q", err, wantErr)
	}
	return true
}
