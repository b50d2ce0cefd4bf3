package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mercurectl/mercurectl/internal/match"
)

// maxIDSize bounds the publish response (the update id) read.
const maxIDSize = 64 << 10

// PublishRequest is an update to publish (docs/protocol.md#publish-fields).
type PublishRequest struct {
	// Topics holds the canonical topic first, then alternates. Required.
	Topics []string
	// Data is the update's content, sent as is.
	Data string
	// Private sends `private=on` (docs/protocol.md#private-updates).
	Private bool
	// ID asks for this update id ("" lets the hub generate one).
	ID string
	// Type is the SSE event type ("" for none).
	Type string
	// Retry, when set, is the SSE reconnection time in milliseconds (the
	// `retry` field of the event subscribers receive).
	Retry *uint64
	// Attempts is how many times the update is sent while the hub answers
	// 503 Service Unavailable ("try again": its history store is briefly
	// unreachable); 0 and 1 mean once. Between attempts Publish waits the
	// hub's Retry-After (at most maxPublishWait), else a backoff that starts
	// at RetryDelay (0: DefaultPublishRetryDelay) and doubles.
	Attempts int
	// RetryDelay is the first backoff between attempts (see Attempts).
	RetryDelay time.Duration
}

// DefaultPublishRetryDelay is the first wait before publishing again after
// a 503: long enough for a store reconnection, short enough for a script.
const DefaultPublishRetryDelay = 250 * time.Millisecond

// maxPublishWait caps the wait before another attempt, whatever the hub's
// Retry-After says.
const maxPublishWait = 5 * time.Second

// Publish posts an update and returns the id the hub assigned (the response
// body, with surrounding white space trimmed;
// docs/protocol.md#publish-reply). Any 2xx status is success, as draft-07
// allows. A 401 or 403 is an *HTTPError matching ErrRefused; other statuses
// are *HTTPError too. A 503 is sent again up to r.Attempts times in all.
//
// The token is Options.Token, or one from Options.TokenFunc for exactly the
// topics of the request (detecting the protocol first, to get its format).
func (c *Client) Publish(ctx context.Context, r PublishRequest) (string, error) {
	if len(r.Topics) == 0 {
		return "", fmt.Errorf("%w: at least one topic is required", ErrInvalidRequest)
	}
	form := url.Values{}
	for _, t := range r.Topics {
		if t == "" {
			return "", fmt.Errorf("%w: empty topic", ErrInvalidRequest)
		}
		form.Add("topic", t)
	}
	form.Set("data", r.Data)
	if r.Private {
		form.Set("private", "on")
	}
	if r.ID != "" {
		form.Set("id", r.ID)
	}
	if r.Type != "" {
		form.Set("type", r.Type)
	}
	if r.Retry != nil {
		form.Set("retry", strconv.FormatUint(*r.Retry, 10))
	}

	tok := c.opts.Token
	if tok == "" && c.opts.TokenFunc != nil {
		proto, err := c.generation(ctx)
		if err != nil {
			return "", err
		}
		mt := MatchAuto
		if proto == Protocol08 {
			mt = match.TypeExact
		}
		if tok, err = c.bearer(ctx, proto, ActionPublish, Selectors(mt, r.Topics...)); err != nil {
			return "", err
		}
	}

	body := form.Encode()
	delay := r.RetryDelay
	if delay <= 0 {
		delay = DefaultPublishRetryDelay
	}
	for attempt := 1; ; attempt++ {
		id, retryAfter, err := c.publishOnce(ctx, body, tok)
		he, ok := errors.AsType[*HTTPError](err)
		if !ok || he.StatusCode != http.StatusServiceUnavailable || attempt >= r.Attempts {
			return id, err
		}
		wait := delay
		if retryAfter > 0 {
			wait = min(retryAfter, maxPublishWait)
		}
		c.logger.InfoContext(ctx, "hub unavailable; publishing again", "error", err.Error(), "delay", wait, "attempt", attempt+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, maxPublishWait)
	}
}

// publishOnce sends one publish request. retryAfter is the hub's
// Retry-After, in seconds, on a 503 (0 when absent).
func (c *Client) publishOnce(ctx context.Context, body, tok string) (id string, retryAfter time.Duration, err error) {
	req, err := c.newRequest(ctx, http.MethodPost, c.hub.String(), strings.NewReader(body), tok)
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.do(ctx, req)
	if err != nil {
		return "", 0, err
	}
	if resp.Request != nil && resp.Request.Method != http.MethodPost {
		// A 301/302/303 redirect turned the POST into a GET: nothing was
		// published, and the answer may be an endless event stream.
		_ = resp.Body.Close() // not drained: see discard
		return "", 0, fmt.Errorf("publish: the hub redirected the request to %s %s, so nothing was published; use that URL as the hub URL",
			resp.Request.Method, resp.Request.URL.Redacted())
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if secs, err := strconv.ParseUint(resp.Header.Get("Retry-After"), 10, 32); err == nil {
			retryAfter = time.Duration(secs) * time.Second
		}
		return "", retryAfter, httpError("publish", resp)
	}
	defer func() { _ = resp.Body.Close() }() // not drained: see discard
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxIDSize))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return "", 0, ctxErr
		}
		// The update may well have been published: say so.
		return "", 0, fmt.Errorf("publish: read the update id (the update was probably published): %w", err)
	}
	id = strings.TrimSpace(string(b))
	c.logger.DebugContext(ctx, "published", "id", id)
	return id, 0, nil
}
