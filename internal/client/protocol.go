package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// MetadataPathPrefix is inserted between a hub's host and path to find its
// RFC 9728 protected-resource metadata (docs/protocol.md#metadata).
const MetadataPathPrefix = "/.well-known/oauth-protected-resource"

// metadataTimeout bounds the metadata request.
const metadataTimeout = 10 * time.Second

// maxMetadataSize bounds the metadata document read.
const maxMetadataSize = 1 << 20

// Metadata is a hub's RFC 9728 protected-resource metadata (draft-08).
// Fields of an unexpected JSON type are left empty rather than failing.
type Metadata struct {
	// Resource is the hub's resource identifier: the audience draft-08
	// access tokens must carry. Always set.
	Resource string `json:"resource"`
	// AuthorizationServers lists the issuers the hub trusts, if published.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	// AuthorizationDetailsTypesSupported normally holds token.DetailType.
	AuthorizationDetailsTypesSupported []string `json:"authorization_details_types_supported,omitempty"`
	// BearerMethodsSupported is how tokens may be sent (normally ["header"]).
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
	// MercureCookie is the name of the authorization cookie.
	MercureCookie string `json:"mercure_cookie,omitempty"`
	// MercureMatcherTypesSupported lists the match types the hub accepts.
	MercureMatcherTypesSupported []string `json:"mercure_matcher_types_supported,omitempty"`
	// MercureSubscriptions reports whether the subscriptions feature is on.
	MercureSubscriptions bool `json:"mercure_subscriptions,omitempty"`
}

// MetadataURL returns where the hub's RFC 9728 metadata is served: the
// well-known prefix inserted before the hub's path.
func (c *Client) MetadataURL() string {
	u := *c.hub
	u.Path = MetadataPathPrefix + c.hub.Path
	u.RawPath = ""
	if c.hub.RawPath != "" {
		u.RawPath = MetadataPathPrefix + c.hub.RawPath
	}
	return u.String()
}

// Protocol returns the protocol generation to speak with the hub and the
// hub's metadata (nil when it serves none, or when draft-07 was forced).
// With ProtocolAuto the hub is asked once, and the answer cached: a 200 JSON
// document with a "resource" means draft-08, anything else (404, another
// status, not JSON) draft-07 (docs/protocol.md#metadata). Only an unreachable hub
// or the end of ctx is an error.
func (c *Client) Protocol(ctx context.Context) (Protocol, *Metadata, error) {
	c.mu.Lock()
	if c.detected && (c.proto == Protocol07 || c.mdDone) {
		p, md := c.proto, c.md
		c.mu.Unlock()
		return p, md, nil
	}
	c.mu.Unlock()
	md, err := c.Metadata(ctx)
	if err != nil {
		return 0, nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.detected {
		c.proto = Protocol07
		if md != nil {
			c.proto = Protocol08
		}
		c.detected = true
		c.logger.DebugContext(ctx, "detected protocol", "protocol", c.proto.String())
	}
	return c.proto, md, nil
}

// generation returns the protocol generation, asking the hub only when
// it must be detected (a forced generation needs no request).
func (c *Client) generation(ctx context.Context) (Protocol, error) {
	c.mu.Lock()
	p, ok := c.proto, c.detected
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, _, err := c.Protocol(ctx)
	return p, err
}

// Metadata fetches the hub's RFC 9728 metadata once and caches it. It
// returns nil (and no error) when the hub serves none.
func (c *Client) Metadata(ctx context.Context) (*Metadata, error) {
	c.mu.Lock()
	if c.mdDone {
		md := c.md
		c.mu.Unlock()
		return md, nil
	}
	c.mu.Unlock()

	md, err := c.fetchMetadata(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.mdDone {
		c.md, c.mdDone = md, true
	}
	return c.md, nil
}

func (c *Client) fetchMetadata(ctx context.Context) (*Metadata, error) {
	// The metadata is a small document: a server that streams or stalls at
	// that address must not hang protocol detection.
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	req, err := c.newRequest(ctx, http.MethodGet, c.MetadataURL(), nil, "")
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }() // not drained: see discard
	if resp.StatusCode != http.StatusOK || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		c.logger.DebugContext(ctx, "no protocol metadata", "status", resp.StatusCode)
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataSize))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("%w: %s: reading its protocol metadata: %w", ErrUnreachable, c.hub.Redacted(), err)
	}
	md := parseMetadata(body)
	if md == nil {
		c.logger.DebugContext(ctx, "metadata without a resource: treating the hub as draft-07")
	}
	return md, nil
}

// parseMetadata decodes a metadata document tolerantly: nil unless it is a
// JSON object with a non-empty string "resource"; other fields are taken
// when they have the expected type.
func parseMetadata(body []byte) *Metadata {
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil {
		return nil
	}
	md := &Metadata{}
	if json.Unmarshal(raw["resource"], &md.Resource) != nil || md.Resource == "" {
		return nil
	}
	if _, err := url.Parse(md.Resource); err != nil {
		return nil
	}
	field(raw, "authorization_servers", &md.AuthorizationServers)
	field(raw, "authorization_details_types_supported", &md.AuthorizationDetailsTypesSupported)
	field(raw, "bearer_methods_supported", &md.BearerMethodsSupported)
	field(raw, "mercure_cookie", &md.MercureCookie)
	field(raw, "mercure_matcher_types_supported", &md.MercureMatcherTypesSupported)
	field(raw, "mercure_subscriptions", &md.MercureSubscriptions)
	return md
}

// field sets *dst from raw[name] when that decodes as a T, and leaves it
// alone otherwise.
func field[T any](raw map[string]json.RawMessage, name string, dst *T) {
	var v T
	if json.Unmarshal(raw[name], &v) == nil {
		*dst = v
	}
}
