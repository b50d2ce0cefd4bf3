package bench

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// Baseline is a deliberately minimal Go SSE broadcaster: no authorization,
// no history, no validation, one buffered channel per subscriber. It is the
// yardstick `mercurectl bench` compares a hub against, measured on the same
// machine in the same run: the cost of fan-out over HTTP with nothing else.
type Baseline struct {
	mu   sync.RWMutex
	subs map[string]map[chan []byte]struct{}
	seq  atomic.Uint64
}

// NewBaseline returns an empty baseline broadcaster.
func NewBaseline() *Baseline {
	return &Baseline{subs: make(map[string]map[chan []byte]struct{})}
}

// ServeHTTP accepts draft-07 style subscriptions (GET ?topic=) and publishes
// (POST topic=&data=).
func (b *Baseline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id := "urn:baseline:" + strconv.FormatUint(b.seq.Add(1), 10)
		ev := fmt.Appendf(nil, "id: %s\ndata: %s\n\n", id, r.PostForm.Get("data"))
		b.mu.RLock()
		for _, t := range r.PostForm["topic"] {
			for ch := range b.subs[t] {
				select {
				case ch <- ev:
				default: // a slow subscriber loses the update
				}
			}
		}
		b.mu.RUnlock()
		_, _ = io.WriteString(w, id)
	case http.MethodGet:
		topics := r.URL.Query()["topic"]
		ch := make(chan []byte, 256)
		b.mu.Lock()
		for _, t := range topics {
			if b.subs[t] == nil {
				b.subs[t] = make(map[chan []byte]struct{})
			}
			b.subs[t][ch] = struct{}{}
		}
		b.mu.Unlock()
		defer func() {
			b.mu.Lock()
			for _, t := range topics {
				delete(b.subs[t], ch)
				if len(b.subs[t]) == 0 {
					delete(b.subs, t)
				}
			}
			b.mu.Unlock()
		}()
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-ch:
				if _, err := w.Write(ev); err != nil {
					return
				}
				if err := rc.Flush(); err != nil {
					return
				}
			}
		}
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}
