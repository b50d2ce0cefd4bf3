package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/build"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history/redisstore/redistest"
)

// Cluster mode with separate processes (issue 6): `mercurectl serve` nodes
// on one redis-server, driven by the real `mercurectl publish`, `subscribe`
// and `replay`. The in-process cluster tests are in internal/hub; these check
// what only separate processes show: --transport wiring, kill -9 of a node,
// /readyz, and a clean SIGTERM.

// clusterKey is the HMAC key of every node (each node needs the same).
const clusterKey = "cluster-test-key-0123456789abcdef"

// clusterTopic is the topic the cluster tests publish on.
const clusterTopic = "https://example.com/cluster"

// buildClusterBinary builds the binary under test into a temporary directory.
func buildClusterBinary(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds and runs mercurectl processes; skipped with -short")
	}
	// The go command on PATH, else the one of the Go root the test was
	// built with.
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(build.Default.GOROOT, "bin", "go")
		if _, err := os.Stat(gobin); err != nil {
			tb.Skip("no go command to build mercurectl with")
		}
	}
	bin := filepath.Join(tb.TempDir(), "mercurectl")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	ctx, cancel := context.WithTimeout(tb.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// procEnv is the environment of the processes: no MERCURE_* variable of the
// developer's shell leaks in, no colour.
func procEnv() []string {
	env := []string{"NO_COLOR=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MERCURE_") && !strings.HasPrefix(kv, "NO_COLOR=") {
			env = append(env, kv)
		}
	}
	return env
}

// procResult is the outcome of one command.
type procResult struct {
	stdout, stderr string
	code           int
}

// runProc runs bin with args until it exits (at most 30s).
func runProc(tb testing.TB, bin string, args ...string) procResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = procEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := procResult{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		tb.Fatalf("mercurectl %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		tb.Fatalf("mercurectl %s: still running after 30s\nstderr: %s", strings.Join(args, " "), res.stderr)
	}
	return res
}

// node is one `mercurectl serve` process.
type procNode struct {
	name    string
	cmd     *exec.Cmd
	hub     string // hub URL
	metrics string // base URL of the metrics listener
	stderr  *syncBuffer
	exited  chan struct{}
	err     error // the process's exit status, once exited is closed
}

// startProcNode starts `mercurectl serve` on 127.0.0.1:0 with the Redis DSN and
// waits until it listens.
func startProcNode(tb testing.TB, bin, name, dsn string) *procNode {
	tb.Helper()
	dir := tb.TempDir()
	addrFile := filepath.Join(dir, "addr")
	n := &procNode{name: name, stderr: &syncBuffer{}, exited: make(chan struct{})}
	n.cmd = exec.Command(bin, "serve",
		"--addr", "127.0.0.1:0", "--addr-file", addrFile,
		"--metrics-addr", "127.0.0.1:0",
		"--transport", dsn, "--jwt-key", clusterKey,
		"--log-format", "json", "--heartbeat", "1s")
	n.cmd.Env = append(procEnv(), "HOME="+dir, "XDG_STATE_HOME="+dir)
	n.cmd.Stderr = n.stderr
	if err := n.cmd.Start(); err != nil {
		tb.Fatalf("node %s: %v", name, err)
	}
	go func() {
		n.err = n.cmd.Wait()
		close(n.exited)
	}()
	tb.Cleanup(func() {
		_ = n.cmd.Process.Kill()
		<-n.exited
		if tb.Failed() {
			tb.Logf("node %s stderr:\n%s", name, n.stderr.String())
		}
	})

	deadline := time.After(20 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && strings.HasSuffix(string(b), "\n") {
			n.hub = "http://" + strings.TrimSpace(string(b)) + "/.well-known/mercure"
			break
		}
		select {
		case <-n.exited:
			tb.Fatalf("node %s exited during start-up: %v\n%s", name, n.err, n.stderr.String())
		case <-deadline:
			tb.Fatalf("node %s: no address file after 20s\n%s", name, n.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	// The metrics URL and the transport are in the "listening" log line.
	if rec := waitListening(n.stderr); rec.Msg != "" {
		n.metrics = strings.TrimSuffix(rec.Metrics, "/metrics")
		if rec.Transport != dsn {
			tb.Errorf("node %s logs transport %q, want %q", name, rec.Transport, dsn)
		}
	}
	if n.metrics == "" {
		tb.Fatalf("node %s: no metrics address in the listening log line:\n%s", name, n.stderr.String())
	}
	return n
}

// ready returns the status of the node's /readyz.
func (n *procNode) ready(tb testing.TB) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.metrics+"/readyz", nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("node %s: /readyz: %v", n.name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// waitReady polls /readyz until it answers want.
func (n *procNode) waitReady(tb testing.TB, want int, within time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		got := n.ready(tb)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("node %s: /readyz still %d after %v, want %d", n.name, got, within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// publish runs `mercurectl publish` against the node and returns the result.
func (n *procNode) publish(tb testing.TB, bin, data string) procResult {
	tb.Helper()
	return runProc(tb, bin, "publish", "--hub", n.hub, "--jwt-key", clusterKey, "--topic", clusterTopic, "--data", data)
}

// mustPublish publishes and returns the id the node assigned.
func (n *procNode) mustPublish(tb testing.TB, bin, data string) string {
	tb.Helper()
	r := n.publish(tb, bin, data)
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || id == "" || strings.Contains(id, "\n") {
		tb.Fatalf("publish on node %s: exit %d, stdout %q, stderr %q", n.name, r.code, r.stdout, r.stderr)
	}
	return id
}

// replay runs `mercurectl replay --from from -o json` on the node and returns
// the ids replayed.
func (n *procNode) replay(tb testing.TB, bin, from string) []string {
	tb.Helper()
	r := runProc(tb, bin, "replay", "--hub", n.hub, "--jwt-key", clusterKey, "--topic", clusterTopic, "--from", from, "-o", "json", "--timeout", "20s")
	if r.code != 0 {
		tb.Fatalf("replay on node %s from %s: exit %d\n%s", n.name, from, r.code, r.stderr)
	}
	return procJSONIDs(tb, r.stdout)
}

// procJSONIDs returns the ids of `-o json` output.
func procJSONIDs(tb testing.TB, out string) []string {
	tb.Helper()
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev struct{ ID string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			tb.Fatalf("not a JSON update: %q: %v", sc.Text(), err)
		}
		ids = append(ids, ev.ID)
	}
	return ids
}

// subscriber is a running `mercurectl subscribe`.
type procSubscriber struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	ids    []string
	more   chan struct{} // signalled on each line
	done   chan struct{}
	stderr *syncBuffer
}

// startProcSubscriber runs `mercurectl subscribe --count count` on the node from
// the start of the history, so that nothing published after the start is
// missed whenever its connection opens.
func startProcSubscriber(tb testing.TB, bin string, n *procNode, count int) *procSubscriber {
	tb.Helper()
	s := &procSubscriber{more: make(chan struct{}, 1), done: make(chan struct{}), stderr: &syncBuffer{}}
	s.cmd = exec.Command(bin, "subscribe", "--hub", n.hub, "--jwt-key", clusterKey, "--topic", clusterTopic,
		"--last-event-id", "earliest", "--count", fmt.Sprint(count), "--timeout", "60s", "-o", "json")
	s.cmd.Env = procEnv()
	s.cmd.Stderr = s.stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev struct{ ID string }
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				s.mu.Lock()
				s.ids = append(s.ids, ev.ID)
				s.mu.Unlock()
				select {
				case s.more <- struct{}{}:
				default:
				}
			}
		}
	}()
	tb.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
		_ = s.cmd.Wait()
	})
	return s
}

// waitIDs waits until the subscriber has printed n updates and returns them.
func (s *procSubscriber) waitIDs(tb testing.TB, n int) []string {
	tb.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s.mu.Lock()
		ids := slices.Clone(s.ids)
		s.mu.Unlock()
		if len(ids) >= n {
			return ids
		}
		select {
		case <-s.more:
		case <-s.done:
			s.mu.Lock()
			ids = slices.Clone(s.ids)
			s.mu.Unlock()
			if len(ids) >= n {
				return ids
			}
			tb.Fatalf("subscribe ended after %d updates, want %d\n%s", len(ids), n, s.stderr.String())
		case <-deadline:
			tb.Fatalf("subscribe printed %d updates in 20s, want %d\n%s", len(ids), n, s.stderr.String())
		}
	}
}

func TestClusterProcesses(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("redis-server and signals: not on Windows")
	}
	t.Parallel()
	bin := buildClusterBinary(t)
	redis := redistest.Start(t, "")
	dsn := redis.DSN()
	a := startProcNode(t, bin, "A", dsn)
	b := startProcNode(t, bin, "B", dsn)

	// Publish on one node, receive on the other (and on the first).
	acked := []string{a.mustPublish(t, bin, "one")}
	subs := []*procSubscriber{startProcSubscriber(t, bin, a, 6), startProcSubscriber(t, bin, b, 6)}
	for _, s := range subs {
		s.waitIDs(t, 1) // connected: what follows is live
	}
	acked = append(acked, a.mustPublish(t, bin, "two"), b.mustPublish(t, bin, "three"))
	for i, s := range subs {
		if got := s.waitIDs(t, 3); !slices.Equal(got, acked) {
			t.Fatalf("subscriber %d: %q, want %q", i, got, acked)
		}
	}
	// A cursor issued by A replays on B, and the other way round.
	if got := b.replay(t, bin, acked[0]); !slices.Equal(got, acked[1:]) {
		t.Errorf("replay on B after A's %s: %q, want %q", acked[0], got, acked[1:])
	}
	if got := a.replay(t, bin, acked[2]); len(got) != 0 {
		t.Errorf("replay on A after B's newest %s: %q, want nothing", acked[2], got)
	}

	// kill -9 of A: B keeps serving, and the history is intact.
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.exited
	acked = append(acked, b.mustPublish(t, bin, "four"))
	if got := subs[1].waitIDs(t, 4); !slices.Equal(got, acked) {
		t.Fatalf("B's subscriber after A died: %q, want %q", got, acked)
	}
	if got := b.replay(t, bin, "earliest"); !slices.Equal(got, acked) {
		t.Errorf("history on B after A died: %q, want %q", got, acked)
	}
	// A node started afterwards serves the whole history.
	c := startProcNode(t, bin, "C", dsn)
	if got := c.replay(t, bin, "earliest"); !slices.Equal(got, acked) {
		t.Errorf("history on a new node: %q, want %q", got, acked)
	}

	// redis-server killed: publishes fail with the hub's reason (never
	// acknowledged), /readyz says so, subscribers stay connected.
	b.waitReady(t, http.StatusOK, 10*time.Second)
	redis.Kill()
	for _, n := range []*procNode{b, c} {
		r := n.publish(t, bin, "lost")
		if r.code == 0 || !strings.Contains(r.stderr, "503") || !strings.Contains(r.stderr, "history store unavailable") {
			t.Errorf("publish on %s while Redis is down: exit %d, stdout %q, stderr %q; want a failure naming 503", n.name, r.code, r.stdout, r.stderr)
		}
		n.waitReady(t, http.StatusServiceUnavailable, 10*time.Second)
	}
	redis.Restart()
	restarted := time.Now()
	for _, n := range []*procNode{b, c} {
		n.waitReady(t, http.StatusOK, 20*time.Second)
	}
	t.Logf("nodes ready %v after redis-server restarted", time.Since(restarted).Round(time.Millisecond))
	acked = append(acked, c.mustPublish(t, bin, "five"), b.mustPublish(t, bin, "six"))
	select {
	case <-subs[1].done:
		// --count 6 reached (or the process ended early: checked below).
	case <-time.After(20 * time.Second):
		t.Fatal("B's subscriber did not end after 6 updates")
	}
	if err := subs[1].cmd.Wait(); err != nil {
		t.Errorf("B's subscriber: %v\n%s", err, subs[1].stderr.String())
	}
	if got := subs[1].waitIDs(t, 6); !slices.Equal(got, acked) {
		t.Errorf("B's subscriber through the Redis restart: %q, want %q", got, acked)
	}
	for _, n := range []*procNode{b, c} {
		if got := n.replay(t, bin, "earliest"); !slices.Equal(got, acked) {
			t.Errorf("history on %s after the Redis restart: %q, want %q", n.name, got, acked)
		}
	}

	// SIGTERM: a clean stop, exit 0.
	for _, n := range []*procNode{b, c} {
		if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-n.exited:
			if n.err != nil {
				t.Errorf("node %s after SIGTERM: %v\n%s", n.name, n.err, n.stderr.String())
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("node %s still running 15s after SIGTERM", n.name)
		}
		if !strings.Contains(n.stderr.String(), "shutdown complete") {
			t.Errorf("node %s: no shutdown line\n%s", n.name, n.stderr.String())
		}
	}
}
