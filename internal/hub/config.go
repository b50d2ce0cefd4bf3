package hub

import (
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/token"
)

// Defaults for Config fields, with the reasons for their values.
const (
	// DefaultHeartbeat is the idle interval after which a comment line is sent
	// on a stream, short enough to keep proxies and load balancers from
	// closing idle connections (most default to 60s).
	DefaultHeartbeat = 40 * time.Second
	// DefaultWriteTimeout caps the lifetime of one subscription, so that
	// clients reconnect (and re-authenticate) regularly.
	DefaultWriteTimeout = 600 * time.Second
	// DefaultDispatchTimeout is the longest one write to one subscriber may
	// take before the subscriber is considered stuck and disconnected.
	DefaultDispatchTimeout = 5 * time.Second
	// DefaultMaxBodySize caps a publish request body (1 MiB, as the reference hub).
	DefaultMaxBodySize = 1 << 20
	// DefaultMaxSelectorBytes caps the selectors of one subscription
	// request, in bytes all together (64 KiB): enough for a thousand
	// 65-byte topics, and a small, fixed cost per request for the hub.
	DefaultMaxSelectorBytes = 64 << 10
	// DefaultQueueSize is how many updates may wait for one subscriber before
	// it is disconnected as too slow (it resumes from history).
	DefaultQueueSize = 4096
	// Path is where the hub is served.
	Path = "/.well-known/mercure"
	// UIPath is where Config.UI is served.
	UIPath = Path + "/ui/"
	// MetadataPath is where the RFC 9728 protected-resource metadata is served.
	MetadataPath = "/.well-known/oauth-protected-resource" + Path
)

// Config configures a Hub. The zero value of every duration and size field
// means "use the default" unless its comment says otherwise.
type Config struct {
	// Store is the history and delivery path. Required.
	Store history.Store
	// PublisherVerifier verifies publishers' tokens; nil means nobody can publish.
	PublisherVerifier *token.Verifier
	// SubscriberVerifier verifies subscribers' tokens; nil means only anonymous
	// subscribers are possible (and only when Anonymous is set).
	SubscriberVerifier *token.Verifier
	// Anonymous lets subscribers without a token receive public updates.
	Anonymous bool
	// ResourceIdentifier is the `aud` that draft-08 access tokens must
	// carry, the metadata's `resource` and the base of relative topics. It
	// never comes from the request; with "" every access token is refused
	// (legacy tokens carry no audience), and the base and the metadata are
	// derived from each request.
	ResourceIdentifier string
	// CORSOrigins are the origins allowed to use the hub from a browser ("*" allowed).
	CORSOrigins []string
	// PublishOrigins are the origins allowed to publish with the cookie ("*"
	// and wildcards such as "https://*.example.com" allowed).
	PublishOrigins []string
	// Heartbeat is the idle interval between comment lines; negative disables.
	Heartbeat time.Duration
	// WriteTimeout is the maximum lifetime of one subscription; negative = none.
	WriteTimeout time.Duration
	// DispatchTimeout is the maximum time to write one batch to one subscriber.
	DispatchTimeout time.Duration
	// MaxBodySize caps a publish body in bytes; larger gets 413.
	MaxBodySize int64
	// MaxSelectorBytes caps the total bytes of the selectors (topic= or
	// match…= values) of one subscription request; larger gets 400.
	MaxSelectorBytes int
	// QueueSize is the per-subscriber queue bound.
	QueueSize int
	// Draft08Only switches the legacy generation off
	// (docs/protocol.md#draft-08-only): `topic=` subscriptions get 400 with a
	// hint, legacy `mercure`-claim tokens are refused as invalid, and the
	// draft-07 token sources (the `authorization` query parameter and the
	// mercureAuthorization cookie) are ignored.
	Draft08Only bool
	// Subscriptions enables subscription events and the subscriptions API.
	Subscriptions bool
	// UI, when set, serves everything under UIPath (the debug page). It is
	// answered before CORS: the page is for its own origin only, and may
	// carry a development token that no other site must read.
	UI http.Handler
	// AccessLog writes one info line per request to Logger (a subscription's
	// when it ends, with why). Refusals are logged even without it.
	AccessLog bool
	// TrustedProxies are the peers whose X-Forwarded-For (the client address
	// of log lines) and X-Forwarded-Proto (the scheme of the derived hub URL)
	// are believed; from any other peer both headers are ignored.
	TrustedProxies []netip.Prefix
	// Logger receives the hub's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}
