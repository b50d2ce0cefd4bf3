package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// signalWindow is how close together signals count as one request to stop.
// Supervisors often deliver one stop as two signals at once: coreutils
// timeout, for one, signals the process and then its whole process group,
// which the process belongs to. Only a signal that arrives this long after
// the stop began forces an immediate exit.
const signalWindow = 500 * time.Millisecond

// signalNotifier relays SIGINT and SIGTERM to a channel until stop is
// called; notifySignals is the production one, tests send fake signals
// instead.
type signalNotifier func(c chan<- os.Signal) (stop func())

// notifySignals relays SIGINT and SIGTERM to c for the rest of the process:
// its stop does not restore the default action. A command that is done
// returns to main, which exits at once; a duplicate signal that arrives in
// between (the second half of a timeout's double signal, say) must not kill
// the process and replace the command's exit code with a signal's. c drops
// what it cannot hold, so nothing blocks.
func notifySignals(c chan<- os.Signal) (stop func()) {
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	return func() {}
}

// stopSignals is the two-stage stop of the long-running commands (serve,
// subscribe, replay): the first SIGINT or SIGTERM asks for a clean stop
// (Stopping is closed), and a signal that arrives at least the window after
// the stop began asks to stop at once (Forced is closed). Signals in between
// are the same request, delivered twice. From watchSignals on, no signal
// falls through to the default action (which kills the process).
type stopSignals struct {
	window   time.Duration
	stopping chan struct{}
	forced   chan struct{}

	mu    sync.Mutex
	since time.Time // when the stop began; zero before
	force bool      // forced is closed

	stopNotify func()
	quit       chan struct{}
	done       chan struct{}
}

// watchSignals starts watching the signals that notify relays. window <= 0
// means signalWindow.
func watchSignals(notify signalNotifier, window time.Duration) *stopSignals {
	if window <= 0 {
		window = signalWindow
	}
	s := &stopSignals{
		window:   window,
		stopping: make(chan struct{}),
		forced:   make(chan struct{}),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	// Buffered so that a burst is not lost while the loop is busy; a signal
	// that finds the buffer full is a duplicate anyway.
	sigc := make(chan os.Signal, 4)
	s.stopNotify = notify(sigc)
	go func() {
		defer close(s.done)
		for {
			select {
			case <-sigc:
				s.signal()
			case <-s.quit:
				return
			}
		}
	}()
	return s
}

// signal handles one signal.
func (s *stopSignals) signal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	switch {
	case s.since.IsZero():
		s.since = now
		close(s.stopping)
	case !s.force && now.Sub(s.since) >= s.window:
		s.force = true
		close(s.forced)
	}
}

// Begin records that a stop began for another reason than a signal (the
// command's context was cancelled, a server failed), so that a signal from
// now on forces the exit, once the window has passed.
func (s *stopSignals) Begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.since.IsZero() {
		s.since = time.Now()
		close(s.stopping)
	}
}

// Stopping is closed when the first signal arrives, or at Begin.
func (s *stopSignals) Stopping() <-chan struct{} { return s.stopping }

// Forced is closed when a signal asks to stop at once.
func (s *stopSignals) Forced() <-chan struct{} { return s.forced }

// context returns a copy of parent that is cancelled at the first signal.
func (s *stopSignals) context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Close stops watching. (With notifySignals, signals are still caught and
// dropped until the process exits.)
func (s *stopSignals) Close() {
	s.stopNotify()
	close(s.quit)
	<-s.done
}

// runInterruptible runs fn until it returns, with a context that the first
// SIGINT or SIGTERM cancels: fn then stops cleanly and its result is
// returned. A later signal (see stopSignals), while fn is still finishing,
// returns an *interruptedError (exit 130) at once, without waiting for fn.
// stopped reports whether a signal arrived.
func runInterruptible(ctx context.Context, notify signalNotifier, fn func(context.Context) error) (stopped bool, err error) {
	sig := watchSignals(notify, 0)
	defer sig.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	select {
	case err := <-done:
		return false, err
	case <-sig.Stopping():
		cancel()
	}
	select {
	case err := <-done:
		return true, err
	case <-sig.Forced():
		return true, &interruptedError{}
	}
}
