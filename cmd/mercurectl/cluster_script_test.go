package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mercurectl/mercurectl/internal/history/redisstore/redistest"
)

// The testscript support of the cluster scripts (testdata/script/cluster_*):
// the [redis] condition and the redis command, which runs one redis-server
// per script, as internal/history/redisstore/redistest does for Go tests.

// scriptRedisStartTimeout bounds the wait for redis-server to answer PING.
const scriptRedisStartTimeout = 15 * time.Second

// scriptCondition evaluates the conditions that the scripts add to
// testscript's own. [redis] is true when redis-server is on PATH; when it is
// not, the condition is false (the script skips), except under CI=true, where
// the absence is an error: CI installs redis-server.
func scriptCondition(cond string) (bool, error) {
	if cond != "redis" {
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			return false, fmt.Errorf("redis-server not found on PATH (CI=true, so this is a failure: install redis-server): %w", err)
		}
		return false, nil
	}
	return true, nil
}

// scriptRedis is the redis-server of one script.
type scriptRedis struct {
	sock   string
	args   []string
	cmd    *exec.Cmd
	exited chan struct{}
}

// scriptRedisServers maps each running script to its redis-server.
var scriptRedisServers sync.Map // *testscript.TestScript → *scriptRedis

// cmdRedis manages the script's redis-server:
//
//	redis start [-requirepass PASSWORD]
//	redis kill
//	redis restart
//
// start runs redis-server with its data in $WORK/redis, listening on a unix
// socket only, persisting every write before acknowledging it (appendonly
// yes, appendfsync always), and sets $REDIS_DSN to its unix:// DSN (with the
// password, if any). kill sends SIGKILL, as a crash would; restart starts it
// again on the same socket and data. The server is killed when the script
// ends. Guard scripts with [!redis] skip.
func cmdRedis(ts *testscript.TestScript, neg bool, args []string) {
	const usage = "usage: redis start [-requirepass PASSWORD] | redis kill | redis restart"
	if neg {
		ts.Fatalf("unsupported: ! redis")
	}
	if len(args) == 0 {
		ts.Fatalf(usage)
	}
	v, started := scriptRedisServers.Load(ts)
	switch args[0] {
	case "start":
		var password string
		switch {
		case len(args) == 3 && args[1] == "-requirepass":
			password = args[2]
		case len(args) != 1:
			ts.Fatalf(usage)
		}
		if started {
			ts.Fatalf("redis: already started")
		}
		r, err := newScriptRedis(ts, password)
		ts.Check(err)
		scriptRedisServers.Store(ts, r)
		ts.Defer(func() {
			r.kill()
			scriptRedisServers.Delete(ts)
		})
		ts.Check(r.start())
		dsn := "unix://" + r.sock
		if password != "" {
			dsn = (&url.URL{Scheme: "unix", User: url.UserPassword("", password), Path: r.sock}).String()
		}
		ts.Setenv("REDIS_DSN", dsn)
	case "kill", "restart":
		if len(args) != 1 {
			ts.Fatalf(usage)
		}
		if !started {
			ts.Fatalf("redis %s: not started", args[0])
		}
		r := v.(*scriptRedis)
		r.kill()
		if args[0] == "restart" {
			ts.Check(r.start())
		}
	default:
		ts.Fatalf(usage)
	}
}

// newScriptRedis prepares the data directory and socket path of a server.
func newScriptRedis(ts *testscript.TestScript, password string) (*scriptRedis, error) {
	dir := ts.MkAbs("redis")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "redis.sock")
	// sockaddr_un holds about 100 bytes on Linux and macOS.
	if len(sock) > 100 {
		short, err := os.MkdirTemp("", "redis")
		if err != nil {
			return nil, err
		}
		ts.Defer(func() { _ = os.RemoveAll(short) })
		sock = filepath.Join(short, "redis.sock")
	}
	args := []string{
		"--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--dir", dir, "--logfile", "redis.log", "--daemonize", "no",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always",
	}
	if password != "" {
		args = append(args, "--requirepass", password)
	}
	return &scriptRedis{sock: sock, args: args}, nil
}

// start runs the server and waits until it answers.
func (r *scriptRedis) start() error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return fmt.Errorf("redis start: %w", err)
	}
	cmd := exec.Command(bin, r.args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redis start: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	r.cmd, r.exited = cmd, exited
	deadline := time.Now().Add(scriptRedisStartTimeout)
	for {
		err := redistest.Ping(r.sock)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			r.cmd = nil
			return fmt.Errorf("redis-server exited during start-up: %v", cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			r.kill()
			return fmt.Errorf("redis-server did not answer within %v: %w", scriptRedisStartTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the server started by start (by its PID) and removes the socket
// that a killed server leaves behind.
func (r *scriptRedis) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
	r.cmd = nil
	_ = os.Remove(r.sock)
}
