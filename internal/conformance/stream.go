package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mercurectl/mercurectl/internal/sse"
)

// evt is an event as received, with its arrival time.
type evt struct {
	sse.Event
	at time.Time
}

// errEnded is returned by stream reads once the hub closed the stream and
// every event was read.
var errEnded = errors.New("the hub closed the stream")

// stream is an open subscription, read in the background into an unbounded
// queue so that a case that is busy elsewhere never slows the hub down.
type stream struct {
	t      *T
	header http.Header
	opened time.Time // when the response headers arrived
	marker bool      // the hub promised to mark the end of the replay
	cancel context.CancelFunc

	mu         sync.Mutex
	queue      []evt
	notify     chan struct{} // signalled after each change
	ended      bool
	endErr     error
	endedAt    time.Time
	replayDone bool
	comments   []time.Time
}

// newStream starts reading an accepted subscription's body.
func newStream(t *T, resp *http.Response, cancel context.CancelFunc) *stream {
	s := &stream{
		t: t, header: resp.Header, opened: time.Now(), cancel: cancel,
		marker: resp.Header.Get(sse.ReplayMarkerHeader) != "",
		notify: make(chan struct{}, 1),
	}
	go s.read(resp.Body)
	return s
}

func (s *stream) read(body io.ReadCloser) {
	defer func() { _ = body.Close() }()
	rd := sse.NewReader(body, sse.ReaderOptions{OnComment: func(text string) {
		s.mu.Lock()
		s.comments = append(s.comments, time.Now())
		if strings.TrimSpace(text) == sse.ReplayDoneComment {
			s.replayDone = true
		}
		s.mu.Unlock()
		s.signal()
	}})
	for {
		ev, err := rd.Next()
		now := time.Now()
		s.mu.Lock()
		if err != nil {
			s.ended, s.endedAt = true, now
			if !errors.Is(err, io.EOF) {
				s.endErr = err
			}
			s.mu.Unlock()
			s.signal()
			return
		}
		s.queue = append(s.queue, evt{Event: ev, at: now})
		s.mu.Unlock()
		s.signal()
	}
}

func (s *stream) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// close ends the subscription.
func (s *stream) close() { s.cancel() }

// next returns the next event. It returns errEnded when the stream ended, a
// *waitError when idle (if positive) passed without an event or the case's
// time ran out, and errReplayDone when stopAtReplayDone and the hub marked
// the end of its replay with no event left to read.
func (s *stream) next(idle time.Duration, what string, stopAtReplayDone bool) (evt, error) {
	var timer <-chan time.Time
	if idle > 0 {
		t := time.NewTimer(idle)
		defer t.Stop()
		timer = t.C
	}
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			e := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return e, nil
		}
		ended, endErr, done := s.ended, s.endErr, s.replayDone
		s.mu.Unlock()
		if ended {
			if endErr != nil && s.t.ctx.Err() == nil {
				return evt{}, fmt.Errorf("%w (%w)", errEnded, endErr)
			}
			if s.t.ctx.Err() != nil {
				return evt{}, s.t.waitErr(what)
			}
			return evt{}, errEnded
		}
		if stopAtReplayDone && done {
			return evt{}, errReplayDone
		}
		select {
		case <-s.notify:
		case <-timer:
			return evt{}, &waitError{what: what, idle: idle}
		case <-s.t.ctx.Done():
			return evt{}, s.t.waitErr(what)
		}
	}
}

// errReplayDone: the hub marked the end of its replay.
var errReplayDone = errors.New("the hub marked the end of its replay")

// waitFor reads events until one has the id, returning those before it.
func (s *stream) waitFor(id, what string) ([]evt, evt, error) {
	var before []evt
	for {
		e, err := s.next(0, what, false)
		if err != nil {
			return before, evt{}, err
		}
		if e.ID == id {
			return before, e, nil
		}
		before = append(before, e)
	}
}

// collect reads events until n arrived, the stream ended, the hub marked
// the end of its replay (when it promised to, and the events are all
// replayed ones), or nothing came for idle. It returns what arrived and,
// when fewer than n did, why it stopped.
func (s *stream) collect(n int, idle time.Duration, what string) ([]evt, string) {
	return s.collectUntil(n, idle, what, s.marker)
}

// collectLive is collect for events that are replayed, then live: the end
// of the replay does not end the wait.
func (s *stream) collectLive(n int, idle time.Duration, what string) ([]evt, string) {
	return s.collectUntil(n, idle, what, false)
}

func (s *stream) collectUntil(n int, idle time.Duration, what string, atReplayDone bool) ([]evt, string) {
	var got []evt
	for len(got) < n {
		// A hub that promised to mark the end of its replay is waited for
		// (within the case's time); so is the first event from a hub that
		// answered with a cursor header, which may take a while to find
		// it in a long history. A pause after an event ends the replay.
		wait := idle
		if (atReplayDone && s.marker) || (len(got) == 0 && s.hasCursorHeader()) {
			wait = 0
		}
		e, err := s.next(wait, what, atReplayDone)
		if err != nil {
			switch {
			case errors.Is(err, errReplayDone):
				return got, "the hub marked the end of its replay"
			case errors.Is(err, errEnded):
				return got, "the hub closed the stream"
			}
			var we *waitError
			if errors.As(err, &we) && we.idle > 0 {
				return got, fmt.Sprintf("nothing more came for %v", idle)
			}
			return got, s.t.describe(err)
		}
		got = append(got, e)
	}
	return got, ""
}

// hasCursorHeader reports whether the hub answered with a cursor header of
// either generation: it saw the request's cursor.
func (s *stream) hasCursorHeader() bool {
	return s.header.Get("Last-Event-ID") != "" || s.header.Get("Mercure-Last-Event-ID") != ""
}

// waitEnd waits for the hub to close the stream and returns when it did.
func (s *stream) waitEnd(what string) (time.Time, error) {
	for {
		_, err := s.next(0, what, false)
		if errors.Is(err, errEnded) {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.endedAt, nil
		}
		if err != nil {
			return time.Time{}, err
		}
	}
}

// commentTimes returns the arrival times of the comment lines so far.
func (s *stream) commentTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.comments...)
}

// waitError is a wait that ran out: the case's timeout, or an idle limit.
type waitError struct {
	what    string
	timeout time.Duration // the case's
	idle    time.Duration // when an idle limit ran out
}

func (e *waitError) Error() string {
	if e.idle > 0 {
		return fmt.Sprintf("nothing came for %v while waiting for %s", e.idle, e.what)
	}
	return fmt.Sprintf("timed out after %v waiting for %s", e.timeout, e.what)
}

// isEventStream reports whether resp is an accepted subscription.
func isEventStream(resp *http.Response) bool {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return resp.StatusCode == http.StatusOK && mt == "text/event-stream"
}
