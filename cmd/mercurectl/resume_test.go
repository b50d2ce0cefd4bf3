package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/token"
)

// subProc is one `mercurectl subscribe` process.
type subProc struct {
	args   []string
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr syncBuffer
	exited chan struct{}
	err    error
}

func startSubProc(tb testing.TB, bin string, args ...string) *subProc {
	tb.Helper()
	s := &subProc{args: args, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, append([]string{"subscribe"}, args...)...)
	s.cmd.Env = procEnv()
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	tb.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
	})
	return s
}

// waitListed waits until the hub's subscriptions API lists n subscriptions
// to topic (the hub runs with --subscriptions).
func waitListed(tb testing.TB, p *durProc, topic string, n int) {
	tb.Helper()
	legacy := durToken(tb, nil, []string{"*"})
	access, err := token.Mint(token.MintOptions{Format: token.FormatAccessToken, Key: []byte(durKey), Subscribe: []string{"*"}, TTL: time.Hour, Audience: p.url})
	if err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := listedSubscriptions(p.url, legacy, topic) + listedSubscriptions(p.url, access, topic)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d subscriptions to %s listed after 30s, want %d\n%s", got, topic, n, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Quiet subscribers (real `mercurectl subscribe` processes that have
// received nothing yet, in draft-07, draft-08 and anonymously) and a hub on
// a bolt file restarted at random moments, gracefully or with SIGKILL,
// sometimes before the subscribers are back: each subscriber prints every
// update published after it connected, once, in order.
func TestSubscribeAcrossRandomHubRestarts(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("uses SIGKILL and SIGTERM")
	}
	bin := buildClusterBinary(t)
	rngSeed := rand.Uint64()
	t.Logf("seed %d", rngSeed)
	rng := rand.New(rand.NewPCG(rngSeed, 9))
	dir := t.TempDir()
	serveArgs := []string{"--transport", "bolt://" + filepath.ToSlash(filepath.Join(dir, "hub.db")), "--subscriptions", "--anonymous"}

	// The plan: before each restart, a random number of updates (none in the
	// first rounds: the subscribers are still quiet), and as many again
	// right after it.
	const restarts = 5
	before, after := make([]int, restarts), make([]int, restarts)
	total := 0
	for i := range restarts {
		if i >= 2 {
			before[i] = rng.IntN(3)
		}
		after[i] = rng.IntN(3)
		total += before[i] + after[i]
	}
	total++ // a last one, after the last restart

	p := startDurProc(t, bin, dir, serveArgs...)
	addr := strings.TrimSuffix(strings.TrimPrefix(p.url, "http://"), "/.well-known/mercure")
	serveArgs = append(serveArgs, "--addr", addr) // restarts keep the port
	pubTok := durToken(t, []string{durTopic}, nil)
	if err := durPublish(t.Context(), http.DefaultClient, p.url, pubTok, "old", "before the subscribers"); err != nil {
		t.Fatal(err)
	}
	common := []string{"--hub", p.url, "--topic", durTopic, "--count", strconv.Itoa(total), "--timeout", "2m", "-o", "data"}
	subs := []*subProc{
		startSubProc(t, bin, append([]string{"--jwt-key", durKey}, common...)...), // draft-08
		startSubProc(t, bin, append([]string{"--jwt-key", durKey, "--protocol", "7"}, common...)...),
		startSubProc(t, bin, common...), // anonymous, draft-08 discovery
		startSubProc(t, bin, append([]string{"--protocol", "7"}, common...)...),
	}
	waitListed(t, p, durTopic, len(subs))

	var want []string
	n := 0
	publish := func() {
		t.Helper()
		n++
		data := fmt.Sprintf("update %d", n)
		if err := durPublish(t.Context(), http.DefaultClient, p.url, pubTok, fmt.Sprintf("u-%d", n), data); err != nil {
			t.Fatalf("publish %d: %v", n, err)
		}
		want = append(want, data)
	}
	for i := range restarts {
		time.Sleep(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
		for range before[i] {
			publish()
		}
		if rng.IntN(2) == 0 {
			p.kill(t)
		} else if code := p.terminate(t); code != 0 {
			t.Fatalf("serve exited %d on SIGTERM", code)
		}
		p = startDurProc(t, bin, dir, serveArgs...)
		for range after[i] {
			publish()
		}
		if rng.IntN(3) > 0 { // else restart again before they are back
			waitListed(t, p, durTopic, len(subs))
		}
	}
	publish()

	for i, s := range subs {
		select {
		case <-s.exited:
		case <-time.After(2 * time.Minute):
			t.Fatalf("subscriber %d still running", i)
		}
		got := strings.Split(strings.TrimSuffix(s.stdout.String(), "\n"), "\n")
		if s.err != nil || !slices.Equal(got, want) {
			t.Errorf("subscribe %s: %v\n got %q\nwant %q\nstderr:\n%s", strings.Join(s.args, " "), s.err, got, want, s.stderr.String())
		}
		if strings.Contains(s.stderr.String(), "warning") {
			t.Errorf("subscribe %s warned:\n%s", strings.Join(s.args, " "), s.stderr.String())
		}
	}
}

// A replay cut by hub restarts (SIGKILL while it streams a history larger
// than the sockets can buffer, read slowly) prints the whole history once,
// in order, and exits 0.
func TestReplayAcrossHubRestarts(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("uses SIGKILL")
	}
	bin := buildClusterBinary(t)
	dir := t.TempDir()
	serveArgs := []string{"--transport", "bolt://" + filepath.ToSlash(filepath.Join(dir, "hub.db")), "--history-size", "0"}
	p := startDurProc(t, bin, dir, serveArgs...)
	addr := strings.TrimSuffix(strings.TrimPrefix(p.url, "http://"), "/.well-known/mercure")
	serveArgs = append(serveArgs, "--addr", addr)
	pubTok := durToken(t, []string{durTopic}, nil)
	const updates = 1000 // of 20 KB: 20 MB
	var want []string
	start := time.Now()
	for i := range updates {
		data := fmt.Sprintf("update %d %s", i, strings.Repeat("x", 20000))
		if err := durPublish(t.Context(), http.DefaultClient, p.url, pubTok, fmt.Sprintf("u-%d", i), data); err != nil {
			t.Fatal(err)
		}
		want = append(want, data)
	}

	t.Logf("published in %v", time.Since(start))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "replay", "--hub", p.url, "--jwt-key", durKey, "--topic", durTopic, "--from", "earliest", "-o", "data")
	cmd.Env = procEnv()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Read slowly (about 12 MB/s), so that the restarts land mid-replay.
	var stdout bytes.Buffer
	copied := make(chan error, 1)
	reading := make(chan struct{}) // the replay is connected: its output flows
	go func() {
		buf := make([]byte, 64<<10)
		for first := true; ; first = false {
			n, err := out.Read(buf)
			stdout.Write(buf[:n])
			if first {
				close(reading)
			}
			if err != nil {
				copied <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	<-reading
	for range 3 {
		time.Sleep(100 * time.Millisecond)
		p.kill(t)
		p = startDurProc(t, bin, dir, serveArgs...)
	}
	<-copied
	t.Logf("replayed in %v", time.Since(start))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("replay: %v\n%s", err, stderr.String())
	}
	got := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if !slices.Equal(got, want) {
		t.Fatalf("replay printed %d lines, want %d (first difference at %d)\nstderr:\n%s",
			len(got), len(want), firstDiff(got, want), stderr.String())
	}
	if !strings.Contains(stderr.String(), "mercurectl: reconnected to ") {
		t.Fatalf("the replay was never cut (the test did not test anything):\n%s", stderr.String())
	}
}

// firstDiff returns the first index where a and b differ.
func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
