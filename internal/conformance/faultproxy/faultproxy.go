// Package faultproxy is a reverse proxy in front of a Mercure hub that
// breaks one thing at a time, the way misbehaving hubs and intermediaries
// (CDNs, buffering proxies, header-stripping gateways) do. It proves that
// the conformance cases notice each fault. It is test support: only tests
// import it.
package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Fault is one way of breaking the protocol.
type Fault string

// The faults.
const (
	// None forwards everything untouched.
	None Fault = "none"
	// DropCursorHeader removes the response cursor header (Last-Event-ID,
	// Mercure-Last-Event-ID).
	DropCursorHeader Fault = "drop-cursor-header"
	// Unauthorized403 answers 401 where the hub answered 403.
	Unauthorized403 Fault = "401-instead-of-403"
	// DropReplayed drops the second event of every replay.
	DropReplayed Fault = "drop-replayed-event"
	// ReorderReplayed swaps the first two events of every replay.
	ReorderReplayed Fault = "reorder-replayed-events"
	// CapReplay drops the replayed events after the first ReplayCap (1,000).
	CapReplay Fault = "cap-replay-1000"
	// JoinData joins the data lines of an event into one.
	JoinData Fault = "join-data-lines"
	// DropRetry removes the retry fields.
	DropRetry Fault = "drop-retry"
	// Buffer holds every chunk of an event stream for BufferDelay (2 s; the
	// end of the stream is passed on at once, as buffering proxies flush
	// then).
	Buffer Fault = "buffer-2s"
	// DropCORS removes the Access-Control-* response headers.
	DropCORS Fault = "drop-cors-headers"
	// IgnoreLastEventID removes the Last-Event-ID request header.
	IgnoreLastEventID Fault = "ignore-last-event-id-header"
	// OldCursorEarliest answers `earliest` as the response cursor when the
	// request's cursor is older than OldAfter updates of its topic (counted
	// from the publishes the proxy saw), as a hub that loses old cursors
	// does. Counting per topic keeps the fault away from the cases that
	// publish a few updates while another publishes thousands.
	OldCursorEarliest Fault = "old-cursor-as-earliest"
)

// Faults lists every fault but None.
func Faults() []Fault {
	return []Fault{
		DropCursorHeader, Unauthorized403, DropReplayed, ReorderReplayed, CapReplay, JoinData,
		DropRetry, Buffer, DropCORS, IgnoreLastEventID, OldCursorEarliest,
	}
}

// Parse returns the fault named s.
func Parse(s string) (Fault, error) {
	for _, f := range append(Faults(), None) {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("%w %q", ErrUnknownFault, s)
}

// Default figures of the faults.
const (
	// DefaultReplayCap is where CapReplay cuts a replay.
	DefaultReplayCap = 1000
	// DefaultBufferDelay is how long Buffer holds each chunk.
	DefaultBufferDelay = 2 * time.Second
	// DefaultOldAfter is the depth beyond which OldCursorEarliest reports a
	// cursor as lost: the 10,000 records of the reference hubs' bug.
	DefaultOldAfter = 10000
)

// replayDoneComment is the comment by which mercurectl's hub marks the end
// of a replay; the replay faults stop counting there.
const replayDoneComment = ":mercurectl:replay-done"

// Proxy forwards requests to a hub with one fault.
type Proxy struct {
	upstream *url.URL
	fault    Fault
	client   *http.Client
	// OldAfter is the depth for OldCursorEarliest (0: DefaultOldAfter).
	OldAfter int
	// ReplayCap is where CapReplay cuts (0: DefaultReplayCap).
	ReplayCap int
	// BufferDelay is how long Buffer holds each chunk (0: DefaultBufferDelay).
	BufferDelay time.Duration

	mu     sync.Mutex
	ids    map[string]position // published id → where
	counts map[string]int      // topic → updates published
}

// position is where an update was published: its topic and rank there.
type position struct {
	topic string
	n     int
}

// New returns a proxy to the hub at upstream (its scheme and host; paths
// are kept) with the fault.
func New(upstream string, fault Fault) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: bad upstream %q", upstream)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableCompression = true
	t.MaxIdleConnsPerHost = 64
	return &Proxy{
		upstream: u, fault: fault, ids: map[string]position{}, counts: map[string]int{},
		client: &http.Client{
			Transport:     t,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// hopByHop are the headers a proxy does not forward (RFC 9110 §7.6.1).
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out := *p.upstream
	out.Path, out.RawPath, out.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, out.String(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	topic := ""
	if r.Method == http.MethodPost && r.Body != nil {
		// Read the form to know the update's topic, then pass it on.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
			return
		}
		if f, err := url.ParseQuery(string(body)); err == nil {
			topic = f.Get("topic")
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.ContentLength = int64(len(body))
	}
	req.Header = r.Header.Clone()
	for _, h := range hopByHop {
		req.Header.Del(h)
	}
	req.Host = r.Host
	if topic == "" {
		req.ContentLength = r.ContentLength
	}
	if p.fault == IgnoreLastEventID {
		req.Header.Del("Last-Event-ID")
	}
	cursor := req.Header.Get("Last-Event-ID")
	if cursor == "" {
		q := r.URL.Query()
		cursor = q.Get("lastEventID")
		if v := q.Get("last_event_id"); v != "" {
			cursor = v
		}
	}

	resp, err := p.client.Do(req)
	if err != nil && strings.Contains(err.Error(), "server closed idle connection") && r.Context().Err() == nil {
		// The hub closed a pooled connection just as the proxy reused it:
		// the request was not processed, so it is sent again (the
		// transport does so itself for idempotent methods only).
		if req.GetBody != nil {
			req.Body, _ = req.GetBody()
		}
		resp, err = p.client.Do(req)
	}
	if err != nil {
		http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	hd := w.Header()
	for k, vs := range resp.Header {
		hd[k] = vs
	}
	for _, h := range hopByHop {
		hd.Del(h)
	}
	status := resp.StatusCode
	switch p.fault {
	case DropCursorHeader:
		hd.Del("Last-Event-ID")
		hd.Del("Mercure-Last-Event-ID")
	case DropCORS:
		for k := range hd {
			if strings.HasPrefix(k, "Access-Control-") {
				hd.Del(k)
			}
		}
	case Unauthorized403:
		if status == http.StatusForbidden {
			status = http.StatusUnauthorized
		}
	case OldCursorEarliest:
		if cursor != "" && p.old(cursor) {
			for _, h := range []string{"Last-Event-ID", "Mercure-Last-Event-ID"} {
				if hd.Get(h) != "" {
					hd.Set(h, "earliest")
				}
			}
		}
	}

	if r.Method == http.MethodPost && status >= 200 && status < 300 {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
			return
		}
		p.record(strings.TrimSpace(string(body)), topic)
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "text/event-stream" {
		w.WriteHeader(status)
		_, _ = io.Copy(w, resp.Body)
		return
	}
	hd.Del("Content-Length")
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	if p.fault == Buffer {
		p.delay(r.Context(), w, rc, resp.Body)
		return
	}
	tr := &transformer{fault: p.fault, replay: cursor != "" && p.fault != IgnoreLastEventID, limit: p.ReplayCap}
	if tr.limit <= 0 {
		tr.limit = DefaultReplayCap
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if out := tr.feed(buf[:n]); len(out) > 0 {
				if _, werr := w.Write(out); werr != nil {
					return
				}
			}
			_ = rc.Flush()
		}
		if err != nil {
			if out := tr.end(); len(out) > 0 {
				_, _ = w.Write(out)
				_ = rc.Flush()
			}
			return
		}
	}
}

// record notes a published id, for OldCursorEarliest.
func (p *Proxy) record(id, topic string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.ids[id]; !dup {
		p.ids[id] = position{topic: topic, n: p.counts[topic]}
	}
	p.counts[topic]++
}

// old reports whether cursor was published more than OldAfter updates of
// its topic ago.
func (p *Proxy) old(cursor string) bool {
	limit := p.OldAfter
	if limit <= 0 {
		limit = DefaultOldAfter
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pos, ok := p.ids[cursor]
	return ok && p.counts[pos.topic]-pos.n > limit
}

// delay copies the stream, holding each chunk for p.BufferDelay; once the
// upstream stream ends, what is held is passed on at once.
func (p *Proxy) delay(ctx context.Context, w io.Writer, rc *http.ResponseController, body io.Reader) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	hold := p.BufferDelay
	if hold <= 0 {
		hold = DefaultBufferDelay
	}
	chunks := make(chan chunk, 1<<16)
	ended := make(chan struct{})
	go func() {
		defer close(chunks)
		defer close(ended)
		for {
			buf := make([]byte, 32<<10)
			n, err := body.Read(buf)
			if n > 0 {
				select {
				case chunks <- chunk{buf[:n], time.Now()}:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		if d := time.Until(c.at.Add(hold)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ended:
			case <-ctx.Done():
				t.Stop()
				return
			}
			t.Stop()
		}
		if _, err := w.Write(c.b); err != nil {
			return
		}
		_ = rc.Flush()
	}
}

// transformer rewrites an event stream event by event.
type transformer struct {
	fault    Fault
	replay   bool // the request had a cursor: the stream starts with a replay
	limit    int  // CapReplay's cap
	partial  []byte
	event    [][]byte // lines of the event being read
	replayed int
	held     []byte // ReorderReplayed: the first replayed event
	out      bytes.Buffer
}

// feed takes bytes from the hub and returns what to forward now.
func (t *transformer) feed(b []byte) []byte {
	t.out.Reset()
	t.partial = append(t.partial, b...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		line := append([]byte(nil), t.partial[:i]...)
		t.partial = t.partial[i+1:]
		t.line(line)
	}
	return append([]byte(nil), t.out.Bytes()...)
}

// end flushes what is held at the end of the stream.
func (t *transformer) end() []byte {
	t.out.Reset()
	if t.held != nil {
		t.out.Write(t.held)
		t.held = nil
	}
	return append([]byte(nil), t.out.Bytes()...)
}

func (t *transformer) line(line []byte) {
	switch {
	case len(line) == 0:
		if len(t.event) > 0 {
			t.emit(t.event)
			t.event = nil
		} else {
			t.out.WriteByte('\n')
		}
	case line[0] == ':' && len(t.event) == 0:
		if t.replay && string(line) == replayDoneComment {
			t.replay = false
			if t.held != nil {
				t.out.Write(t.held)
				t.held = nil
			}
		}
		t.out.Write(line)
		t.out.WriteByte('\n')
	default:
		t.event = append(t.event, line)
	}
}

// emit forwards one complete event, faulted.
func (t *transformer) emit(lines [][]byte) {
	var ev bytes.Buffer
	var data [][]byte
	for _, l := range lines {
		switch {
		case t.fault == DropRetry && bytes.HasPrefix(l, []byte("retry:")):
			continue
		case t.fault == JoinData && bytes.HasPrefix(l, []byte("data:")):
			data = append(data, bytes.TrimPrefix(bytes.TrimPrefix(l, []byte("data:")), []byte(" ")))
			continue
		}
		ev.Write(l)
		ev.WriteByte('\n')
	}
	if len(data) > 0 {
		ev.WriteString("data: ")
		ev.Write(bytes.Join(data, []byte(" ")))
		ev.WriteByte('\n')
	}
	ev.WriteByte('\n')
	if t.replay {
		t.replayed++
		switch {
		case t.fault == DropReplayed && t.replayed == 2:
			return
		case t.fault == CapReplay && t.replayed > t.limit:
			return
		case t.fault == ReorderReplayed && t.replayed == 1:
			t.held = ev.Bytes()
			return
		case t.fault == ReorderReplayed && t.replayed == 2:
			t.out.Write(ev.Bytes())
			t.out.Write(t.held)
			t.held = nil
			return
		}
	}
	t.out.Write(ev.Bytes())
}

// ErrUnknownFault is returned by Parse for an unknown name.
var ErrUnknownFault = errors.New("unknown fault")
