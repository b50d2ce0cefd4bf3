//go:build linux

package poll

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by Add once the poller is closed.
var ErrClosed = errors.New("poll: poller closed")

// Event is the readiness a poller reports for one socket.
type Event uint32

// Writable reports that the socket accepts data again.
func (e Event) Writable() bool { return e&unix.EPOLLOUT != 0 }

// Hangup reports that the peer closed its side (or reset the connection),
// or that the socket is in error.
func (e Event) Hangup() bool { return e&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 }

// Handler receives the events of one registration, on the poller's
// goroutine: it must return quickly and must not call the poller.
type Handler interface {
	Ready(Event)
}

// Key identifies one registration; it pairs the descriptor with a
// generation, so that an event still in flight for a descriptor that was
// removed, closed and reused is not delivered to the new registration.
type Key struct {
	fd  int32
	gen int32 // wraps around; 0 is never used
}

// events are what every registration waits for, edge-triggered: EPOLLOUT
// to resume a write the socket took only in part, EPOLLRDHUP for a peer
// that closed. EPOLLIN is left out on purpose: what a peer sends after its
// request is never read, as net/http leaves it unread while a response
// streams, so it cannot wake anything up. EPOLLHUP and EPOLLERR are always
// reported.
const events = unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET

// waitBatch is how many events one epoll_wait returns at most.
const waitBatch = 256

type slot struct {
	h   Handler
	gen int32
}

// Poller is one epoll instance and the goroutine that waits on it. The
// goroutine does not block a thread in epoll_wait: the epoll descriptor is
// itself non-blocking and watched by the Go runtime's poller (an epoll
// instance is readable while it has events), so the goroutine parks like
// any network read. A blocking epoll_wait would hold the process's only P
// with GOMAXPROCS=1 until the runtime noticed the blocked system call.
type Poller struct {
	f  *os.File // the epoll instance
	rc syscall.RawConn

	mu     sync.Mutex
	slots  []slot // indexed by descriptor
	gen    int32
	n      int
	closed bool

	done chan struct{}
}

// Open creates a poller and starts its goroutine; Close ends it.
func Open() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("poll: epoll_create1: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("poll: non-blocking epoll: %w", err)
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("poll: %w", err)
	}
	p := &Poller{f: f, rc: rc, done: make(chan struct{})}
	go p.loop()
	return p, nil
}

// ctl runs epoll_ctl while holding the epoll descriptor, so that Close
// cannot release it (and the number be reused) meanwhile.
func (p *Poller) ctl(op, fd int, ev *unix.EpollEvent) error {
	var err error
	if cerr := p.rc.Control(func(epfd uintptr) { err = unix.EpollCtl(int(epfd), op, fd, ev) }); cerr != nil {
		return ErrClosed
	}
	return err
}

// Add registers fd, whose events go to h from now on, until Remove. The
// caller keeps fd open until it has called Remove.
func (p *Poller) Add(fd int, h Handler) (Key, error) {
	if fd < 0 || fd > 1<<31-1 {
		return Key{}, fmt.Errorf("poll: descriptor %d out of range", fd)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return Key{}, ErrClosed
	}
	if fd >= len(p.slots) {
		p.slots = append(p.slots, make([]slot, fd+1-len(p.slots))...)
	}
	if p.gen++; p.gen == 0 {
		p.gen++
	}
	k := Key{fd: int32(fd), gen: p.gen}
	p.slots[fd] = slot{h: h, gen: k.gen}
	p.n++
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: events, Fd: k.fd, Pad: k.gen}
	if err := p.ctl(unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.forget(k)
		return Key{}, fmt.Errorf("poll: epoll_ctl add: %w", err)
	}
	return k, nil
}

// Remove unregisters k: once it returns, its handler receives no more
// events, except one that the poller's goroutine is delivering right now.
// It must be called before the descriptor is closed.
func (p *Poller) Remove(k Key) error {
	if !p.forget(k) {
		return nil
	}
	err := p.ctl(unix.EPOLL_CTL_DEL, int(k.fd), nil)
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBADF) && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("poll: epoll_ctl del: %w", err)
	}
	return nil
}

func (p *Poller) forget(k Key) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if int(k.fd) >= len(p.slots) || p.slots[k.fd].gen != k.gen || p.slots[k.fd].h == nil {
		return false
	}
	p.slots[k.fd] = slot{}
	p.n--
	return true
}

// Len returns the number of registrations.
func (p *Poller) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// Close stops the poller's goroutine, waits for it, and releases the epoll
// instance. Registrations left are dropped (their descriptors stay open).
func (p *Poller) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.f.Close() // wakes the goroutine's wait with an error
	<-p.done
	return err
}

func (p *Poller) loop() {
	defer close(p.done)
	evs := make([]unix.EpollEvent, waitBatch)
	ready := make([]Handler, 0, waitBatch)
	kinds := make([]Event, 0, waitBatch)
	for {
		n := 0
		var werr error
		err := p.rc.Read(func(epfd uintptr) bool {
			for {
				n, werr = unix.EpollWait(int(epfd), evs, 0)
				if !errors.Is(werr, unix.EINTR) {
					break
				}
			}
			// Nothing ready: wait in the runtime's poller for the next edge.
			return werr != nil || n > 0
		})
		if err != nil || werr != nil {
			// Closed; or a broken epoll instance, whose users notice through
			// their write errors and timeouts.
			return
		}
		ready, kinds = ready[:0], kinds[:0]
		p.mu.Lock()
		for _, ev := range evs[:n] {
			if int(ev.Fd) < len(p.slots) {
				if s := p.slots[ev.Fd]; s.h != nil && s.gen == ev.Pad {
					ready = append(ready, s.h)
					kinds = append(kinds, Event(ev.Events))
				}
			}
		}
		p.mu.Unlock()
		for i, h := range ready {
			h.Ready(kinds[i])
		}
		clear(ready)
	}
}
