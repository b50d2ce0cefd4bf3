package main

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/mercurectl/mercurectl/internal/ratelog"
)

// maxSubscribersAuto is the --max-subscribers value that derives the cap
// from the process's descriptor limit.
const maxSubscribersAuto = -1

// maxSubscribers is the effective --max-subscribers.
func (o *serveOptions) maxSubscribers() int {
	if o.MaxSubscribers == maxSubscribersAuto {
		return defaultMaxSubscribers()
	}
	return o.MaxSubscribers
}

// defaultMaxSubscribers derives the subscription cap from the descriptor
// limit (0 when the platform has none: no cap). A reserve stays for what is
// not a subscription: publishers, the metrics listener, the history store,
// Redis connections, log files and the runtime's own descriptors. It is 64
// plus 5% of the limit, but at most half of it, so that a small limit
// still admits some subscribers.
func defaultMaxSubscribers() int {
	limit := descriptorLimit()
	if limit <= 0 {
		return 0
	}
	reserve := min(64+limit/20, limit/2)
	return max(limit-reserve, 1)
}

// acceptListener keeps a descriptor-exhausted listener from flooding the
// log and spinning: when Accept fails for lack of descriptors, it waits
// (5 ms, doubling to 1 s) and tries again, logging at most once per
// interval with the number of failures since. Pending connections wait in
// the kernel's backlog meanwhile; the subscription cap is what keeps
// descriptors free for them.
type acceptListener struct {
	net.Listener
	logger *slog.Logger
	log    ratelog.Limiter
	sleep  func(time.Duration) // nil: time.Sleep
}

// Accept implements net.Listener.
func (l *acceptListener) Accept() (net.Conn, error) {
	wait := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err == nil || !outOfDescriptors(err) {
			return c, err
		}
		if ok, n := l.log.Allow(); ok {
			l.logger.Warn("cannot accept connections: out of file descriptors; they wait in the backlog (lower --max-subscribers or raise the limit)",
				"error", err, "failures_not_logged", n)
		}
		if l.sleep != nil {
			l.sleep(wait)
		} else {
			time.Sleep(wait)
		}
		wait = min(2*wait, time.Second)
	}
}

func outOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
