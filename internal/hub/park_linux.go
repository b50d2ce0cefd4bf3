//go:build linux

package hub

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mercurectl/mercurectl/internal/poll"
)

// Parking (docs/protocol.md#parked-streams). Most subscribers are idle
// almost all the time, and on the net/http path each idle stream holds two
// goroutines (the handler and the background read that notices a closed
// peer), their stacks and the connection's buffers. Once a plain HTTP/1.1
// stream has sent its headers and its replay, the handler takes the
// connection over (http.Hijacker), registers its socket with one epoll
// poller and returns. An idle parked stream then owns no goroutine and no
// buffer, only a parkedConn.
//
// Updates wake the stream as they wake a handler (subscriber.wake),
// and a bounded pool of writer goroutines writes the batch, framed as a
// chunk of the response body, with a non-blocking write from a pooled
// buffer. A socket that takes only part of a batch keeps the rest, written
// when the poller says it is writable again; the sweeper cuts a stream
// whose batch waits longer than the dispatch timeout, as the write deadline
// does on the net/http path. A lagging stream gets a goroutine for as long
// as it reads the missed updates from the store, then parks again. The
// poller reports a peer that closed (EPOLLRDHUP, EPOLLHUP, EPOLLERR); a
// silent peer is caught by the write timeout, heartbeats and token expiry,
// which the sweeper drives for both paths alike.
//
// TLS streams are not parked: a tls.Conn cannot resume a record it wrote
// in part without blocking, and it keeps its own record buffers per
// connection, which would cost more than parking saves. HTTP/2 streams
// cannot be taken over at all.

// parkingSupported says that this system can park streams.
const parkingSupported = true

// endReason is why a parked stream is asked to end.
type endReason uint32

const (
	endNone endReason = iota
	// endShutdown ends the stream cleanly, with the last chunk.
	endShutdown
	// endStalled cuts the stream: a write waited for the dispatch timeout.
	endStalled
)

// aLongTimeAgo is a write deadline in the past: it interrupts a blocked
// write at once.
var aLongTimeAgo = time.Unix(1, 0)

// parker owns the parked streams of a hub: their poller, their writers and
// the list Shutdown ends.
type parker struct {
	h    *Hub
	pool writerPool

	mu      sync.Mutex
	zero    *sync.Cond // broadcast when n drops to 0
	poller  *poll.Poller
	openErr error // the last failure to open the poller, logged once
	closing bool
	head    *parkedConn // every parked stream, linked through prev/next
	n       int
	blocked map[*parkedConn]struct{} // streams with a write pending

	// wg counts the goroutines parked streams start: catch-up readers and
	// closing subscription events.
	wg sync.WaitGroup
}

func newParker(h *Hub) *parker {
	if !h.cfg.ParkIdle {
		return nil
	}
	pk := &parker{h: h, blocked: make(map[*parkedConn]struct{})}
	pk.zero = sync.NewCond(&pk.mu)
	pk.pool.init(max(2, runtime.GOMAXPROCS(0)))
	return pk
}

// park takes over c's connection once its stream is live, and reports
// whether it did: the parker then writes the stream, ends it and releases
// c.s. It parks only plain HTTP/1.1 streams that net/http lets go of. If
// the connection was taken over but cannot be parked, c.nc is set and the
// handler carries on writing chunks itself.
func (pk *parker) park(c *conn, r *http.Request, lastSent uint64) bool {
	if !pk.parkable(r) {
		return false
	}
	p := pk.openPoller()
	if p == nil {
		return false
	}
	// net/http flushes the headers and the chunks written so far. What it
	// read ahead of the request, if anything, is a pipelined request, which
	// a stream never answers (net/http would not before the stream ends
	// either): it is dropped.
	nc, _, err := c.rc.Hijack()
	if err != nil {
		return false
	}
	c.nc = nc
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	pc := &parkedConn{pk: pk, s: c.s, nc: nc, raw: raw, lastSent: lastSent}
	if !pk.add(pc) {
		return false // shutting down: the handler ends the stream
	}
	var regErr error
	if err := raw.Control(func(fd uintptr) { pc.key, regErr = p.Add(int(fd), pc) }); err != nil || regErr != nil {
		pk.h.log.Debug("cannot park a stream", "subscriber", c.s.id, "error", firstErr(err, regErr))
		pk.remove(pc)
		return false
	}
	c.s.parked.Store(pc)
	pc.armed.Store(true)
	// Whatever was queued since the last write, and any end requested or
	// event seen before the stream was armed.
	pc.wake()
	return true
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// parkable reports whether the stream of r will be parked: a plain
// HTTP/1.1 request on a socket, with parking on.
func (pk *parker) parkable(r *http.Request) bool {
	if pk == nil || r.TLS != nil || r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return false
	}
	switch r.Context().Value(http.LocalAddrContextKey).(type) {
	case *net.TCPAddr, *net.UnixAddr:
		return true
	}
	// Not a socket (an in-memory connection, say): nothing to poll, and no
	// poller goroutine is started for it.
	return false
}

// openPoller returns the poller, opened at the first park: a hub that
// never parks (no plain HTTP/1.1 client, or tests on in-memory
// connections) runs no poller goroutine.
func (pk *parker) openPoller() *poll.Poller {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if pk.closing {
		return nil
	}
	if pk.poller == nil {
		p, err := poll.Open()
		if err != nil {
			if pk.openErr == nil {
				pk.h.log.Warn("cannot park idle streams: they keep a goroutine each", "error", err)
			}
			pk.openErr = err
			return nil
		}
		pk.poller = p
	}
	return pk.poller
}

// add lists pc, unless the hub is shutting down.
func (pk *parker) add(pc *parkedConn) bool {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if pk.closing {
		return false
	}
	pc.next = pk.head
	if pk.head != nil {
		pk.head.prev = pc
	}
	pk.head = pc
	pk.n++
	return true
}

// remove unlists pc.
func (pk *parker) remove(pc *parkedConn) {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if pc.prev != nil {
		pc.prev.next = pc.next
	} else {
		pk.head = pc.next
	}
	if pc.next != nil {
		pc.next.prev = pc.prev
	}
	pc.prev, pc.next = nil, nil
	delete(pk.blocked, pc)
	pk.n--
	if pk.n == 0 {
		pk.zero.Broadcast()
	}
}

// count returns the number of parked streams.
func (pk *parker) count() int {
	if pk == nil {
		return 0
	}
	pk.mu.Lock()
	defer pk.mu.Unlock()
	return pk.n
}

// registrations returns the number of sockets registered with the poller.
func (pk *parker) registrations() int {
	if pk == nil {
		return 0
	}
	pk.mu.Lock()
	p := pk.poller
	pk.mu.Unlock()
	if p == nil {
		return 0
	}
	return p.Len()
}

// endAll asks every parked stream to end (with the last chunk, as the
// net/http path ends its streams at shutdown), and parks no more.
func (pk *parker) endAll() {
	if pk == nil {
		return
	}
	pk.mu.Lock()
	defer pk.mu.Unlock()
	pk.closing = true
	for pc := pk.head; pc != nil; pc = pc.next {
		pc.requestEnd(endShutdown)
	}
}

// close ends every parked stream, waits until they and their goroutines
// are gone, and stops the poller.
func (pk *parker) close() {
	if pk == nil {
		return
	}
	pk.endAll()
	pk.mu.Lock()
	for pk.n > 0 {
		pk.zero.Wait()
	}
	p := pk.poller
	pk.mu.Unlock()
	pk.wg.Wait()
	if p != nil {
		_ = p.Close()
	}
	pk.pool.wait()
}

// sweep cuts the streams whose pending write has waited for the dispatch
// timeout. It runs on the hub's sweeper, with the hub's clock.
func (pk *parker) sweep(now time.Time) {
	if pk == nil {
		return
	}
	limit := int64(pk.h.cfg.DispatchTimeout)
	nowNano := now.UnixNano()
	pk.mu.Lock()
	defer pk.mu.Unlock()
	for pc := range pk.blocked {
		if since := pc.blockedSince.Load(); since != 0 && nowNano-since >= limit {
			if pc.end.Load() == uint32(endNone) {
				pk.h.noteDropped(pc.s, "dispatch_timeout", nil)
			}
			pc.requestEnd(endStalled)
		}
	}
}

// parkedConn is one parked stream.
type parkedConn struct {
	pk  *parker
	s   *subscriber
	nc  net.Conn
	raw syscall.RawConn
	key poll.Key

	prev, next *parkedConn // the parker's list, under pk.mu

	sched        atomic.Bool   // queued for a writer, or about to run
	armed        atomic.Bool   // registered: writers may run it
	events       atomic.Uint32 // poller events not handled yet
	end          atomic.Uint32 // the endReason asked for
	blockedSince atomic.Int64  // hub-clock nanoseconds; 0: no write pending

	// The rest is held by writers, the catch-up goroutine and the closing
	// path, never by dispatch or the poller.
	mu       sync.Mutex
	lastSent uint64
	pending  []byte  // the unsent tail of a write the socket took in part
	pendBuf  *[]byte // the pooled buffer pending lies in
	catching bool    // a goroutine reads missed updates from the store
	cancel   context.CancelFunc
	hup      bool // the peer left while catching up
	closed   bool
}

// Ready receives the poller's events (on its goroutine: it only records
// them and schedules a writer).
func (pc *parkedConn) Ready(e poll.Event) {
	pc.events.Or(uint32(e))
	if pc.armed.Load() {
		pc.wake()
	}
}

// wake schedules pc on a writer, once however often it is called before the
// writer runs. It never blocks: dispatch calls it.
func (pc *parkedConn) wake() {
	if pc.sched.CompareAndSwap(false, true) {
		pc.pk.pool.submit(pc)
	}
}

func (pc *parkedConn) requestEnd(r endReason) {
	pc.end.CompareAndSwap(uint32(endNone), uint32(r))
	switch r {
	case endShutdown:
		pc.s.end(goneShutdown)
	case endStalled:
		pc.s.end(goneSlowReader)
	}
	pc.wake()
}

// run does what is due, without blocking: end the stream, finish a pending
// write, or write the queued batch (or a heartbeat), as conn.live does for
// a stream with a goroutine.
func (pc *parkedConn) run() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed || !pc.armed.Load() {
		return
	}
	ev := poll.Event(pc.events.Swap(0))
	end := endReason(pc.end.Load())
	if ev.Hangup() {
		pc.s.end(goneClient)
	}
	if pc.catching {
		// The catch-up goroutine owns the socket: interrupt it.
		if ev.Hangup() {
			pc.hup = true
			_ = pc.nc.SetWriteDeadline(aLongTimeAgo)
		}
		if ev.Hangup() || end != endNone {
			pc.cancel()
		}
		return
	}
	switch {
	case ev.Hangup():
		pc.finishLocked(false)
		return
	case end != endNone:
		pc.finishLocked(end == endShutdown)
		return
	}
	h := pc.pk.h
	if pc.pending != nil {
		n, err := pc.write(pc.pending)
		switch {
		case err != nil:
			pc.s.end(writeGone(err))
			pc.finishLocked(false)
			return
		case n < len(pc.pending):
			pc.pending = pc.pending[n:]
			return
		}
		pc.releasePending()
		pc.s.lastWrite.Store(h.now().UnixNano())
	}
	batch, lagging, flags := pc.s.take(nil)
	if flags&flagExpire != 0 {
		pc.s.end(pc.s.deadlineReason())
		pc.finishLocked(true)
		return
	}
	if lagging {
		pc.startCatchUp()
		return
	}
	var bp *[]byte
	var buf []byte
	for _, q := range batch {
		if q.u.Seq <= pc.lastSent {
			continue
		}
		if bp == nil {
			bp, buf = getBuf()
		}
		buf = append(buf, q.ev...)
		pc.lastSent = q.u.Seq
	}
	if bp == nil {
		if flags&flagHeartbeat == 0 {
			return
		}
		bp, buf = getBuf()
		buf = append(buf, ":\n"...)
	}
	buf, start := frameChunk(buf)
	*bp = buf
	out := buf[start:]
	n, err := pc.write(out)
	now := h.now().UnixNano()
	pc.s.lastWrite.Store(now)
	switch {
	case err != nil:
		putBuf(bp)
		pc.s.end(writeGone(err))
		pc.finishLocked(false)
	case n < len(out):
		pc.pending, pc.pendBuf = out[n:], bp
		pc.blockedSince.Store(now)
		pc.pk.mu.Lock()
		pc.pk.blocked[pc] = struct{}{}
		pc.pk.mu.Unlock()
		h.metrics.blockedWrites.Inc()
	default:
		putBuf(bp)
	}
}

// getBuf takes a write buffer from the pool (of any capacity: the
// net/http path gives back what it grew), with room for the chunk header.
func getBuf() (*[]byte, []byte) {
	bp := bufPool.Get().(*[]byte)
	return bp, append((*bp)[:0], make([]byte, chunkReserve)...)
}

// putBuf returns a write buffer to the pool, unless a large batch grew it.
func putBuf(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		*bp = (*bp)[:0]
		bufPool.Put(bp)
	}
}

// write writes as much of p as the socket takes now, without waiting.
func (pc *parkedConn) write(p []byte) (int, error) {
	n := 0
	var werr error
	err := pc.raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, err := unix.Write(int(fd), p[n:])
			if m > 0 {
				n += m
			}
			if err == unix.EINTR {
				continue
			}
			if err != nil && err != unix.EAGAIN {
				werr = err
			}
			if err != nil || m <= 0 {
				break
			}
		}
		return true // never wait for the runtime's poller: ours says when
	})
	if err == nil {
		err = werr
	}
	return n, err
}

// releasePending returns the pending write's buffer.
func (pc *parkedConn) releasePending() {
	if pc.pendBuf == nil {
		return
	}
	putBuf(pc.pendBuf)
	pc.pending, pc.pendBuf = nil, nil
	pc.blockedSince.Store(0)
	pc.pk.mu.Lock()
	delete(pc.pk.blocked, pc)
	pc.pk.mu.Unlock()
}

// startCatchUp gives pc a goroutine to read what it missed from the store,
// as conn.live does for a lagging stream; pc parks again afterwards.
func (pc *parkedConn) startCatchUp() {
	pc.catching = true
	ctx, cancel := context.WithCancel(context.Background())
	pc.cancel = cancel
	pc.pk.h.metrics.lagging.Inc()
	pc.pk.wg.Add(1)
	go pc.catchUp(ctx, cancel)
}

// catchUp runs on its own goroutine, with blocking writes under the
// dispatch timeout, as the net/http path writes: it finishes the pending
// write, then streams the range the queue lost.
func (pc *parkedConn) catchUp(ctx context.Context, cancel context.CancelFunc) {
	defer pc.pk.wg.Done()
	defer cancel()
	h := pc.pk.h
	c := &conn{h: h, s: pc.s, nc: pc.nc, ctx: ctx}
	var err error
	if pc.pending != nil {
		if err = writeRaw(pc.nc, pc.pending, h.cfg.DispatchTimeout); err != nil {
			c.failed = true
			pc.s.end(writeGone(err))
		}
		pc.releasePending()
	}
	if err == nil {
		until := h.bc.resync(pc.s)
		err = c.catchUp(pc.lastSent, until)
		if err == nil {
			err = c.flush()
		}
		if err == nil {
			pc.lastSent = max(pc.lastSent, until)
		}
	}
	_ = pc.nc.SetWriteDeadline(time.Time{})
	if err != nil {
		// A hang-up or an end asked for has recorded its reason already.
		c.endedBy(err)
	}

	pc.mu.Lock()
	pc.catching, pc.cancel = false, nil
	ended := err != nil || pc.hup || endReason(pc.end.Load()) != endNone
	if ended {
		// A store failure ends the stream cleanly, as on the net/http path.
		pc.finishLocked(!c.failed && !pc.hup && endReason(pc.end.Load()) != endStalled)
	}
	pc.mu.Unlock()
	if !ended {
		pc.wake() // what was queued meanwhile
	}
}

// finishLocked ends the stream: the last chunk if clean (best effort: a
// peer that does not read gets cut), then the socket closes and s is
// released as the handler releases it on the net/http path.
func (pc *parkedConn) finishLocked(clean bool) {
	pc.closed = true
	pk, h, s := pc.pk, pc.pk.h, pc.s
	if clean {
		out := chunkEnd
		if pc.pending != nil {
			out = append(pc.pending, chunkEnd...)
		}
		_, _ = pc.write(out)
	}
	if err := pk.poller.Remove(pc.key); err != nil {
		h.log.Debug("unregister a parked stream", "subscriber", s.id, "error", err)
	}
	pc.drain()
	_ = pc.nc.Close()
	pc.releasePending()
	s.parked.Store(nil)
	if len(s.subs) == 0 {
		h.release(s)
		h.releaseSubscriber(s)
	} else {
		// Its closing subscription events go through the store, which may
		// take a while: not on a writer.
		pk.wg.Go(func() {
			h.release(s)
			h.releaseSubscriber(s)
		})
	}
	pk.remove(pc)
}

// drain reads and drops what the peer sent after its request, so that
// closing the socket sends a FIN: closing with unread data sends a reset,
// which can destroy the end of the stream still in flight.
func (pc *parkedConn) drain() {
	var b [512]byte
	_ = pc.raw.Read(func(fd uintptr) bool {
		for range 64 {
			if n, err := unix.Read(int(fd), b[:]); n <= 0 || err != nil {
				break
			}
		}
		return true
	})
}

// writerPool runs parked streams' writes on at most max goroutines, which
// exist only while there is work.
type writerPool struct {
	mu      sync.Mutex
	idle    *sync.Cond // broadcast when running drops to 0
	queue   []*parkedConn
	head    int
	running int
	max     int
}

func (wp *writerPool) init(n int) {
	wp.max = n
	wp.idle = sync.NewCond(&wp.mu)
}

// submit queues pc and starts a writer if the queue outgrows the writers.
func (wp *writerPool) submit(pc *parkedConn) {
	wp.mu.Lock()
	wp.queue = append(wp.queue, pc)
	start := wp.running < wp.max && wp.running < len(wp.queue)-wp.head
	if start {
		wp.running++
	}
	wp.mu.Unlock()
	if start {
		go wp.work()
	}
}

func (wp *writerPool) work() {
	for {
		wp.mu.Lock()
		if wp.head == len(wp.queue) {
			// Drained: a large queue's array is not kept for idle times.
			if cap(wp.queue) > 1024 {
				wp.queue = nil
			} else {
				wp.queue = wp.queue[:0]
			}
			wp.head = 0
			wp.running--
			if wp.running == 0 {
				wp.idle.Broadcast()
			}
			wp.mu.Unlock()
			return
		}
		pc := wp.queue[wp.head]
		wp.queue[wp.head] = nil
		wp.head++
		wp.mu.Unlock()
		pc.sched.Store(false)
		pc.run()
	}
}

// wait returns once no writer runs.
func (wp *writerPool) wait() {
	wp.mu.Lock()
	defer wp.mu.Unlock()
	for wp.running > 0 {
		wp.idle.Wait()
	}
}
