package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/match"
	"github.com/mercurectl/mercurectl/internal/sse"
	"github.com/mercurectl/mercurectl/internal/token"
)

// maxPublishTopics caps the topics of one update
// (docs/protocol.md#publish-limits: the reference hub answers 400, not 413,
// above 1000).
const maxPublishTopics = 1000

// maxTopicLength caps one topic (docs/protocol.md#publish-limits: field
// lengths SHOULD be capped, 413 when exceeded). Matching costs grow with
// topic length, so an uncapped topic would let one publisher slow down every
// pattern subscriber.
const maxTopicLength = MaxTopicLength

// servePublish handles POST on the hub path (docs/protocol.md#publication).
func (h *Hub) servePublish(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	g := genUnknown
	id, err := h.publish(w, r, &g)
	if err != nil {
		h.metrics.publishErrors.Inc()
		h.writeError(w, r, g, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, id)
	h.metrics.publishLatency.Observe(time.Since(start).Seconds())
}

func (h *Hub) publish(w http.ResponseWriter, r *http.Request, g *generation) (string, error) {
	select {
	case <-h.done:
		return "", errShuttingDown
	default:
	}
	// Authorization first: without a token the answer is 401, not 400
	// (docs/protocol.md#publish-fields).
	p, err := extractToken(r, h.tokenGen(genUnknown))
	if err != nil {
		return "", err
	}
	if p.raw == "" {
		return "", errNoToken
	}
	if h.cfg.PublisherVerifier == nil {
		return "", errNoPublisherKey
	}
	claims, err := h.verify(r, h.cfg.PublisherVerifier, p)
	if err != nil {
		return "", err
	}
	*g = genOf(claims)
	if p.cookie {
		if err := h.checkCSRF(r); err != nil {
			return "", err
		}
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodySize))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return "", &httpError{status: http.StatusRequestEntityTooLarge, msg: "request body too large"}
		}
		return "", errBadRequest("cannot read the request body")
	}
	f := form(parseForm(string(body), nil))
	u, err := h.updateFromForm(r, f, *g)
	if err != nil {
		return "", err
	}

	base := h.hubURL(r)
	grants := h.compileGrants(claims.Publish, base)
	defer h.selectors.release(grants...)
	for _, t := range u.Topics {
		if !granted(h.cache, grants, t) {
			return "", errForbidden(notGranted(t, claims))
		}
	}

	if err := h.appendUpdate(r.Context(), u); err != nil {
		h.storeFailed("publish", err)
		return "", storeError(err)
	}
	h.metrics.updates.Inc()
	if rec := recordOf(w); rec != nil {
		rec.gen, rec.updateID, rec.topics = *g, u.ID, len(u.Topics)
	}
	if h.log.Enabled(r.Context(), -4) {
		h.log.Debug("update published", "id", u.ID, "topic", u.Topics[0], "private", u.Private)
	}
	return u.ID, nil
}

// notGranted says that topic is outside what the token lets its bearer
// publish, and what the token does grant.
func notGranted(topic string, c *token.Claims) string {
	claim := "the publish claim (mercure.publish)"
	if c.Format == token.FormatAccessToken {
		claim = "the publish authorization details"
	}
	msg := "topic " + topic + " not granted by " + claim
	if len(c.Publish) == 0 {
		return msg + ", which grants nothing"
	}
	const shown = 5
	var grants []string
	for _, g := range c.Publish[:min(len(c.Publish), shown)] {
		if g.Type != "" {
			grants = append(grants, g.Match+" ("+g.Type+")")
		} else {
			grants = append(grants, g.Match)
		}
	}
	msg += "; it grants " + strings.Join(grants, ", ")
	if n := len(c.Publish) - shown; n > 0 {
		msg += " and " + strconv.Itoa(n) + " more"
	}
	return msg
}

func granted(c *match.Cache, grants []*match.Selector, topic string) bool {
	for _, g := range grants {
		if c.Match(g, topic) {
			return true
		}
	}
	return false
}

// updateFromForm validates a publish form; nothing malformed gets past it
// (docs/protocol.md#publication): untrusted input is checked where it
// enters, so that no CR, LF or NUL can reach the SSE encoder or the history.
func (h *Hub) updateFromForm(r *http.Request, f form, g generation) (*history.Update, error) {
	u := &history.Update{Topics: f.all("topic")}
	if len(u.Topics) == 0 {
		return nil, errBadRequest(`Missing "topic" parameter`)
	}
	if len(u.Topics) > maxPublishTopics {
		return nil, errBadRequest(`too many "topic" parameters (at most %d)`, maxPublishTopics)
	}
	base := h.hubURL(r)
	for _, t := range u.Topics {
		if len(t) > maxTopicLength {
			return nil, &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("topic too long (at most %d bytes)", maxTopicLength)}
		}
		if g == gen08 {
			switch {
			case t == "*":
				return nil, errBadRequest(`"*" is not a valid topic`)
			case match.HasControlOrFormat(t):
				return nil, errBadRequest("topic contains a control or format character")
			case reservedTopic08(t, base):
				return nil, errBadRequest("topics under the hub path are reserved")
			}
		} else if reservedTopic07(t) || reservedTopic08(t, base) {
			// The draft-07 rule (a substring) and the draft-08 one (the
			// resolved path), so that no spelling reaches the namespace
			// that draft-08 subscribers see as the hub's own.
			return nil, &httpError{status: http.StatusForbidden, msg: "topics under /.well-known/mercure are reserved"}
		}
		// Grants and exact matchers read the topic as it is, URL patterns
		// read it as a URL parser does: the two must be the same string
		// (docs/protocol.md#publish-topics).
		if c := match.CanonicalTopic(t, base.EscapedPath()); c != t {
			return nil, errBadRequest("topic %q is not in canonical form (URL parsers remove its dot segments and read \\ as /): publish %q instead", t, c)
		}
	}
	u.Data, _ = f.first("data")
	if g == gen08 && !utf8.ValidString(u.Data) {
		return nil, errBadRequest(`"data" must be valid UTF-8`)
	}
	_, u.Private = f.first("private")

	if id, ok := f.first("id"); ok && id != "" {
		switch {
		case len(id) > MaxIDLength:
			return nil, &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf(`"id" too long (at most %d bytes)`, MaxIDLength)}
		case strings.HasPrefix(id, "#"):
			return nil, errBadRequest(`"id" must not start with "#"`)
		case id == "earliest":
			return nil, errBadRequest(`"earliest" is reserved and cannot be an id`)
		// An id must survive a UTF-8 round trip: clients send it back as
		// Last-Event-ID, and a mangled one would look unknown.
		case !sse.ValidField(id), !utf8.ValidString(id), g == gen08 && match.HasControlOrFormat(id):
			return nil, errBadRequest(`"id" contains a forbidden character`)
		}
		u.ID = id
	} else {
		u.ID = newUpdateID()
	}

	if typ, ok := f.first("type"); ok && typ != "" {
		switch {
		case len(typ) > MaxTypeLength:
			return nil, &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf(`"type" too long (at most %d bytes)`, MaxTypeLength)}
		case !sse.ValidField(typ), !utf8.ValidString(typ), g == gen08 && match.HasControlOrFormat(typ):
			return nil, errBadRequest(`"type" contains a forbidden character`)
		case g == gen08 && typ == "mercure":
			return nil, errBadRequest(`"type" "mercure" is reserved`)
		}
		u.Type = typ
	}

	if rs, ok := f.first("retry"); ok && rs != "" {
		n, err := parseDigits(rs)
		if err != nil {
			return nil, errBadRequest(`Invalid "retry" parameter`)
		}
		u.Retry, u.HasRetry = n, true
	}
	return u, nil
}

// parseDigits accepts ASCII digits only (no sign, no spaces).
func parseDigits(s string) (uint64, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// newUpdateID generates an update id: urn:uuid: + a time-ordered UUIDv7
// (docs/protocol.md#publish-id).
func newUpdateID() string {
	u, err := uuid.NewV7()
	if err != nil {
		u = uuid.New()
	}
	return u.URN()
}

// newSubscriberID identifies a connection: urn:uuid: + a random UUIDv4
// (docs/protocol.md#subscription-topics).
func newSubscriberID() string { return uuid.New().URN() }

// storeFailed logs a failed append at most once per interval, with the
// number of failures not logged since: a full disk or a Redis that is down
// fails every publish, and the operator needs to hear of it once.
func (h *Hub) storeFailed(what string, err error) {
	if errors.Is(err, history.ErrClosed) || errors.Is(err, context.Canceled) {
		return // the hub is stopping, or the publisher left
	}
	if ok, n := h.storeLog.Allow(); ok {
		h.log.Error("the history store refused an update: publishes get 503 until it recovers",
			"while", what, "error", err, "failures_not_logged", n)
	}
}
