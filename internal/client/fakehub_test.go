package client

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/memnet"
	"github.com/mercurectl/mercurectl/internal/sse"
)

// fakeUpdate is an update held by the fake hub.
type fakeUpdate struct {
	id     string
	topics []string
	data   string
	typ    string
}

// reqRecord is what the fake hub saw of a request.
type reqRecord struct {
	method string
	url    *url.URL
	header http.Header
	form   url.Values
}

// fakeHub is a small Mercure hub written for these tests, independent of
// internal/hub: it serves SSE with history and cursors in both generations,
// and can misbehave on demand. It listens on 127.0.0.1 with its own
// http.Server so that it can be stopped and restarted on the same port,
// keeping its history (like a hub with a durable store).
type fakeHub struct {
	tb testing.TB

	mu       sync.Mutex
	addr     string
	srv      *http.Server
	done     chan struct{} // closed when the current server generation stops
	history  []fakeUpdate
	nextID   int
	subs     map[chan fakeUpdate]struct{}
	reqs     []reqRecord
	connects int

	// Knobs, set before use (under mu when changed later).
	metadata      bool   // serve RFC 9728 metadata
	metadataBody  string // overrides the metadata document
	retry         int    // send "retry: N" at the start of each stream; -1: none
	marker        bool   // send sse.ReplayDoneComment after the replay
	markerHeader  bool   // and announce it with sse.ReplayMarkerHeader
	dropAfter     int    // end each stream after this many events (0: never)
	abortDrop     bool   // end it by breaking the connection instead of cleanly
	silent        bool   // no ":" comment after the headers
	unknownCursor string // response cursor for an unknown id ("": earliest)
	noEmptyCursor bool   // send no response cursor for an empty cursor (as 0.x hubs)
	draft08Only   bool   // refuse draft-07 (topic=) subscriptions with 400
	refuse        func(conn int) int
	contentType   string // overrides text/event-stream
	publishStatus int    // answer publishes with this status (0: normal)
	unavailable   int    // answer this many publishes 503 before accepting
	publishBody   string
	subsAPI       string // subscriptions API: "link" (draft-08), "jsonld" (draft-07), "" (404)
	subsAPIStatus int    // answer the subscriptions API with this status (0: normal)
}

func newFakeHub(tb testing.TB) *fakeHub {
	tb.Helper()
	h := &fakeHub{tb: tb, retry: -1, subs: map[chan fakeUpdate]struct{}{}}
	h.start("127.0.0.1:0")
	tb.Cleanup(h.stop)
	return h
}

// url returns the hub URL.
func (h *fakeHub) url() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return "http://" + h.addr + HubPath
}

// newBubbleFakeHub is newFakeHub for a testing/synctest bubble (call it
// inside synctest.Test): it serves on an in-memory listener, which the
// returned transport reaches, so that the exchange runs on the bubble's
// clock. It cannot be restarted.
func newBubbleFakeHub(tb testing.TB) (*fakeHub, *http.Transport) {
	tb.Helper()
	h := &fakeHub{tb: tb, retry: -1, subs: map[chan fakeUpdate]struct{}{}}
	ln := memnet.Listen("hub.test:80")
	tr := ln.Transport()
	h.serve(ln)
	tb.Cleanup(func() {
		h.stop()
		tr.CloseIdleConnections()
	})
	return h, tr
}

func (h *fakeHub) start(addr string) {
	h.tb.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may take a moment to be free again
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		h.tb.Fatalf("listen: %v", err)
	}
	h.serve(ln)
}

// serve starts a server generation on ln.
func (h *fakeHub) serve(ln net.Listener) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	h.mu.Lock()
	h.addr, h.srv, h.done = ln.Addr().String(), srv, make(chan struct{})
	h.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// stop closes the listener and every connection.
func (h *fakeHub) stop() {
	h.mu.Lock()
	srv, done := h.srv, h.done
	h.srv = nil
	h.mu.Unlock()
	if srv == nil {
		return
	}
	close(done)
	_ = srv.Close()
}

// publish stores an update and hands it to the connected subscribers.
func (h *fakeHub) publish(u fakeUpdate) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	if u.id == "" {
		u.id = fmt.Sprintf("urn:fake:%d", h.nextID)
	}
	h.history = append(h.history, u)
	for ch := range h.subs {
		ch <- u
	}
	return u.id
}

func (h *fakeHub) requests() []reqRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.reqs)
}

func (h *fakeHub) subscribeRequests() []reqRecord {
	var out []reqRecord
	for _, r := range h.requests() {
		if r.method == http.MethodGet && r.url.Path == HubPath {
			out = append(out, r)
		}
	}
	return out
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := reqRecord{method: r.Method, url: r.URL, header: r.Header.Clone()}
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rec.form = r.PostForm
	}
	h.mu.Lock()
	h.reqs = append(h.reqs, rec)
	h.mu.Unlock()

	switch {
	case r.URL.Path == MetadataPathPrefix+HubPath && r.Method == http.MethodGet:
		h.serveMetadata(w)
	case r.URL.Path == HubPath && r.Method == http.MethodPost:
		h.servePublish(w, rec.form)
	case r.URL.Path == HubPath && r.Method == http.MethodGet:
		h.serveSubscribe(w, r)
	case r.URL.Path == HubPath+SubscriptionsPath && r.Method == http.MethodGet:
		h.serveSubscriptions(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (h *fakeHub) serveMetadata(w http.ResponseWriter) {
	h.mu.Lock()
	on, body := h.metadata, h.metadataBody
	h.mu.Unlock()
	if !on {
		http.NotFound(w, nil)
		return
	}
	if body == "" {
		b, _ := json.Marshal(map[string]any{
			"resource":                              "https://hub.example/.well-known/mercure",
			"authorization_details_types_supported": []string{"https://mercure.rocks/authorization-detail"},
			"bearer_methods_supported":              []string{"header"},
			"mercure_cookie":                        "__Secure-mercure_access_token",
			"mercure_subscriptions":                 true,
			"authorization_servers":                 42, // wrong type: must be tolerated
		})
		body = string(b)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(body))
}

func (h *fakeHub) serveSubscriptions(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	mode, status := h.subsAPI, h.subsAPIStatus
	cursor := Earliest
	if len(h.history) > 0 {
		cursor = h.history[len(h.history)-1].id
	}
	h.mu.Unlock()
	switch {
	case status != 0:
		http.Error(w, "no", status)
	case mode == "link":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("Link", `<https://other.example>; rel="self"`)
		w.Header().Add("Link", fmt.Sprintf(`</.well-known/mercure>; rel="mercure"; last-event-id="%s"; type="mercure"; content-type="application/json"`, cursor))
		_, _ = fmt.Fprintf(w, `{"id": %q, "type": "subscriptions", "subscriptions": []}`, r.URL.Path)
	case mode == "jsonld":
		w.Header().Set("Content-Type", "application/ld+json")
		_, _ = fmt.Fprintf(w, `{"@context": "https://mercure.rocks/", "id": %q, "type": "Subscriptions", "lastEventID": %q, "subscriptions": []}`, r.URL.Path, cursor)
	default:
		http.NotFound(w, r)
	}
}

func (h *fakeHub) servePublish(w http.ResponseWriter, form url.Values) {
	h.mu.Lock()
	status, body := h.publishStatus, h.publishBody
	if h.unavailable > 0 {
		h.unavailable--
		status, body = http.StatusServiceUnavailable, "history store unavailable, try again"
	}
	h.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
		return
	}
	if len(form["topic"]) == 0 {
		http.Error(w, `Missing "topic" parameter`, http.StatusBadRequest)
		return
	}
	id := h.publish(fakeUpdate{id: form.Get("id"), topics: form["topic"], data: form.Get("data"), typ: form.Get("type")})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintf(w, "%s\n", id)
}

// matches reports whether u matches one of the selectors ("*" or exact).
func matches(sels []string, u fakeUpdate) bool {
	for _, s := range sels {
		if s == "*" || slices.Contains(u.topics, s) {
			return true
		}
	}
	return false
}

func (h *fakeHub) serveSubscribe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	gen08 := q.Has("match") || q.Has("match_urlpattern")
	sels := q["topic"]
	if gen08 {
		sels = append(slices.Clone(q["match"]), q["match_urlpattern"]...)
	}
	if len(sels) == 0 {
		http.Error(w, "missing topic", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	only08 := h.draft08Only
	h.mu.Unlock()
	if only08 && !gen08 {
		http.Error(w, `"topic" is a draft-07 parameter: use "match"`, http.StatusBadRequest)
		return
	}
	cursor, hasCursor := q.Get("lastEventID"), q.Has("lastEventID")
	if gen08 {
		cursor, hasCursor = q.Get("last_event_id"), q.Has("last_event_id")
	}
	if v := r.Header.Values("Last-Event-ID"); len(v) > 0 {
		cursor, hasCursor = v[0], true
	}

	h.mu.Lock()
	conn := h.connects
	h.connects++
	if h.refuse != nil {
		if st := h.refuse(conn); st != 0 {
			h.mu.Unlock()
			http.Error(w, "refused", st)
			return
		}
	}
	var replay []fakeUpdate
	respCursor := ""
	if hasCursor && cursor == "" && h.noEmptyCursor {
		hasCursor = false
	}
	if hasCursor {
		respCursor = Earliest
		switch i := slices.IndexFunc(h.history, func(u fakeUpdate) bool { return u.id == cursor }); {
		case cursor == "":
			// An empty cursor asks for the hub's position: its newest
			// update, with nothing replayed.
			if len(h.history) > 0 {
				respCursor = h.history[len(h.history)-1].id
			}
		case cursor == Earliest:
			replay = slices.Clone(h.history)
		case i >= 0:
			respCursor = cursor
			replay = slices.Clone(h.history[i+1:])
		case h.unknownCursor != "":
			respCursor = h.unknownCursor
		}
	}
	ch := make(chan fakeUpdate, 1024)
	h.subs[ch] = struct{}{}
	done := h.done
	replays := hasCursor && cursor != ""
	retry, marker, markerHeader, dropAfter, abortDrop, silent, ctype :=
		h.retry, h.marker && replays, h.markerHeader && replays, h.dropAfter, h.abortDrop, h.silent, h.contentType
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}()

	if ctype == "" {
		ctype = "text/event-stream"
	}
	w.Header().Set("Content-Type", ctype)
	if hasCursor {
		if gen08 {
			w.Header().Set("Mercure-Last-Event-ID", respCursor)
		} else {
			w.Header().Set("Last-Event-ID", respCursor)
		}
	}
	if markerHeader {
		w.Header().Set(sse.ReplayMarkerHeader, "1")
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var buf []byte
	if !silent {
		buf = sse.AppendComment(buf, "")
	}
	if retry >= 0 {
		buf = fmt.Appendf(buf, "retry: %d\n\n", retry)
	}
	sent := 0
	write := func(u fakeUpdate) bool {
		if !matches(sels, u) {
			return true
		}
		buf = sse.AppendEvent(buf, sse.Event{ID: u.id, Type: u.typ, Data: u.data})
		sent++
		return dropAfter == 0 || sent < dropAfter
	}
	flush := func() bool {
		_, err := w.Write(buf)
		buf = buf[:0]
		return err == nil && rc.Flush() == nil
	}
	drop := func() {
		flush()
		if abortDrop {
			panic(http.ErrAbortHandler)
		}
	}
	for _, u := range replay {
		if !write(u) {
			drop()
			return
		}
	}
	if marker {
		buf = sse.AppendComment(buf, sse.ReplayDoneComment)
	}
	if !flush() {
		return
	}
	for {
		select {
		case u := <-ch:
			if !write(u) {
				drop()
				return
			}
			if !flush() {
				return
			}
		case <-r.Context().Done():
			return
		case <-done:
			return
		}
	}
}

// hasQuery reports whether a request's query has name=value.
func hasQuery(r reqRecord, name, value string) bool {
	return slices.Contains(r.url.Query()[name], value)
}

// selectorKeys returns the sorted selector parameter names of a request.
func selectorKeys(r reqRecord) []string {
	var keys []string
	for k := range r.url.Query() {
		if k == "topic" || strings.HasPrefix(k, "match") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
