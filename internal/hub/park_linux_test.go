//go:build linux

package hub

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/poll"
	"github.com/mercurectl/mercurectl/internal/sse"
	"github.com/mercurectl/mercurectl/internal/token"
)

// The edges of parked streams, over real TCP. Like every hub test, these
// run on both stream paths (TestMain); the checks of parking itself apply
// to the parked pass only, while what the client sees must hold on both.

// waitParked waits until n streams of th are parked (parked pass only).
func waitParked(tb testing.TB, th *testHub, n int) {
	tb.Helper()
	if !th.h.Parking() {
		return
	}
	eventually(tb, fmt.Sprintf("%d parked streams", n), func() bool { return th.h.park.count() == n })
	if got := th.h.park.registrations(); got != n {
		tb.Fatalf("%d poller registrations for %d parked streams", got, n)
	}
}

// waitGone waits until th has no subscriber and no poller registration.
func waitGone(tb testing.TB, th *testHub) {
	tb.Helper()
	eventually(tb, "every subscription gone", func() bool {
		return th.h.Subscribers() == 0 && th.h.park.count() == 0 && th.h.park.registrations() == 0
	})
}

// goroutinesIn counts the goroutines whose stack holds fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return bytes.Count(buf, []byte(fn))
}

// dialer returns a client whose connections get a small receive buffer
// (0: the default) and are reported on conns.
func dialer(rcvbuf int, conns chan<- *net.TCPConn) *http.Client {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		if rcvbuf == 0 {
			return nil
		}
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil && conns != nil {
				conns <- c.(*net.TCPConn)
			}
			return c, err
		},
	}}
}

// openWith opens a subscription with client c and returns its response.
func openWith(tb testing.TB, th *testHub, c *http.Client, query string, hdr http.Header) *http.Response {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodGet, th.url+"?"+query, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("subscribe: %s", resp.Status)
	}
	return resp
}

// An idle parked stream holds no goroutine: neither its handler nor
// net/http's background read. On the net/http path each holds both.
func TestParkedStreamsHoldNoGoroutine(t *testing.T) {
	th := newTestHub(t, func(c *Config) { c.Anonymous = true })
	const n = 50
	for range n {
		th.subscribe(t, "topic=t", nil)
	}
	waitParked(t, th, n)
	handlers := goroutinesIn("hub.(*Hub).serveSubscribe(")
	reads := goroutinesIn("net/http.(*connReader).backgroundRead(")
	if th.h.Parking() {
		if handlers != 0 || reads != 0 {
			t.Fatalf("%d parked streams hold %d handler and %d background-read goroutines, want none", n, handlers, reads)
		}
	} else if handlers < n {
		t.Fatalf("%d streams on the net/http path show %d handler goroutines", n, handlers)
	}
	// They still work.
	tok := legacyToken(t, []string{"*"}, nil)
	th.mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {"x"}})
}

// A peer that closes an idle stream is noticed at once: no heartbeat and
// no write is needed (both are off here), and the poller registration goes.
func TestPeerCloseEndsAnIdleStreamAtOnce(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Anonymous = true; c.Heartbeat = 0; c.WriteTimeout = 0 })
	s, _ := th.subscribe(t, "topic=t", nil)
	waitParked(t, th, 1)
	s.cancel()
	_ = s.resp.Body.Close()
	waitGone(t, th)
}

// A peer that shuts down its sending side only (a half-closed connection)
// ends the stream as on the net/http path, whose background read sees EOF.
func TestHalfClosedPeerEndsTheStream(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Anonymous = true; c.Heartbeat = 0 })
	conns := make(chan *net.TCPConn, 1)
	resp := openWith(t, th, dialer(0, conns), "topic=t", nil)
	waitParked(t, th, 1)
	if err := (<-conns).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, th)
	// The stream ended with the last chunk: a clean end of the body.
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Logf("body after the half-close: %v", err)
	}
}

// A peer that stops reading without closing (a half-open connection, or a
// stuck client) is cut once a write waits for the dispatch timeout, and
// never delays another subscriber meanwhile.
func TestStuckPeerIsCutAndNeverDelaysOthers(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) {
		c.Anonymous = true
		c.Heartbeat = 0
		c.DispatchTimeout = 300 * time.Millisecond
	})
	stuck := openWith(t, th, dialer(2048, nil), "topic=t", nil)
	_ = stuck // never read
	healthy, _ := th.subscribe(t, "topic=t", nil)
	waitParked(t, th, 2)
	tok := legacyToken(t, []string{"*"}, nil)
	payload := strings.Repeat("x", 32<<10)
	for i := 0; th.h.Subscribers() == 2; i++ {
		if i == 5000 {
			t.Fatal("the stuck subscriber was never cut")
		}
		id := th.mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {payload}, "id": {fmt.Sprint("u", i)}})
		if ev := healthy.next(t); ev.ID != id {
			t.Fatalf("healthy subscriber got %q, want %q", ev.ID, id)
		}
	}
	eventually(t, "the stuck stream unregistered", func() bool { return th.h.park.registrations() <= 1 })
}

// A socket that takes only part of a batch (a tiny receive buffer) keeps
// the rest and gets it when writable again: everything arrives, whole and
// in order.
func TestPartialWritesArriveWhole(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Anonymous = true; c.Heartbeat = 0 })
	resp := openWith(t, th, dialer(4096, nil), "topic=t", nil)
	waitParked(t, th, 1)
	tok := legacyToken(t, []string{"*"}, nil)
	const n = 300
	data := func(i int) string { return strings.Repeat(strconv.Itoa(i%10), 16<<10) }
	for i := range n {
		th.mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {data(i)}, "id": {fmt.Sprint("p", i)}})
	}
	if th.h.Parking() {
		if got := scrape(t, th.h)["mercure_parked_writes_blocked_total"]; got == 0 {
			t.Fatal("no write was taken in part: the test did not fill the socket")
		}
	}
	rd := sse.NewReader(bufio.NewReader(resp.Body), sse.ReaderOptions{})
	for i := range n {
		ev, err := rd.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.ID != fmt.Sprint("p", i) || ev.Data != data(i) {
			t.Fatalf("event %d: id %q, %d bytes of data, want p%d", i, ev.ID, len(ev.Data), i)
		}
	}
}

// A parked stream gets its heartbeats from the sweeper and stays parked.
func TestHeartbeatOnAParkedStream(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Anonymous = true; c.Heartbeat = 50 * time.Millisecond })
	s := confOpen(t, th, http.MethodGet, "topic=t", nil, "")
	waitParked(t, th, 1)
	wire := s.waitFor(t, ":\n:\n:\n:\n")
	if strings.Trim(wire, ":\n") != "" {
		t.Fatalf("idle stream holds %q, want comment lines only", wire)
	}
	waitParked(t, th, 1)
}

// A parked stream ends at its token's expiry, cleanly (the last chunk),
// as a stream with a goroutine does.
func TestTokenExpiryEndsAParkedStream(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	tok := mint(t, token.MintOptions{Format: token.FormatLegacy, Subscribe: []string{"*"}, TTL: 2 * time.Second})
	s := confOpen(t, th, http.MethodGet, "topic=t", bearer(tok), "")
	waitParked(t, th, 1)
	s.closedWithin(t, 5*time.Second)
	s.mu.Lock()
	end := s.end
	s.mu.Unlock()
	if !errors.Is(end, io.EOF) {
		t.Fatalf("stream ended with %v, want a clean end (io.EOF)", end)
	}
	waitGone(t, th)
}

// A lagging parked stream (its queue overflowed while the socket was full)
// reads what it missed from the store on a goroutine of its own, then
// parks again.
func TestLaggingParkedStreamResyncsAndParksAgain(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Anonymous = true; c.Heartbeat = 0; c.QueueSize = 2 })
	resp := openWith(t, th, dialer(4096, nil), "topic=t", nil)
	waitParked(t, th, 1)
	tok := legacyToken(t, []string{"*"}, nil)
	payload := strings.Repeat("y", 16<<10)
	n := 0
	publish := func() {
		th.mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {payload}, "id": {fmt.Sprint("l", n)}})
		n++
	}
	// Fill the socket (the parked pass knows when), then overflow the queue.
	for n < 300 && (!th.h.Parking() || scrape(t, th.h)["mercure_parked_writes_blocked_total"] == 0) {
		publish()
	}
	for range 10 {
		publish()
	}
	rd := sse.NewReader(bufio.NewReader(resp.Body), sse.ReaderOptions{})
	for i := range n {
		ev, err := rd.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.ID != fmt.Sprint("l", i) {
			t.Fatalf("event %d: %q", i, ev.ID)
		}
	}
	if !th.h.Parking() {
		return
	}
	if got := scrape(t, th.h)["mercure_slow_subscriber_resyncs_total"]; got == 0 {
		t.Fatal("the subscriber never lagged: the test did not overflow its queue")
	}
	waitParked(t, th, 1)
	th.mustPublish(t, tok, url.Values{"topic": {"t"}, "id": {"after"}})
	if ev, err := rd.Next(); err != nil || ev.ID != "after" {
		t.Fatalf("after the resync: %+v, %v", ev, err)
	}
}

// A request pipelined behind a subscription is never answered while the
// stream lasts, on either path. A parked stream leaves it unread, then
// drops it when it ends, so that closing sends a FIN, not a reset that
// could destroy the last chunk in flight; net/http answers it after the
// stream instead.
func TestPipelinedRequestIsIgnored(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, func(c *Config) { c.Anonymous = true; c.Heartbeat = 0 })
	addr := th.srv.Listener.Addr().String()
	c, err := openRaw(addr, "topic=t", "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	waitParked(t, th, 1)
	// Sent once the stream is live, it stays in the socket unread.
	if _, err := io.WriteString(c, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	tok := legacyToken(t, []string{"*"}, nil)
	th.mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {"after"}, "id": {"p1"}})
	eventually(t, "the update written", func() bool { return th.h.bc.last.Load() > 0 })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := th.h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if th.h.Parking() && !errors.Is(err, io.EOF) {
				t.Fatalf("parked stream ended with %v after %q, want a clean close", err, got)
			}
			break
		}
		if !th.h.Parking() && bytes.Contains(got, chunkEnd) {
			break // net/http goes on with the pipelined request
		}
	}
	want := "id: p1\ndata: after\n\n"
	if !bytes.Contains(got, []byte(want)) || !bytes.Contains(got, chunkEnd) {
		t.Fatalf("stream ended with %q, want the update and the last chunk", got)
	}
	if th.h.Parking() && !bytes.HasSuffix(got, chunkEnd) {
		t.Fatalf("parked stream ended with %q: something after the last chunk", got)
	}
}

// openFDs counts this process's open descriptors.
func openFDs(tb testing.TB) int {
	tb.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// Streams coming and going (peers that close, streams ended by the hub at
// token expiry, streams that get updates) leave nothing behind: the
// goroutines, descriptors and poller registrations return to their count
// before.
func TestChurnLeavesNoLeak(t *testing.T) {
	th := newTestHub(t, func(c *Config) { c.Anonymous = true; c.Heartbeat = 20 * time.Millisecond })
	client := dialer(0, nil)
	tok := legacyToken(t, []string{"*"}, []string{"*"})
	short := mint(t, token.MintOptions{Format: token.FormatLegacy, Subscribe: []string{"*"}, TTL: time.Second})
	// Warm up: the poller and the publisher's keep-alive connection exist
	// before the baseline.
	warm := openWith(t, th, client, "topic=t", nil)
	waitParked(t, th, 1)
	th.mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {"warm"}})
	_ = warm.Body.Close()
	waitGone(t, th)
	runtime.GC()
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)

	const rounds, width = 20, 50
	for round := range rounds {
		var wg sync.WaitGroup
		for i := range width {
			wg.Go(func() {
				hdr := http.Header(nil)
				if i%10 == 0 {
					hdr = bearer(short) // ended by the hub later
				}
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, th.url+"?topic=t", nil)
				if err != nil {
					t.Error(err)
					return
				}
				maps.Copy(req.Header, hdr)
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				if i%10 != 0 {
					// Read the first bytes, then leave.
					_, _ = resp.Body.Read(make([]byte, 64))
					_ = resp.Body.Close()
				} else {
					go func() { _, _ = io.Copy(io.Discard, resp.Body); _ = resp.Body.Close() }()
				}
			})
		}
		wg.Wait()
		if round%5 == 0 {
			th.mustPublish(t, tok, url.Values{"topic": {"t"}, "data": {"churn"}})
		}
	}
	waitGone(t, th)
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > goroutines; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
		}
	}
	eventually(t, "descriptors back to their count", func() bool { return openFDs(t) <= fds })
}

// Environment of the helper process of TestShutdownEndsManyParkedStreams.
const (
	manyStreamsAddr = "HUB_TEST_MANY_STREAMS_ADDR"
	manyStreamsN    = "HUB_TEST_MANY_STREAMS_N"
)

// Shutdown ends 10,000 parked streams within its grace period, each with
// the last chunk. The subscribers live in a helper process, as each holds
// a descriptor on both sides and the process limit is 20,000.
func TestShutdownEndsManyParkedStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 connections")
	}
	n := 10000
	if !testParking.Load() {
		// Two goroutines per stream on the net/http path: 10,000 streams
		// would pass the race detector's limit on live goroutines.
		n = 1000
	}
	th := newTestHub(t, func(c *Config) { c.Anonymous = true; c.Heartbeat = 0 })
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperManyStreams$", "-hub.paths=portable")
	cmd.Env = append(os.Environ(), manyStreamsAddr+"="+th.srv.Listener.Addr().String(), manyStreamsN+"="+strconv.Itoa(n))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	defer func() {
		if t.Failed() {
			t.Logf("helper process stderr:\n%s", stderr.String())
		}
	}()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	next := func(prefix string) string {
		for lines.Scan() {
			if l := lines.Text(); strings.HasPrefix(l, prefix) {
				return l
			}
		}
		_ = cmd.Wait()
		t.Fatalf("helper process: no %q line", prefix)
		return ""
	}
	next("open")
	if th.h.Parking() {
		eventually(t, "every stream parked", func() bool { return th.h.park.count() == n })
	}
	if got := th.h.Subscribers(); got != n {
		t.Fatalf("%d subscribers, want %d", got, n)
	}
	const grace = 5 * time.Second
	sctx, scancel := context.WithTimeout(context.Background(), grace)
	defer scancel()
	// As serve shuts down: the hub ends the streams, then the server closes
	// its idle connections (those of streams ended on the net/http path;
	// parked streams close their own).
	start := time.Now()
	if err := th.h.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown with %d streams: %v (grace %v)", n, err, grace)
	}
	if err := th.srv.Config.Shutdown(sctx); err != nil {
		t.Fatalf("server shutdown with %d streams: %v (grace %v)", n, err, grace)
	}
	t.Logf("%d streams ended in %v", n, time.Since(start))
	if th.h.park.count() != 0 || th.h.park.registrations() != 0 {
		t.Fatalf("after shutdown: %d parked, %d registered", th.h.park.count(), th.h.park.registrations())
	}
	got := next("ended")
	if want := fmt.Sprintf("ended %d clean %d", n, n); got != want {
		t.Fatalf("helper process: %q, want %q", got, want)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper process: %v", err)
	}
}

// TestHelperManyStreams is the subscriber side of
// TestShutdownEndsManyParkedStreams, run in a process of its own. It opens
// the streams, then waits for each to end (one poller for all, so that it
// needs no goroutine per stream either) and reports how many ended with
// the last chunk.
func TestHelperManyStreams(t *testing.T) {
	addr := os.Getenv(manyStreamsAddr)
	if addr == "" {
		t.Skip("the helper process of TestShutdownEndsManyParkedStreams")
	}
	n, err := strconv.Atoi(os.Getenv(manyStreamsN))
	if err != nil {
		t.Fatal(err)
	}
	p, err := poll.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	ended := make(chan *net.TCPConn, n)
	conns := make([]*net.TCPConn, n)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := openRaw(addr, fmt.Sprintf("topic=t%d", i%100), "")
			if err != nil {
				t.Error(err)
				return
			}
			conns[i] = c
			raw, err := c.SyscallConn()
			if err != nil {
				t.Error(err)
				return
			}
			var regErr error
			if err := raw.Control(func(fd uintptr) { _, regErr = p.Add(int(fd), hangupTo{c, ended, new(atomic.Bool)}) }); err != nil || regErr != nil {
				t.Error(err, regErr)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	fmt.Println("open")
	clean, unclean := 0, 0
	buf := make([]byte, 4096)
	for range n {
		var c *net.TCPConn
		select {
		case c = <-ended:
		case <-time.After(time.Minute):
			t.Fatal("streams still open after a minute")
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var got []byte
		var err error
		for err == nil {
			var k int
			k, err = c.Read(buf)
			got = append(got, buf[:k]...)
		}
		if bytes.HasSuffix(got, chunkEnd) && errors.Is(err, io.EOF) {
			clean++
		} else if unclean++; unclean <= 3 {
			fmt.Fprintf(os.Stderr, "stream ended with %q, then %v\n", got, err)
		}
	}
	for _, c := range conns {
		_ = c.Close()
	}
	fmt.Printf("ended %d clean %d\n", n, clean)
}

// hangupTo sends its connection to a channel at the first hangup.
type hangupTo struct {
	c    *net.TCPConn
	ch   chan<- *net.TCPConn
	sent *atomic.Bool
}

func (h hangupTo) Ready(e poll.Event) {
	if e.Hangup() && h.sent.CompareAndSwap(false, true) {
		h.ch <- h.c // buffered for every stream
	}
}

// openRaw opens a subscription by hand, sending more (a pipelined
// request) in the same write, and reads its headers and first chunk,
// leaving nothing buffered.
func openRaw(addr, query, more string) (*net.TCPConn, error) {
	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(tc, "GET %s?%s HTTP/1.1\r\nHost: %s\r\n\r\n%s", Path, query, addr, more); err != nil {
		_ = tc.Close()
		return nil, err
	}
	// The headers and the ":\n" chunk come in one write; read byte by byte
	// up to the end of that chunk, so that nothing stays in a buffer here.
	var got []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(got, []byte("\r\n\r\n2\r\n:\n\r\n")) {
		if _, err := tc.Read(b); err != nil {
			_ = tc.Close()
			return nil, fmt.Errorf("read the response: %w (got %q)", err, got)
		}
		got = append(got, b[0])
		if len(got) > 8192 {
			_ = tc.Close()
			return nil, fmt.Errorf("no stream in %q", got)
		}
	}
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 200 ")) {
		_ = tc.Close()
		return nil, fmt.Errorf("response %q", got)
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}
