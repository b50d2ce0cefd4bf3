// Package ratelog keeps a recurring problem to one log line per interval:
// a full disk fails every publish, and a descriptor-exhausted listener fails
// every accept, but the operator needs to hear of it once, with a count.
package ratelog

import (
	"sync"
	"time"
)

// DefaultInterval is how often a recurring problem is logged at most.
const DefaultInterval = 10 * time.Second

// Limiter lets one occurrence in each interval through and counts the others.
// The zero value logs at most once per DefaultInterval on the wall clock.
type Limiter struct {
	// Every is the interval (0: DefaultInterval).
	Every time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	mu         sync.Mutex
	last       time.Time
	logged     bool
	suppressed int
}

// Allow records one occurrence. It reports whether this one should be
// logged and, if so, how many occurrences were held back since the last
// one that was.
func (l *Limiter) Allow() (ok bool, suppressed int) {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	every := l.Every
	if every <= 0 {
		every = DefaultInterval
	}
	t := now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.logged && t.Sub(l.last) < every {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.logged, l.suppressed = t, true, 0
	return true, n
}
