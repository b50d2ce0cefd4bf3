package hub

import (
	"net/http"
	"strconv"
	"sync/atomic"
)

// DefaultRetryAfter is what a subscriber refused for the MaxSubscribers cap
// is told to wait, in seconds: long enough for others to leave, short
// enough that a client that honours it reconnects soon.
const DefaultRetryAfter = 5

// admission counts open subscription requests against Config.MaxSubscribers.
type admission struct {
	open atomic.Int64
}

// admit reserves a place, or reports that the hub is full. release must
// follow a successful admit.
func (a *admission) admit(limit int) bool {
	if limit <= 0 {
		a.open.Add(1)
		return true
	}
	if a.open.Add(1) > int64(limit) {
		a.open.Add(-1)
		return false
	}
	return true
}

func (a *admission) release() { a.open.Add(-1) }

// refuseFull answers a subscription beyond the cap: 503 with Retry-After,
// on a connection that is then closed, so that the refused client gives its
// descriptor back at once.
func (h *Hub) refuseFull(w http.ResponseWriter, r *http.Request, g generation) {
	h.metrics.refused.Inc()
	w.Header().Set("Retry-After", strconv.Itoa(DefaultRetryAfter))
	w.Header().Set("Connection", "close")
	h.writeError(w, r, g, &httpError{status: http.StatusServiceUnavailable, msg: "too many subscribers, try again later"})
}
