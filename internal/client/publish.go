package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

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
	// Retry, when set, is the SSE reconnection time in milliseconds.
	Retry *uint64
}

// Publish posts an update and returns the id the hub assigned (the response
// body, with surrounding white space trimmed;
// docs/protocol.md#publish-reply). Any 2xx status is success, as draft-07
// allows. A 401 or 403 is an *HTTPError matching ErrRefused; other statuses
// are *HTTPError too.
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

	req, err := c.newRequest(ctx, http.MethodPost, c.hub.String(), strings.NewReader(form.Encode()), tok)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.do(ctx, "publish", req)
	if err != nil {
		return "", err
	}
	if resp.Request != nil && resp.Request.Method != http.MethodPost {
		// A 301/302/303 redirect turned the POST into a GET: nothing was
		// published, and the answer may be an endless event stream.
		_ = resp.Body.Close() // not drained: see discard
		return "", fmt.Errorf("publish: the hub redirected the request to %s %s, so nothing was published; use that URL as the hub URL",
			resp.Request.Method, resp.Request.URL.Redacted())
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", httpError("publish", resp)
	}
	defer func() { _ = resp.Body.Close() }() // not drained: see discard
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIDSize))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return "", ctxErr
		}
		// The update may well have been published: say so.
		return "", fmt.Errorf("publish: read the update id (the update was probably published): %w", err)
	}
	id := strings.TrimSpace(string(body))
	c.logger.DebugContext(ctx, "published", "id", id, "topics", len(r.Topics))
	return id, nil
}
