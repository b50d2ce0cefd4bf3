// Package client is a Mercure client for any spec-compliant hub: mercurectl's
// own, and the reference hub in both protocol generations (draft-07, the 0.x
// hubs; draft-08, the hubs from 1.0 on). It publishes updates, subscribes
// with automatic resumption, and replays history until it has caught up.
//
// The client takes an injected *http.Client and a context on every call, and
// never touches process state (environment, standard streams). Errors are
// typed for the CLI's exit codes: ErrUnreachable, ErrRefused (an *HTTPError
// with status 401 or 403), ErrHistoryGap and ErrInvalidRequest.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HubPath is the path of a Mercure hub (docs/protocol.md#hub-path); a hub URL
// given with an empty path gets it.
const HubPath = "/.well-known/mercure"

// Default reconnection delays (see Options).
const (
	// DefaultReconnectDelay is the backoff base when the hub sent no `retry`
	// field: the same order as browsers' defaults, short enough that a
	// restarted hub is rejoined quickly.
	DefaultReconnectDelay = time.Second
	// DefaultMaxReconnectDelay caps the exponential backoff, so that a
	// subscriber notices a recovered hub within half a minute.
	DefaultMaxReconnectDelay = 30 * time.Second
	// minReconnectDelay keeps a hub's `retry: 0` from turning reconnection
	// into a tight loop.
	minReconnectDelay = 10 * time.Millisecond
)

// Actions a token is requested for.
const (
	// ActionPublish asks for a token that may publish to the topics.
	ActionPublish = "publish"
	// ActionSubscribe asks for a token that may subscribe to the selectors.
	ActionSubscribe = "subscribe"
)

// Cursor values and parameter names (docs/protocol.md#subscribe-cursors).
const (
	// Earliest is the reserved cursor that asks for the whole history.
	Earliest = "earliest"

	cursorParam07  = "lastEventID"
	cursorParam08  = "last_event_id"
	cursorHeader07 = "Last-Event-ID"
	cursorHeader08 = "Mercure-Last-Event-ID"
)

// Errors returned by the client. Match them with errors.Is.
var (
	// ErrUnreachable wraps transport failures (connection refused, DNS, TLS,
	// connection reset before a response): the hub could not be reached.
	// The underlying error is wrapped too.
	ErrUnreachable = errors.New("hub unreachable")
	// ErrRefused matches an *HTTPError whose status is 401 or 403 (or a 400
	// about the token, see HTTPError.Unauthorized): the hub refused the
	// credentials (or their absence).
	ErrRefused = errors.New("hub refused the credentials")
	// ErrHistoryGap is returned by Replay when the hub reports that the
	// requested cursor is unknown to it (history truncated or discarded), so
	// updates may have been lost (docs/protocol.md#subscribe-cursors).
	ErrHistoryGap = errors.New("history gap")
	// ErrInvalidRequest wraps errors in what the caller asked for (bad hub
	// URL, no topic, a selector the protocol cannot express): usage errors.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrTemplateSelector is returned (wrapping ErrInvalidRequest) for a URI
	// template selector sent to a draft-08 hub, which has URL patterns instead.
	ErrTemplateSelector = fmt.Errorf("%w: draft-08 hubs do not support URI templates", ErrInvalidRequest)
	// ErrNotEventStream is returned when a subscription's response is not a
	// 200 text/event-stream (the address is probably not a Mercure hub).
	ErrNotEventStream = errors.New("response is not an event stream")
	// ErrStop may be returned by the OnEvent and OnReplayDone callbacks to end
	// Subscribe or Replay without error.
	ErrStop = errors.New("stop")
)

// HTTPError is a hub's answer with an unexpected status.
type HTTPError struct {
	// Op is what was attempted: "publish", "subscribe", "metadata".
	Op string
	// StatusCode is the HTTP status code, Status its text ("401 Unauthorized").
	StatusCode int
	Status     string
	// Body is the start of the response body (at most 1 KiB), trimmed.
	Body string
	// Challenge is the WWW-Authenticate header, if any (draft-08 hubs
	// explain token errors there, docs/protocol.md#error-replies).
	Challenge string
}

// Error implements error. The challenge is told in words (its error code
// and description), never as the raw header.
func (e *HTTPError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": hub answered ")
	if e.Status != "" {
		b.WriteString(e.Status)
	} else {
		b.WriteString(strconv.Itoa(e.StatusCode))
	}
	code, desc := e.challengeError()
	switch {
	case e.Body != "":
		b.WriteString(": ")
		b.WriteString(e.Body)
		if desc != "" && !strings.Contains(e.Body, desc) {
			b.WriteString(" (" + desc + ")")
		}
	case desc != "":
		b.WriteString(": " + desc)
	case code != "":
		b.WriteString(": " + challengeWords(code))
	}
	return b.String()
}

// challengeError returns the error code and description of a Bearer
// challenge (RFC 6750 section 3), "" when absent.
func (e *HTTPError) challengeError() (code, desc string) {
	if e.Challenge == "" {
		return "", ""
	}
	scheme, params, _ := strings.Cut(strings.TrimSpace(e.Challenge), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", ""
	}
	for _, p := range splitOutsideQuotes(params, ',') {
		name, value, _ := strings.Cut(p, "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "error":
			code = unquote(strings.TrimSpace(value))
		case "error_description":
			desc = unquote(strings.TrimSpace(value))
		}
	}
	return code, desc
}

// challengeWords says what an RFC 6750 error code means.
func challengeWords(code string) string {
	switch code {
	case "invalid_token":
		return "the token is invalid"
	case "invalid_request":
		return "the token is malformed or presented twice"
	case "insufficient_scope":
		return "the token does not grant this"
	}
	return code
}

// Unauthorized reports whether the hub refused the credentials: 401, 403,
// or a 400 with a Bearer challenge, which is how draft-08 hubs answer a
// malformed token (docs/protocol.md#error-replies: other 400s carry no
// challenge).
func (e *HTTPError) Unauthorized() bool {
	if e.StatusCode == http.StatusBadRequest {
		code, _ := e.challengeError()
		return code == "invalid_request"
	}
	return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
}

// Is makes errors.Is(err, ErrRefused) true when Unauthorized.
func (e *HTTPError) Is(target error) bool {
	return target == ErrRefused && e.Unauthorized()
}

// Protocol is a generation of the Mercure protocol.
type Protocol int

const (
	// ProtocolAuto detects the generation: draft-08 when the hub serves
	// RFC 9728 metadata, draft-07 otherwise (docs/protocol.md#metadata).
	ProtocolAuto Protocol = iota
	// Protocol07 is draft-dunglas-mercure-07 (0.x hubs).
	Protocol07
	// Protocol08 is draft-08 (hubs from 1.0 on).
	Protocol08
)

// String returns "auto", "draft-07" or "draft-08".
func (p Protocol) String() string {
	switch p {
	case ProtocolAuto:
		return "auto"
	case Protocol07:
		return "draft-07"
	case Protocol08:
		return "draft-08"
	default:
		return "Protocol(" + strconv.Itoa(int(p)) + ")"
	}
}

// ParseProtocol parses "auto" (or ""), "7", "07", "draft-07", "8", "08" or
// "draft-08".
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return ProtocolAuto, nil
	case "7", "07", "draft-07":
		return Protocol07, nil
	case "8", "08", "draft-08":
		return Protocol08, nil
	}
	return 0, fmt.Errorf("%w: unknown protocol %q (want auto, 7 or 8)", ErrInvalidRequest, s)
}

// TokenRequest describes the token a TokenFunc must return.
type TokenRequest struct {
	// Protocol is the generation in use (never ProtocolAuto): a legacy
	// `mercure`-claim token for Protocol07, an RFC 9068 access token for
	// Protocol08.
	Protocol Protocol
	// Metadata is the hub's RFC 9728 metadata (nil when it serves none);
	// its Resource is the audience a draft-08 token should carry.
	Metadata *Metadata
	// Action is ActionPublish or ActionSubscribe.
	Action string
	// Selectors are the topics the request needs, with the match type that
	// will be sent ("" in draft-07; "exact" or "urlpattern" in draft-08).
	Selectors []Selector
}

// Options configures a Client.
type Options struct {
	// HubURL is the hub's URL; one with an empty path (or "/") gets HubPath.
	HubURL string
	// HTTPClient performs every request. Required. Its Timeout, if any,
	// also cuts subscriptions (they then reconnect); prefer contexts.
	HTTPClient *http.Client
	// Token is a ready token sent as `Authorization: Bearer`; "" for none.
	Token string
	// TokenFunc, used when Token is "", mints a token for each request (a
	// fresh one for every connection of a subscription, so that expiry is
	// never a problem). It may be nil: requests are then anonymous.
	TokenFunc func(ctx context.Context, req TokenRequest) (string, error)
	// Protocol forces a generation; ProtocolAuto detects it (once).
	Protocol Protocol
	// Logger receives debug and reconnection logs; nil discards them.
	// Tokens are never logged.
	Logger *slog.Logger
	// UserAgent is sent in the User-Agent header when set.
	UserAgent string
	// ReconnectDelay is the backoff base when the hub sent no `retry`
	// field; 0 means DefaultReconnectDelay. A `retry` from the hub replaces it.
	ReconnectDelay time.Duration
	// MaxReconnectDelay caps the backoff; 0 means DefaultMaxReconnectDelay.
	// A hub's `retry` larger than the cap is still honoured.
	MaxReconnectDelay time.Duration
}

// Client talks to one Mercure hub. It is safe for concurrent use.
type Client struct {
	opts   Options
	hub    *url.URL
	httpc  *http.Client
	logger *slog.Logger

	mu       sync.Mutex
	detected bool // proto and md are known
	proto    Protocol
	md       *Metadata
	mdDone   bool // md was fetched (it may be nil: none served)
}

// New validates o and returns a Client. It makes no request.
func New(o Options) (*Client, error) {
	if o.HTTPClient == nil {
		return nil, fmt.Errorf("%w: an HTTP client is required", ErrInvalidRequest)
	}
	hub, err := ParseHubURL(o.HubURL)
	if err != nil {
		return nil, err
	}
	switch o.Protocol {
	case ProtocolAuto, Protocol07, Protocol08:
	default:
		return nil, fmt.Errorf("%w: unknown protocol %d", ErrInvalidRequest, int(o.Protocol))
	}
	if o.ReconnectDelay <= 0 {
		o.ReconnectDelay = DefaultReconnectDelay
	}
	if o.MaxReconnectDelay <= 0 {
		o.MaxReconnectDelay = DefaultMaxReconnectDelay
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{opts: o, hub: hub, httpc: o.HTTPClient, logger: logger}
	if o.Protocol != ProtocolAuto {
		c.proto, c.detected = o.Protocol, true
	}
	return c, nil
}

// ParseHubURL parses a hub URL: an absolute http or https URL; an empty path
// (or "/") becomes HubPath. The fragment is dropped. A bare HOST:PORT (with
// an optional path), as a hub prints its listen address, means http://.
func ParseHubURL(s string) (*url.URL, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: no hub URL", ErrInvalidRequest)
	}
	if !strings.Contains(s, "://") {
		hostPort, _, _ := strings.Cut(s, "/")
		if _, port, err := net.SplitHostPort(hostPort); err == nil && port != "" {
			if _, err := strconv.ParseUint(port, 10, 16); err == nil {
				s = "http://" + s
			}
		}
		if !strings.Contains(s, "://") {
			return nil, fmt.Errorf("%w: hub URL %q has no scheme: write http:// or https:// before it (such as https://%s)",
				ErrInvalidRequest, s, strings.TrimPrefix(s, "//"))
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: hub URL %q: %w", ErrInvalidRequest, s, unwrapURLError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: hub URL %q: scheme must be http or https", ErrInvalidRequest, s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: hub URL %q has no host", ErrInvalidRequest, s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: hub URL %q: user information is not supported (use a token)", ErrInvalidRequest, u.Redacted())
	}
	if u.Path == "" || u.Path == "/" {
		u.Path, u.RawPath = HubPath, ""
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// unwrapURLError drops the "parse URL:" wrapping of url.Parse errors, whose
// URL the caller already shows.
func unwrapURLError(err error) error {
	if uerr, ok := errors.AsType[*url.Error](err); ok {
		return uerr.Err
	}
	return err
}

// HubURL returns the hub URL in use.
func (c *Client) HubURL() string { return c.hub.String() }

// bearer returns the token for a request ("" for none).
func (c *Client) bearer(ctx context.Context, proto Protocol, action string, sels []Selector) (string, error) {
	if c.opts.Token != "" || c.opts.TokenFunc == nil {
		return c.opts.Token, nil
	}
	var md *Metadata
	if proto == Protocol08 {
		var err error
		if md, err = c.Metadata(ctx); err != nil {
			return "", err
		}
	}
	tok, err := c.opts.TokenFunc(ctx, TokenRequest{Protocol: proto, Metadata: md, Action: action, Selectors: sels})
	if err != nil {
		return "", fmt.Errorf("get %s token: %w", action, err)
	}
	return tok, nil
}

// newRequest builds a request with the common headers.
func (c *Client) newRequest(ctx context.Context, method, u string, body io.Reader, tok string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if c.opts.UserAgent != "" {
		req.Header.Set("User-Agent", c.opts.UserAgent)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, nil
}

// do sends req, turning transport failures into ErrUnreachable (or the
// context's error when ctx ended). The error names the hub URL, not the
// request's: the user gave the one, the client derived the other (the
// metadata and subscriptions API addresses).
func (c *Client) do(ctx context.Context, req *http.Request) (*http.Response, error) {
	resp, err := c.httpc.Do(req)
	if err == nil {
		return resp, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, ctxErr
	}
	return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, c.hub.Redacted(), unwrapURLError(err))
}

// httpError reads the start of resp's body into an *HTTPError and closes it.
func httpError(op string, resp *http.Response) *HTTPError {
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	return &HTTPError{
		Op:         op,
		StatusCode: resp.StatusCode,
		Status:     resp.Status,
		Body:       strings.TrimSpace(strings.ToValidUTF8(string(body), "\uFFFD")),
		Challenge:  resp.Header.Get("WWW-Authenticate"),
	}
}

// discard closes a body that is not needed. It does not drain it: the body
// may be an endless stream (a server answering a subscription with the wrong
// content type), and connection reuse does not matter here.
func discard(body io.ReadCloser) {
	_ = body.Close()
}
