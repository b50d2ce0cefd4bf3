// Package redistest starts throwaway redis-server processes for tests, the
// way net/http/httptest starts HTTP servers. It is test support: only tests
// import it.
//
// A Server listens on a unix socket only (redis-server cannot pick a free TCP
// port itself) and persists every write before acknowledging it
// (appendonly yes, appendfsync always, no RDB snapshots), so that Kill
// followed by Restart loses nothing that a client saw acknowledged.
//
// When redis-server is not on PATH, Start skips the test with a message that
// says so, except when the environment variable CI is "true": CI installs
// redis-server, so its absence there is a failure.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long Start waits for the server to answer PING
// (which includes replaying the append-only file after a restart).
const startTimeout = 15 * time.Second

// maxSocketPath keeps socket paths under the 104/108-byte limit of
// sockaddr_un on macOS/Linux.
const maxSocketPath = 100

// Server is one redis-server process.
type Server struct {
	tb    testing.TB
	bin   string
	dir   string
	sock  string
	extra []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts redis-server with its data in dir ("" means tb.TempDir()) and
// its socket in dir (or in a short temporary directory when the path would be
// too long for a socket). extra arguments are appended to the command line
// (for example "--port", "6390" to also listen on TCP, or "--requirepass",
// "secret"). The server is killed when the test ends.
func Start(tb testing.TB, dir string, extra ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis-server not found on PATH (CI=true, so this is a failure: install redis-server): %v", err)
		}
		tb.Skipf("redis-server not found on PATH; skipping the tests that need a real Redis (install redis-server, or run with CI=true to make this a failure): %v", err)
	}
	if dir == "" {
		dir = tb.TempDir()
	}
	sock := filepath.Join(dir, "redis.sock")
	if len(sock) > maxSocketPath {
		short, err := os.MkdirTemp("", "redis")
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		tb.Cleanup(func() { _ = os.RemoveAll(short) })
		sock = filepath.Join(short, "redis.sock")
	}
	s := &Server{tb: tb, bin: bin, dir: dir, sock: sock, extra: extra}
	tb.Cleanup(func() { s.stop(false) })
	if err := s.start(); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	return s
}

// Addr returns the path of the server's unix socket.
func (s *Server) Addr() string { return s.sock }

// DSN returns the unix:// DSN of the server, for redisstore.Open.
func (s *Server) DSN() string { return "unix://" + s.sock }

// Dir returns the server's data directory.
func (s *Server) Dir() string { return s.dir }

// PID returns the process id of the running server (0 when stopped).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop shuts the server down gracefully (SIGTERM) and waits for it to exit.
func (s *Server) Stop() {
	s.tb.Helper()
	s.stop(true)
}

// Kill kills the server (SIGKILL), as a crash would, and waits for it to
// exit.
func (s *Server) Kill() {
	s.tb.Helper()
	s.stop(false)
}

// Restart stops the server if it runs (gracefully) and starts it again on the
// same socket with the same data directory, waiting until it has loaded its
// data and answers.
func (s *Server) Restart() {
	s.tb.Helper()
	s.stop(true)
	if err := s.start(); err != nil {
		s.tb.Fatalf("redistest: restart: %v", err)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	args := []string{
		"--port", "0",
		"--bind", "127.0.0.1",
		"--unixsocket", s.sock,
		"--unixsocketperm", "700",
		"--dir", s.dir,
		"--logfile", "redis.log",
		"--daemonize", "no",
		"--save", "",
		"--appendonly", "yes",
		"--appendfsync", "always",
	}
	args = append(args, s.extra...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		err := Ping(s.sock)
		if err == nil {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited during start-up: %v\n%s", cmd.ProcessState, s.log())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server did not answer within %s: %w\n%s", startTimeout, err, s.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

// stop ends the server process started by this Server (by its PID).
func (s *Server) stop(graceful bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	if graceful {
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	} else {
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd, s.exited = nil, nil
	// redis-server removes its socket on a clean exit but not when killed;
	// a stale one would make the next start's PING hit nothing.
	_ = os.Remove(s.sock)
}

// log returns the tail of the server's log file, for error messages.
func (s *Server) log() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// Ping reports whether a server answers PING on sock (LOADING while it replays
// its append-only file counts as not yet; NOAUTH, from a server started with
// --requirepass, counts as up).
func Ping(sock string) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(context.Background(), "unix", sock)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" && !strings.HasPrefix(line, "-NOAUTH") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
