package redistest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recordingTB stands in for the test given to Start, to observe how Start
// gives up without ending the real test.
type recordingTB struct {
	*testing.T
	fatal, skip string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func startWithout(t *testing.T) *recordingTB {
	rec := &recordingTB{T: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(rec, t.TempDir())
		t.Error("Start returned without a redis-server on PATH")
	}()
	<-done
	return rec
}

func TestStartWithoutRedisServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())

	t.Setenv("CI", "")
	if rec := startWithout(t); rec.fatal != "" || !strings.Contains(rec.skip, "redis-server not found") {
		t.Errorf("without CI: skip %q, fatal %q; want a skip that says why", rec.skip, rec.fatal)
	}

	t.Setenv("CI", "true")
	if rec := startWithout(t); rec.skip != "" || !strings.Contains(rec.fatal, "redis-server not found") {
		t.Errorf("with CI=true: skip %q, fatal %q; want a failure", rec.skip, rec.fatal)
	}
}

func TestKillStopRestart(t *testing.T) {
	t.Parallel()
	s := Start(t, "")
	pid := s.PID()
	if pid == 0 || !strings.HasPrefix(s.DSN(), "unix://") {
		t.Fatalf("PID %d, DSN %q", pid, s.DSN())
	}
	s.Kill()
	if s.PID() != 0 {
		t.Error("PID after Kill is not 0")
	}
	if err := Ping(s.Addr()); err == nil {
		t.Fatal("the server still answers after Kill")
	}
	s.Restart()
	if s.PID() == 0 || s.PID() == pid {
		t.Errorf("PID after Restart = %d (was %d)", s.PID(), pid)
	}
	if err := Ping(s.Addr()); err != nil {
		t.Fatalf("no answer after Restart: %v", err)
	}
	s.Stop()
	s.Restart()
	if err := Ping(s.Addr()); err != nil {
		t.Fatalf("no answer after Stop and Restart: %v", err)
	}
}
