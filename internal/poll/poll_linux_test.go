//go:build linux

package poll

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder collects the events of one registration.
type recorder chan Event

func (r recorder) Ready(e Event) {
	select {
	case r <- e:
	default:
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(tb testing.TB) (server, client *net.TCPConn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close(); _ = s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

func fdOf(tb testing.TB, c syscall.Conn) int {
	tb.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var fd int
	if err := raw.Control(func(u uintptr) { fd = int(u) }); err != nil {
		tb.Fatal(err)
	}
	return fd
}

func open(tb testing.TB) *Poller {
	tb.Helper()
	p, err := Open()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	return p
}

// watched registers the server end of a new TCP pair with p.
func watched(tb testing.TB, p *Poller) (k Key, r recorder, server, client *net.TCPConn) {
	tb.Helper()
	server, client = tcpPair(tb)
	r = make(recorder, 16)
	k, err := p.Add(fdOf(tb, server), r)
	if err != nil {
		tb.Fatal(err)
	}
	return k, r, server, client
}

// waitFor returns the first event of r that satisfies ok.
func waitFor(tb testing.TB, r recorder, what string, ok func(Event) bool) {
	tb.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e := <-r:
			if ok(e) {
				return
			}
		case <-deadline:
			tb.Fatalf("no %s event", what)
		}
	}
}

func TestPeerCloseIsAHangup(t *testing.T) {
	t.Parallel()
	p := open(t)
	k, r, _, cli := watched(t, p)
	if p.Len() != 1 {
		t.Fatalf("Len = %d after Add", p.Len())
	}
	// A new registration reports the socket writable at once (edge-triggered).
	waitFor(t, r, "writable", Event.Writable)
	_ = cli.Close()
	waitFor(t, r, "hangup", Event.Hangup)
	if err := p.Remove(k); err != nil {
		t.Fatal(err)
	}
	if p.Len() != 0 {
		t.Fatalf("Len = %d after Remove", p.Len())
	}
	// A second Remove of the same key is a no-op.
	if err := p.Remove(k); err != nil {
		t.Fatal(err)
	}
}

func TestHalfCloseIsAHangup(t *testing.T) {
	t.Parallel()
	p := open(t)
	_, r, _, cli := watched(t, p)
	if err := cli.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, "hangup", Event.Hangup)
}

// Data the peer sends is not an event: nothing reads it, so it must not
// wake anybody up.
func TestPeerDataIsNoEvent(t *testing.T) {
	t.Parallel()
	p := open(t)
	_, r, _, cli := watched(t, p)
	waitFor(t, r, "writable", Event.Writable)
	if _, err := cli.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// The hangup that follows proves the poller ran after the data came in.
	_ = cli.Close()
	for {
		e := <-r
		if e.Hangup() {
			return
		}
		t.Fatalf("event %#x before the hangup", uint32(e))
	}
}

func TestWritableAfterAFullBuffer(t *testing.T) {
	t.Parallel()
	p := open(t)
	srv, cli := tcpPair(t)
	if err := srv.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	r := make(recorder, 16)
	fd := fdOf(t, srv)
	if _, err := p.Add(fd, r); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, "writable", Event.Writable)
	// Fill the socket with non-blocking writes until it refuses more.
	chunk := make([]byte, 64<<10)
	total := 0
	for {
		n, err := syscall.Write(fd, chunk)
		if err == syscall.EAGAIN {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	// Draining the peer makes the socket writable again: one edge.
	buf := make([]byte, 64<<10)
	for read := 0; read < total; {
		n, err := cli.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		read += n
	}
	waitFor(t, r, "writable", Event.Writable)
}

// A stale key (its descriptor removed, closed and reused) never reaches
// the new registration.
func TestRemovedKeysGetNothing(t *testing.T) {
	t.Parallel()
	p := open(t)
	k, r, _, cli := watched(t, p)
	waitFor(t, r, "writable", Event.Writable)
	if err := p.Remove(k); err != nil {
		t.Fatal(err)
	}
	_ = cli.Close()
	// A registration made after the hangup proves the poller had the
	// chance to deliver it.
	_, r2, _, _ := watched(t, p)
	waitFor(t, r2, "writable", Event.Writable)
	for {
		select {
		case e := <-r:
			if e.Hangup() {
				t.Fatalf("removed registration got the hangup %#x", uint32(e))
			}
		default:
			return
		}
	}
}

func TestAddAfterCloseFails(t *testing.T) {
	t.Parallel()
	p, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	srv, _ := tcpPair(t)
	if _, err := p.Add(fdOf(t, srv), make(recorder, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v, want ErrClosed", err)
	}
}
