package main

// Durability of `mercurectl serve` on the bolt transport (issue 3, items 1
// and 3), with real processes: a hub killed with SIGKILL while several
// publishers are mid-stream loses no acknowledged update, and after a restart
// on the same file every acknowledged id replays, in acknowledgement order per
// publisher; a second hub on a file in use fails with a clear message
// (exit 1); with no --transport, the history is a bolt file in the user's
// state directory whose path is logged at start-up.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/sse"
	"github.com/mercurectl/mercurectl/internal/token"
)

// durKey is the HMAC key of the durability tests' hubs.
const durKey = "durability-test-key-0123456789abcdef"

// durTopic is the topic the durability tests publish on.
const durTopic = "https://example.com/durable"

// durProc is one `mercurectl serve` process.
type durProc struct {
	cmd     *exec.Cmd
	url     string // the hub URL
	metrics string // base URL of the metrics listener ("" without one)
	// transport is the store description of the "listening" log line.
	transport string
	stderr    *syncBuffer
	exited    chan struct{}
	err       error // the exit status, once exited is closed
}

// startDurProc starts `serve` on 127.0.0.1:0 with args appended and waits
// until it listens. HOME and XDG_STATE_HOME point into stateDir, so that the
// default history file stays inside the test's directory.
func startDurProc(tb testing.TB, bin, stateDir string, args ...string) *durProc {
	tb.Helper()
	return startDurProcWith(tb, exec.Command, bin, stateDir, args...)
}

// startDurProcWith is startDurProc with the command built by command, such
// as one that runs the binary under a lower descriptor limit.
func startDurProcWith(tb testing.TB, command func(string, ...string) *exec.Cmd, bin, stateDir string, args ...string) *durProc {
	tb.Helper()
	addrFile := filepath.Join(tb.TempDir(), "addr")
	p := &durProc{stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = command(bin, append([]string{"serve",
		"--addr", "127.0.0.1:0", "--addr-file", addrFile,
		"--metrics-addr", "127.0.0.1:0",
		"--jwt-key", durKey, "--log-format", "json",
	}, args...)...)
	p.cmd.Env = append(procEnv(), "HOME="+filepath.Join(stateDir, "home"), "XDG_STATE_HOME="+filepath.Join(stateDir, "state"))
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if tb.Failed() {
			tb.Logf("serve %s stderr:\n%s", strings.Join(args, " "), p.stderr.String())
		}
	})
	deadline := time.After(30 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && strings.HasSuffix(string(b), "\n") {
			p.url = "http://" + strings.TrimSpace(string(b)) + "/.well-known/mercure"
			break
		}
		select {
		case <-p.exited:
			tb.Fatalf("serve exited during start-up: %v\n%s", p.err, p.stderr.String())
		case <-deadline:
			tb.Fatalf("serve: no address file after 30s\n%s", p.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	rec := waitListening(p.stderr)
	p.metrics = strings.TrimSuffix(rec.Metrics, "/metrics")
	p.transport = rec.Transport
	if p.metrics == "" || p.transport == "" {
		tb.Fatalf("serve: no metrics address or transport in the listening log line:\n%s", p.stderr.String())
	}
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *durProc) kill(tb testing.TB) {
	tb.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		tb.Fatal(err)
	}
	<-p.exited
}

// terminate sends SIGTERM and returns the exit code of a graceful shutdown.
func (p *durProc) terminate(tb testing.TB) int {
	tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		tb.Fatalf("serve still running 30s after SIGTERM\n%s", p.stderr.String())
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return exit.ExitCode()
	}
	if p.err != nil {
		tb.Fatal(p.err)
	}
	return 0
}

// get fetches a URL of the process and returns status and body.
func (p *durProc) get(tb testing.TB, u string) (int, string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of an unlabelled sample on /metrics.
func (p *durProc) metric(tb testing.TB, name string) (float64, bool) {
	tb.Helper()
	status, body := p.get(tb, p.metrics+"/metrics")
	if status != http.StatusOK {
		tb.Fatalf("/metrics: %d", status)
	}
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("/metrics: bad sample %q", line)
			}
			return f, true
		}
	}
	return 0, false
}

// durToken mints a legacy token for the test key.
func durToken(tb testing.TB, publish, subscribe []string) string {
	tb.Helper()
	tok, err := token.Mint(token.MintOptions{Key: []byte(durKey), Publish: publish, Subscribe: subscribe, TTL: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// durPublish posts one update with a client-chosen id and reports whether
// the hub acknowledged it (200 and the id as the body). err is a network
// error; an HTTP refusal is returned as an error too, with its status.
func durPublish(ctx context.Context, client *http.Client, hubURL, tok, id, data string) error {
	form := url.Values{"topic": {durTopic}, "id": {id}, "data": {data}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hubURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err // the response was cut: not an acknowledgement
	}
	if resp.StatusCode != http.StatusOK || string(body) != id {
		return &refusedError{status: resp.StatusCode, body: string(body)}
	}
	return nil
}

// refusedError is a publish the hub answered with anything but 200 + id.
type refusedError struct {
	status int
	body   string
}

func (e *refusedError) Error() string { return fmt.Sprintf("publish refused: %d %q", e.status, e.body) }

// durID names update k of publisher pub in round r.
func durID(r, pub, k int) string { return fmt.Sprintf("r%d-p%d-%06d", r, pub, k) }

// parseDurID is durID's inverse.
func parseDurID(id string) (r, pub, k int, ok bool) {
	n, err := fmt.Sscanf(id, "r%d-p%d-%d", &r, &pub, &k)
	return r, pub, k, err == nil && n == 3 && durID(r, pub, k) == id
}

// publishUntilKilled runs `publishers` publishers against p until they have
// been acknowledged at least `target` updates in all, then kills p with
// SIGKILL while they are still publishing. It returns, per publisher, how
// many updates were acknowledged (ids durID(round, pub, 0..n-1), in order).
func publishUntilKilled(t *testing.T, p *durProc, round, publishers, target int) []int {
	t.Helper()
	tok := durToken(t, []string{durTopic}, nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: publishers}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	acked := make([]int, publishers)
	var total atomic.Int64
	var killed atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for pub := range publishers {
		wg.Go(func() {
			for k := 0; ; k++ {
				id := durID(round, pub, k)
				err := durPublish(context.Background(), client, p.url, tok, id, "payload of "+id)
				if err != nil {
					var refused *refusedError
					if !killed.Load() || errors.As(err, &refused) {
						// Before the kill nothing may fail; a refusal
						// is never expected, even during the kill.
						errs <- fmt.Errorf("publisher %d, update %d: %w", pub, k, err)
					}
					return
				}
				acked[pub] = k + 1
				total.Add(1)
			}
		})
	}
	deadline := time.Now().Add(60 * time.Second)
	for total.Load() < int64(target) && time.Now().Before(deadline) && len(errs) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	killed.Store(true)
	p.kill(t)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := total.Load(); got < int64(target) {
		t.Fatalf("round %d: only %d updates acknowledged before the kill, want %d", round, got, target)
	}
	t.Logf("round %d: killed with %d updates acknowledged by %d publishers", round, total.Load(), publishers)
	return acked
}

// replayAll subscribes from "earliest" and returns the ids of the whole
// history, up to the hub's replay-done comment.
func replayAll(t *testing.T, p *durProc) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"?topic=*&lastEventID=earliest", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+durToken(t, nil, []string{"*"}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("subscribe: %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Last-Event-ID"); got != "earliest" {
		t.Errorf("response cursor %q, want earliest", got)
	}
	// The replay-done comment ends the subscription: Next then fails
	// instead of waiting for a live update.
	done := false
	r := sse.NewReader(bufio.NewReader(resp.Body), sse.ReaderOptions{OnComment: func(c string) {
		if strings.TrimSpace(c) == sse.ReplayDoneComment {
			done = true
			cancel()
		}
	}})
	var ids []string
	for {
		ev, err := r.Next()
		if err != nil {
			if done {
				return ids
			}
			t.Fatalf("replay after %d events: %v", len(ids), err)
		}
		ids = append(ids, ev.ID)
	}
}

// Issue 3 item 3: kill -9 at any moment loses no acknowledged update. Two
// rounds of eight publishers are each cut by SIGKILL mid-stream; after the
// restarts on the same file, the history holds every acknowledged id
// exactly once, each publisher's in acknowledgement order, and at most the
// one update per publisher that was in flight at the kill; nothing else.
func TestServeKill9(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("uses SIGKILL and SIGTERM")
	}
	bin := buildClusterBinary(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "hub.db")
	transport := "bolt://" + filepath.ToSlash(db)
	const publishers = 8
	serveArgs := []string{"--transport", transport, "--history-size", "0"}

	var rounds [][]int
	for round := range 2 {
		p := startDurProc(t, bin, dir, serveArgs...)
		if p.transport != transport {
			t.Errorf("listening log says transport %q, want %q", p.transport, transport)
		}
		rounds = append(rounds, publishUntilKilled(t, p, round, publishers, 1500*(round+1)))
	}

	p := startDurProc(t, bin, dir, serveArgs...)
	ids := replayAll(t, p)
	seen := make(map[string]int, len(ids)) // id -> position
	next := make([][]int, len(rounds))     // per round and publisher, the next k expected
	for r := range rounds {
		next[r] = make([]int, publishers)
	}
	inFlight, lastRound := 0, 0
	for i, id := range ids {
		if j, dup := seen[id]; dup {
			t.Fatalf("id %q replayed twice (positions %d and %d)", id, j, i)
		}
		seen[id] = i
		r, pub, k, ok := parseDurID(id)
		if !ok || r >= len(rounds) || pub >= publishers {
			t.Fatalf("replayed id %q was never published", id)
		}
		if r < lastRound {
			t.Fatalf("replayed %q at position %d, after updates of round %d that were published later", id, i, lastRound)
		}
		lastRound = r
		switch {
		case k == next[r][pub] && k < rounds[r][pub]:
			next[r][pub]++
		case k == rounds[r][pub] && k == next[r][pub]:
			// The update in flight when the hub was killed: stored but
			// not acknowledged, which is allowed.
			next[r][pub]++
			inFlight++
		default:
			t.Fatalf("replayed %q at position %d, want %s next: acknowledged updates lost or reordered",
				id, i, durID(r, pub, next[r][pub]))
		}
	}
	acked := 0
	for r, counts := range rounds {
		for pub, n := range counts {
			acked += n
			if next[r][pub] < n {
				t.Errorf("round %d publisher %d: %d acknowledged updates, only %d replayed: %s lost",
					r, pub, n, next[r][pub], durID(r, pub, next[r][pub]))
			}
		}
	}
	t.Logf("replayed %d updates: %d acknowledged, %d in flight at a kill", len(ids), acked, inFlight)

	// The history size is on /metrics (issue 3 item 6), and the hub is ready.
	if v, ok := p.metric(t, "mercure_history_updates"); !ok || v != float64(len(ids)) {
		t.Errorf("mercure_history_updates = %v (exported: %v), want %d", v, ok, len(ids))
	}
	if status, body := p.get(t, p.metrics+"/readyz"); status != http.StatusOK {
		t.Errorf("/readyz: %d %s", status, body)
	}

	// A second hub on the same file while this one runs: a clear message,
	// exit 1, and the first hub is unaffected.
	second := runSecondHub(t, bin, dir, "--transport", transport)
	if second.code != 1 {
		t.Errorf("second hub on %s: exit %d, want 1\nstderr: %s", db, second.code, second.stderr)
	}
	for _, want := range []string{db, "in use by another process", "another mercurectl serve running"} {
		if !strings.Contains(second.stderr, want) {
			t.Errorf("second hub: stderr does not say %q:\n%s", want, second.stderr)
		}
	}
	client := &http.Client{}
	if err := durPublish(t.Context(), client, p.url, durToken(t, []string{durTopic}, nil), "after-second", "x"); err != nil {
		t.Errorf("the first hub after the second one failed: %v", err)
	}
	if code := p.terminate(t); code != 0 {
		t.Errorf("SIGTERM: exit %d, want 0", code)
	}
}

// runSecondHub runs a second `serve` (with the state directory of the
// first, and args appended) and waits for it to exit, at most 30s. It must
// never get as far as listening: its address file must not appear.
func runSecondHub(t *testing.T, bin, stateDir string, args ...string) procResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	addrFile := filepath.Join(t.TempDir(), "second-addr")
	cmd := exec.CommandContext(ctx, bin, append([]string{"serve",
		"--addr", "127.0.0.1:0", "--addr-file", addrFile, "--jwt-key", durKey, "--log-format", "json",
	}, args...)...)
	cmd.Env = append(procEnv(), "HOME="+filepath.Join(stateDir, "home"), "XDG_STATE_HOME="+filepath.Join(stateDir, "state"))
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := procResult{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("second hub still running after 30s\nstderr: %s", res.stderr)
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	if _, err := os.Stat(addrFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the second hub wrote its address file (err %v): it listened", err)
	}
	return res
}

// Issue 3 item 1: with no --transport the history is a bolt file in the
// user's state directory (created if needed), its path is logged at
// start-up, and it survives a restart.
func TestServeDefaultTransport(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" || runtime.GOOS == "ios" || runtime.GOOS == "plan9" {
		t.Skip("checks the XDG state directory")
	}
	bin := buildClusterBinary(t)
	dir := t.TempDir()
	want := filepath.Join(dir, "state", "mercurectl", "hub.db")

	p := startDurProc(t, bin, dir)
	if p.transport != "bolt://"+want {
		t.Errorf("listening log says transport %q, want %q", p.transport, "bolt://"+want)
	}
	if _, err := os.Stat(want); err != nil {
		t.Errorf("default history file: %v", err)
	}
	tok := durToken(t, []string{durTopic}, nil)
	client := &http.Client{}
	for i := range 3 {
		if err := durPublish(t.Context(), client, p.url, tok, fmt.Sprintf("default-%d", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if code := p.terminate(t); code != 0 {
		t.Fatalf("SIGTERM: exit %d, want 0\n%s", code, p.stderr.String())
	}

	// Restarted with no --transport, the hub finds the same file.
	p = startDurProc(t, bin, dir)
	if got := replayAll(t, p); strings.Join(got, " ") != "default-0 default-1 default-2" {
		t.Errorf("after a restart, the default history replays %q", got)
	}
	// A second hub on the default file fails too.
	second := runSecondHub(t, bin, dir)
	if second.code != 1 || !strings.Contains(second.stderr, "in use by another process") {
		t.Errorf("second hub on the default file: exit %d, stderr:\n%s", second.code, second.stderr)
	}
}

// listeningRecord is the "listening" log line of serve.
type listeningRecord struct{ Msg, Metrics, Transport string }

// waitListening returns serve's "listening" log line. The address file is
// written after that line, but the copy of the child's stderr into buf may
// lag behind, so it polls for up to 10s (and returns a zero record then).
func waitListening(buf *syncBuffer) listeningRecord {
	deadline := time.Now().Add(10 * time.Second)
	for {
		for line := range strings.SplitSeq(buf.String(), "\n") {
			var rec listeningRecord
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				return rec
			}
		}
		if time.Now().After(deadline) {
			return listeningRecord{}
		}
		time.Sleep(10 * time.Millisecond)
	}
}
