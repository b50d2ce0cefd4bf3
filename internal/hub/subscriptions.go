package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/match"
	"github.com/mercurectl/mercurectl/internal/token"
)

// Subscription events and the subscriptions API
// (docs/protocol.md#active-subscriptions).
//
// Identity. Every selector of a connection is one subscription. Its topic,
// which is also its id in the API, is relative to the hub's origin, as the
// reference hub's is:
//
//	draft-07: /.well-known/mercure/subscriptions/{topic}/{subscriber}
//	draft-08: /.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}
//
// so that a draft-07 grant such as the URI template
// `/.well-known/mercure/subscriptions{/topic}{/subscriber}` matches it
// literally, and a draft-08 URL pattern such as
// `/.well-known/mercure/subscriptions/*` matches it once both resolve
// against the hub URL (docs/protocol.md#matching-08).
//
// Generations. A subscription is described in the generation of the request
// that created it: its events, and the API of that generation, which lists
// only the subscriptions of its own generation. The two identities do not
// translate into each other (a draft-07 URI template has no draft-08 match
// type), and keeping them apart means that every id the API returns is the
// topic of that subscription's events.
const (
	// subscriptionsPath prefixes every subscription topic and API URL.
	subscriptionsPath = Path + "/subscriptions"
	// eventTypeMercure is the SSE type of draft-08 subscription events, which
	// publishers may not use (docs/protocol.md#publish-type and
	// #subscription-events).
	eventTypeMercure = "mercure"
	// jsonLDContext is the `@context` of draft-07 documents.
	jsonLDContext = "https://mercure.rocks/"
	// announceTimeout bounds the storing of the events of one creation or
	// termination, so that a store that is down cannot hold a connection's
	// handler for long. The request's own context cannot be used: it is
	// cancelled when the client leaves, which is exactly when the
	// `active: false` events are due.
	announceTimeout = 5 * time.Second
)

// subscription is one selector of a connection, as its events and the API
// describe it. It is computed before the subscriber is registered and is
// read-only afterwards.
type subscription struct {
	topic     string          // the topic of its events and its API id
	matchType string          // draft-08 only: "exact" or "urlpattern"
	match     string          // the selector as the client sent it
	payload   json.RawMessage // nil when the token carries none for it
}

// escapeVar percent-encodes one topic variable exactly once, as the reference
// hub does: query escaping with spaces as %20
// (docs/protocol.md#subscription-topics).
func escapeVar(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// describeSubscriptions returns the subscriptions of s, one per distinct
// selector, in request order. base is the hub URL that s's selectors were
// compiled against; draft-08 payloads are chosen relative to it.
func (h *Hub) describeSubscriptions(s *subscriber, base *url.URL) []subscription {
	out := make([]subscription, 0, len(s.selectors))
	var details [][]*match.Selector // draft-08 subscribe details, compiled once
	if s.gen == gen08 && s.claims != nil {
		details = make([][]*match.Selector, len(s.claims.SubscribeDetails))
		for i, d := range s.claims.SubscribeDetails {
			details[i] = h.compileGrants(d.Topics, base)
			defer h.selectors.release(details[i]...)
		}
	}
	for _, sel := range s.selectors {
		sub := subscription{match: sel.String()}
		if s.gen == gen08 {
			sub.matchType = sel.MatchType()
			sub.topic = subscriptionsPath + "/" + escapeVar(sub.matchType) + "/" + escapeVar(sub.match) + "/" + escapeVar(s.id)
		} else {
			sub.topic = subscriptionsPath + "/" + escapeVar(sub.match) + "/" + escapeVar(s.id)
		}
		if slices.ContainsFunc(out, func(o subscription) bool { return o.topic == sub.topic }) {
			continue // a repeated selector is the same subscription
		}
		if s.claims != nil {
			if s.gen == gen08 {
				sub.payload = detailPayload(s.claims.SubscribeDetails, details, sub.match)
			} else {
				sub.payload = s.claims.Payload
			}
		}
		out = append(out, sub)
	}
	return out
}

// detailPayload returns the payload of the first subscribe detail with a
// topic selector that matches the subscription's own matcher string, taken as
// a topic; a "*" grant matches every matcher
// (docs/protocol.md#subscription-payload).
func detailPayload(details []token.Detail, compiled [][]*match.Selector, matcher string) json.RawMessage {
	for i, sels := range compiled {
		for _, g := range sels {
			if g.Match(matcher) {
				return details[i].Payload
			}
		}
	}
	return nil
}

// subscriptionDoc08 is a draft-08 subscription document
// (docs/protocol.md#subscription-events).
type subscriptionDoc08 struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	MatchType  string          `json:"match_type"`
	Match      string          `json:"match"`
	Subscriber string          `json:"subscriber"`
	Active     bool            `json:"active"`
	Payload    json.RawMessage `json:"payload,omitempty"`
}

// subscriptionDoc07 is a draft-07 JSON-LD subscription document; @context
// and lastEventID are left out of the members of a collection.
type subscriptionDoc07 struct {
	Context     string          `json:"@context,omitempty"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Topic       string          `json:"topic"`
	Subscriber  string          `json:"subscriber"`
	Active      bool            `json:"active"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	LastEventID string          `json:"lastEventID,omitempty"`
}

func (sub *subscription) doc08(subscriber string, active bool) subscriptionDoc08 {
	return subscriptionDoc08{
		ID: sub.topic, Type: "subscription", MatchType: sub.matchType, Match: sub.match,
		Subscriber: subscriber, Active: active, Payload: sub.payload,
	}
}

func (sub *subscription) doc07(subscriber string, active bool) subscriptionDoc07 {
	return subscriptionDoc07{
		ID: sub.topic, Type: "Subscription", Topic: sub.match,
		Subscriber: subscriber, Active: active, Payload: sub.payload,
	}
}

// subscribed is called once s is registered: with Config.Subscriptions it
// publishes the `active: true` events, which s itself receives when it
// listens to them (docs/protocol.md#subscription-events).
func (h *Hub) subscribed(s *subscriber) {
	h.metrics.subscribersTotal.Inc()
	h.announce(s, true)
}

// unsubscribed is called once s is removed: with Config.Subscriptions it
// publishes the `active: false` events.
func (h *Hub) unsubscribed(s *subscriber) {
	h.announce(s, false)
}

// announce publishes one private update per subscription of s through the
// store, so that the events are in the history (and, with a shared store,
// cluster-wide). It runs on the subscribe handler's goroutine and holds no
// hub lock: Append calls the broadcaster, which takes its own. Failures are
// logged; the connection is not affected.
func (h *Hub) announce(s *subscriber, active bool) {
	if len(s.subs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), announceTimeout)
	defer cancel()
	for i := range s.subs {
		sub := &s.subs[i]
		// Marked as a subscription event, the update has a retention of
		// its own in the store: however often clients come and go, their
		// events never evict published updates.
		u := &history.Update{ID: newUpdateID(), Topics: []string{sub.topic}, Private: true, SubscriptionEvent: true}
		var doc any
		if s.gen == gen08 {
			doc = sub.doc08(s.id, active)
			u.Type = eventTypeMercure
		} else {
			d := sub.doc07(s.id, active)
			d.Context = jsonLDContext
			doc = d
		}
		// Indented, as the reference hub does: the event spans several
		// data lines (docs/protocol.md#subscription-events).
		data, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			h.log.Error("cannot encode a subscription event", "subscriber", s.id, "error", err)
			continue
		}
		u.Data = string(data)
		if err = h.appendUpdate(ctx, u); err != nil {
			h.storeFailed("subscription event", err)
			h.log.Debug("cannot publish a subscription event",
				"subscriber", s.id, "topic", sub.topic, "active", active, "error", err)
		}
	}
}

// apiEntry is one subscription found by the API.
type apiEntry struct {
	s   *subscriber
	sub *subscription
}

// serveSubscriptionsAPI serves the subscriptions API
// (docs/protocol.md#subscriptions-api) when Config.Subscriptions is on.
func (h *Hub) serveSubscriptionsAPI(w http.ResponseWriter, r *http.Request) {
	escaped := r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(escaped, subscriptionsPath)
	if !h.cfg.Subscriptions || !ok || (rest != "" && rest[0] != '/') {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.writeError(w, r, genUnknown, &httpError{status: http.StatusMethodNotAllowed, msg: "method not allowed"})
		return
	}

	g, err := h.authorizeAPI(r)
	if err != nil {
		h.writeError(w, r, g, err)
		return
	}

	var segs []string
	if rest != "" {
		for _, raw := range strings.Split(rest[1:], "/") {
			seg, err := url.PathUnescape(raw)
			if err != nil {
				h.writeError(w, r, g, errBadRequest("malformed percent-encoding in the path"))
				return
			}
			segs = append(segs, seg)
		}
	}
	// What is asked: wantMatch/wantType filter a collection, wantID asks for
	// one document.
	var wantType, wantMatch, wantID string
	filtered := false
	if g == gen08 {
		if len(segs) > 0 && segs[0] != match.TypeExact && segs[0] != match.TypeURLPattern {
			h.writeError(w, r, g, errBadRequest("unknown match type %q", segs[0]))
			return
		}
		switch len(segs) {
		case 0:
		case 2, 3:
			wantType, wantMatch, filtered = segs[0], segs[1], true
			if len(segs) == 3 {
				wantID = segs[2]
			}
		default:
			http.NotFound(w, r)
			return
		}
	} else {
		switch len(segs) {
		case 0:
		case 1, 2:
			wantMatch, filtered = segs[0], true
			if len(segs) == 2 {
				wantID = segs[1]
			}
		default:
			http.NotFound(w, r)
			return
		}
	}

	// The cursor is read before the registry, so that it never covers the
	// event of a subscription missing from the list: a subscription is
	// registered before its `active: true` event is stored, so if the cursor
	// includes that event the subscription is already registered. A client
	// that subscribes to the events from this cursor therefore misses no
	// change (at worst it sees one it already knows about again).
	cursor, entries := h.snapshot(g, func(s *subscriber, sub *subscription) bool {
		return (!filtered || (sub.match == wantMatch && (g == gen07 || sub.matchType == wantType))) &&
			(wantID == "" || s.id == wantID)
	})
	if wantID != "" && len(entries) == 0 {
		http.NotFound(w, r)
		return
	}

	hd := w.Header()
	hd.Set("Cache-Control", "private, no-cache")
	hd.Add("Vary", "Authorization, Cookie")
	etag := cursor
	if g == gen08 {
		etag = `"` + cursor + `"` // quoted in 1.0, bare in 0.x (docs/protocol.md#subscriptions-api-cursor)
		hd.Set("Link", `<`+Path+`>; rel="mercure"; last-event-id=`+quoteParam(cursor)+`; type="mercure"; content-type="application/json"`)
		hd.Set("Content-Type", "application/json")
	} else {
		hd.Set("Content-Type", "application/ld+json")
	}
	if validETag(cursor) {
		hd.Set("ETag", etag)
		if etagMatches(r.Header.Get("If-None-Match"), cursor) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}

	var doc any
	switch {
	case wantID != "" && g == gen08:
		doc = entries[0].sub.doc08(entries[0].s.id, true)
	case wantID != "":
		d := entries[0].sub.doc07(entries[0].s.id, true)
		d.Context, d.LastEventID = jsonLDContext, cursor
		doc = d
	case g == gen08:
		subs := make([]subscriptionDoc08, 0, len(entries))
		for _, e := range entries {
			subs = append(subs, e.sub.doc08(e.s.id, true))
		}
		doc = struct {
			ID            string              `json:"id"`
			Type          string              `json:"type"`
			Subscriptions []subscriptionDoc08 `json:"subscriptions"`
		}{escaped, "subscriptions", subs}
	default:
		subs := make([]subscriptionDoc07, 0, len(entries))
		for _, e := range entries {
			subs = append(subs, e.sub.doc07(e.s.id, true))
		}
		doc = struct {
			Context       string              `json:"@context"`
			ID            string              `json:"id"`
			Type          string              `json:"type"`
			LastEventID   string              `json:"lastEventID"`
			Subscriptions []subscriptionDoc07 `json:"subscriptions"`
		}{jsonLDContext, escaped, "Subscriptions", cursor, subs}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		h.writeError(w, r, g, err)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
}

// authorizeAPI checks the token of an API request and returns the generation
// to answer in. The token must grant subscribe on the requested URL taken as
// a topic: draft-08 the escaped path alone, draft-07 (as the reference 0.x hub) the whole
// request URI including the query
// (docs/protocol.md#subscriptions-api-authorization).
func (h *Hub) authorizeAPI(r *http.Request) (generation, error) {
	p, err := extractToken(r, h.tokenGen(genUnknown))
	if err != nil {
		return genUnknown, err
	}
	if p.raw == "" {
		return genUnknown, errNoToken
	}
	if h.cfg.SubscriberVerifier == nil {
		return genUnknown, errNoSubscriberKey
	}
	claims, err := h.verify(r, h.cfg.SubscriberVerifier, p)
	if err != nil {
		return genUnknown, err
	}
	g := genOf(claims)
	target := r.URL.EscapedPath()
	if g == gen07 {
		target = r.URL.RequestURI()
	}
	// Matched without the dispatch cache: request paths are unbounded and
	// would only evict useful entries.
	grants := h.compileGrants(claims.Subscribe, h.hubURL(r))
	defer h.selectors.release(grants...)
	for _, sel := range grants {
		if sel.Match(target) {
			return g, nil
		}
	}
	// The path only: a draft-07 query may carry the token itself.
	msg := "the token's subscribe grants do not match " + r.URL.EscapedPath() + ", so it cannot read the subscriptions API there"
	if g == gen07 {
		return g, &httpError{status: http.StatusUnauthorized, msg: msg}
	}
	return g, errForbidden(msg)
}

// snapshot returns the newest dispatched update id ("earliest" when none)
// and the open subscriptions of generation g that keep accepts, ordered by
// subscriber then request order.
func (h *Hub) snapshot(g generation, keep func(*subscriber, *subscription) bool) (string, []apiEntry) {
	var entries []apiEntry
	h.bc.mu.RLock()
	cursor := "earliest"
	if p := h.bc.lastID.Load(); p != nil {
		cursor = *p
	}
	for s := range h.bc.all {
		if s.gen != g {
			continue
		}
		for i := range s.subs {
			if keep(s, &s.subs[i]) {
				entries = append(entries, apiEntry{s, &s.subs[i]})
			}
		}
	}
	h.bc.mu.RUnlock()
	slices.SortStableFunc(entries, func(a, b apiEntry) int { return strings.Compare(a.s.id, b.s.id) })
	return cursor, entries
}

// quoteParam writes s as an HTTP quoted-string.
func quoteParam(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// validETag reports whether s can be an entity tag's opaque part (RFC 9110
// etagc: visible ASCII except '"', or non-ASCII). A cursor that cannot is
// served without an ETag.
func validETag(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c <= 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// etagMatches evaluates If-None-Match against the cursor, accepting the
// quoted (1.0) and bare (0.x) forms, weak tags, lists and "*".
func etagMatches(header, cursor string) bool {
	header = strings.TrimSpace(header)
	if header == "" {
		return false
	}
	if header == "*" || header == cursor {
		return true
	}
	for c := range strings.SplitSeq(header, ",") {
		c = strings.TrimPrefix(strings.TrimSpace(c), "W/")
		if c == `"`+cursor+`"` || c == cursor {
			return true
		}
	}
	return false
}
