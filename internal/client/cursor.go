package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mercurectl/mercurectl/internal/match"
)

// cursorProbeTimeout bounds the request for the hub's current cursor, which
// is only an optimisation of Replay.
const cursorProbeTimeout = 5 * time.Second

// SubscriptionsPath is the path of the subscriptions API under the hub path
// (docs/protocol.md#subscriptions-api).
const SubscriptionsPath = "/subscriptions"

// HubCursor asks the hub's subscriptions API
// (docs/protocol.md#subscriptions-api-cursor and
// #subscriptions-api-documents) for its current cursor: the id of the newest
// update it holds, or Earliest when it holds none. ok is false when the hub
// does not expose it (the feature is off, the token does not grant it, or the
// answer has no cursor); only the end of ctx is an error.
//
// The cursor is read from the `last-event-id` parameter of the `Link`
// header with rel="mercure" (draft-08), else from the `lastEventID` member
// of the JSON-LD body (draft-07).
func (c *Client) HubCursor(ctx context.Context) (cursor string, ok bool, err error) {
	proto, err := c.generation(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return "", false, ctx.Err()
		}
		return "", false, nil
	}
	u := *c.hub
	u.Path = strings.TrimSuffix(c.hub.Path, "/") + SubscriptionsPath
	u.RawPath, u.RawQuery = "", ""
	// The API authorises the request's path, taken as a topic.
	sel := Selector{Value: u.Path}
	if proto == Protocol08 {
		sel.MatchType = match.TypeExact
	}
	tok, err := c.bearer(ctx, proto, ActionSubscribe, []Selector{sel})
	if err != nil {
		if ctx.Err() != nil {
			return "", false, ctx.Err()
		}
		c.logger.DebugContext(ctx, "no token for the subscriptions API", "error", err)
		return "", false, nil
	}
	req, err := c.newRequest(ctx, http.MethodGet, u.String(), nil, tok)
	if err != nil {
		return "", false, nil
	}
	req.Header.Set("Accept", "application/json, application/ld+json")
	resp, err := c.do(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return "", false, ctx.Err()
		}
		return "", false, nil
	}
	defer func() { _ = resp.Body.Close() }() // not drained: see discard
	if resp.StatusCode != http.StatusOK {
		c.logger.DebugContext(ctx, "subscriptions API not available", "status", resp.StatusCode)
		return "", false, nil
	}
	if cur, ok := linkCursor(resp.Header.Values("Link")); ok {
		return cur, true, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataSize))
	if err != nil {
		return "", false, ctx.Err()
	}
	var doc struct {
		LastEventID *string `json:"lastEventID"`
	}
	if json.Unmarshal(body, &doc) != nil || doc.LastEventID == nil || *doc.LastEventID == "" {
		return "", false, nil
	}
	return *doc.LastEventID, true, nil
}

// linkCursor finds the last-event-id parameter of a rel="mercure" link in
// Link header values (RFC 8288).
func linkCursor(values []string) (string, bool) {
	for _, v := range values {
		for _, link := range splitOutsideQuotes(v, ',') {
			params := splitOutsideQuotes(link, ';')
			if len(params) < 2 || !strings.HasPrefix(strings.TrimSpace(params[0]), "<") {
				continue
			}
			var rel, cursor string
			hasCursor := false
			for _, p := range params[1:] {
				name, value, _ := strings.Cut(p, "=")
				name = strings.ToLower(strings.TrimSpace(name))
				value = unquote(strings.TrimSpace(value))
				switch name {
				case "rel":
					rel = value
				case "last-event-id":
					cursor, hasCursor = value, true
				}
			}
			if hasCursor && cursor != "" && containsField(rel, "mercure") {
				return cursor, true
			}
		}
	}
	return "", false
}

// containsField reports whether the space-separated list s contains f
// (case-insensitively, as relation types are).
func containsField(s, f string) bool {
	for _, x := range strings.Fields(s) {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}

// splitOutsideQuotes splits s on sep where sep is not inside a quoted string.
func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	quoted, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case c == '\\' && quoted:
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquote removes the quotes and backslash escapes of a quoted string.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
