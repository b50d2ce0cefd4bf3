package hub

import (
	"errors"
	"fmt"
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

// Config configures a Hub. Start from DefaultConfig, which holds every
// default, and change what differs.
//
// Durations, sizes and counts follow one convention, as in net/http.Server:
// zero means "none". For what can be switched off (Heartbeat, WriteTimeout)
// zero switches it off; for what cannot (DispatchTimeout, MaxBodySize,
// MaxSelectorBytes, QueueSize) New refuses zero. New refuses negative values everywhere, so
// that no value has two meanings and no default hides behind a zero.
//
// The hub has one clock, the time package's: heartbeats, write deadlines,
// subscription lifetimes and the sweeper's ticker all run on it, so tests
// control all of them at once with testing/synctest. Token times are the
// verifiers' business (token.VerifierConfig.Now): the hub turns a token's
// exp into the lifetime left by its verifier's clock.
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
	// CORSAnyOriginWithCredentials, for development hubs only, allows every
	// origin with credentials when CORSOrigins is empty: the request's
	// Origin is echoed in Access-Control-Allow-Origin, with
	// Access-Control-Allow-Credentials: true, so that a page on any origin
	// can use cookies (EventSource withCredentials). In production it would
	// let any site a user visits read the hub with that user's cookie; name
	// the origins in CORSOrigins instead.
	CORSAnyOriginWithCredentials bool
	// PublishOrigins are the origins allowed to publish with the cookie ("*"
	// and wildcards such as "https://*.example.com" allowed).
	PublishOrigins []string
	// Heartbeat is the idle interval between comment lines; 0 sends none.
	Heartbeat time.Duration
	// WriteTimeout is the maximum lifetime of one subscription; 0 means
	// no limit.
	WriteTimeout time.Duration
	// DispatchTimeout is the maximum time to write one batch to one
	// subscriber. Required (not 0).
	DispatchTimeout time.Duration
	// MaxBodySize caps a publish body in bytes; larger gets 413. Required
	// (not 0).
	MaxBodySize int64
	// MaxSelectorBytes caps the total bytes of the selectors (topic= or
	// match…= values) of one subscription request; larger gets 400.
	// Required (not 0).
	MaxSelectorBytes int
	// MaxSubscribers caps the open subscription requests (0 = no cap).
	// Beyond it a subscriber gets 503 with Retry-After and a closed
	// connection, so that a flood of subscribers cannot take the descriptors
	// publishers need.
	MaxSubscribers int
	// QueueSize is the per-subscriber queue bound. Required (not 0).
	QueueSize int
	// Draft08Only switches the legacy generation off
	// (docs/protocol.md#draft-08-only): `topic=` subscriptions get 400 with a
	// hint, legacy `mercure`-claim tokens are refused as invalid, and the
	// draft-07 token sources (the `authorization` query parameter and the
	// mercureAuthorization cookie) are ignored.
	Draft08Only bool
	// Subscriptions enables subscription events and the subscriptions API.
	Subscriptions bool
	// ParkIdle parks idle plain HTTP/1.1 streams, on Linux: such a stream
	// then holds no goroutine and no buffer until an update, a heartbeat or
	// its end is due (docs/protocol.md#parked-streams). TLS and HTTP/2
	// streams, and every stream elsewhere, keep a goroutine each. Clients
	// see no difference.
	ParkIdle bool
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
}

// DefaultConfig returns a Config with every default set; the caller adds the
// Store, the verifiers and what else differs.
func DefaultConfig() Config {
	return Config{
		Heartbeat:        DefaultHeartbeat,
		WriteTimeout:     DefaultWriteTimeout,
		DispatchTimeout:  DefaultDispatchTimeout,
		MaxBodySize:      DefaultMaxBodySize,
		MaxSelectorBytes: DefaultMaxSelectorBytes,
		QueueSize:        DefaultQueueSize,
		ParkIdle:         true,
	}
}

// validate checks cfg by the convention documented on Config.
func (cfg *Config) validate() error {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("a history store is required"))
	}
	for _, f := range []struct {
		name     string
		v        int64
		required bool
	}{
		{"Heartbeat", int64(cfg.Heartbeat), false},
		{"WriteTimeout", int64(cfg.WriteTimeout), false},
		{"DispatchTimeout", int64(cfg.DispatchTimeout), true},
		{"MaxBodySize", cfg.MaxBodySize, true},
		{"MaxSelectorBytes", int64(cfg.MaxSelectorBytes), true},
		{"QueueSize", int64(cfg.QueueSize), true},
	} {
		switch {
		case f.v < 0:
			errs = append(errs, fmt.Errorf("%s must not be negative", f.name))
		case f.v == 0 && f.required:
			errs = append(errs, fmt.Errorf("%s is required (DefaultConfig has its default)", f.name))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}
