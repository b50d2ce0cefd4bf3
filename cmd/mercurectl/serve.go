package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mercurectl/mercurectl/internal/hub"
	"github.com/mercurectl/mercurectl/internal/token"
)

// Serve defaults that are not the hub's own.
const (
	defaultServeAddr       = "localhost:3000"
	defaultShutdownTimeout = 5 * time.Second
	// defaultHistorySize bounds the history unless --history-size says
	// otherwise: enough to replay a busy topic after a reconnection, small
	// enough that the memory transport cannot grow without bound.
	defaultHistorySize = 10000
)

// serveOptions are the inputs of `mercurectl serve`: its dependencies, and
// one field per flag, bound in newServeCmd. validate (serve_config.go) is the
// one place that checks them; hubConfig and hubServer.Open turn them into the
// running hub. A new flag needs a field here, its binding below, its checks
// in validate, and its use where the hub or a listener is configured.
type serveOptions struct {
	IO         *IOStreams
	Getenv     func(string) string
	Now        func() time.Time
	HTTPClient func() (*http.Client, error)
	// notify relays SIGINT and SIGTERM (notifySignals); tests send fake
	// signals instead.
	notify signalNotifier
	// signalWindow is how close together signals count as one; 0 means
	// signalWindow (the constant). Tests shorten it.
	signalWindow time.Duration

	Addr               string
	AddrFile           string
	JWTKey             string
	PublisherJWTKey    string
	SubscriberJWTKey   string
	JWTAlg             string
	JWKSURL            string
	JWKSRefresh        time.Duration
	Anonymous          bool
	Issuers            []string
	ResourceIdentifier string
	Transport          string
	HistorySize        uint64
	HistoryMaxBytes    byteSize
	HistoryMaxAge      time.Duration
	Subscriptions      bool
	Draft08Only        bool
	CORSOrigins        []string
	PublishOrigins     []string
	Heartbeat          time.Duration
	WriteTimeout       time.Duration
	DispatchTimeout    time.Duration
	ParkIdle           bool
	MaxBodySize        byteSize
	MaxSelectorBytes   byteSize
	MaxSubscribers     int
	MetricsAddr        string
	TLSCert            string
	TLSKey             string
	LogFormat          string
	LogLevel           string
	Dev                bool
	UI                 bool
	AccessLog          bool
	TrustedProxies     []string
	ShutdownTimeout    time.Duration

	// Set by validate.
	transport transportSpec
	proxies   []netip.Prefix
}

func newServeCmd(f *factory, runF func(*serveOptions) error) *cobra.Command {
	opts := &serveOptions{
		IO:               f.IO,
		Getenv:           f.Getenv,
		Now:              f.Now,
		HTTPClient:       f.HTTPClient,
		notify:           notifySignals,
		MaxBodySize:      hub.DefaultMaxBodySize,
		MaxSelectorBytes: hub.DefaultMaxSelectorBytes,
	}
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Run a Mercure hub",
		Long: `Run a Mercure hub at /.well-known/mercure, speaking protocol draft-07 and
draft-08 at once.

Publishers need a token signed with the publisher key; subscribers need one
signed with the subscriber key, unless --anonymous lets them receive public
updates without one. Keys are HMAC secrets or PEM public keys; like every
secret they can be read from a file (@path) or stdin (@-). Without any key,
and without --anonymous or --dev, serve refuses to start.

History is kept in a bolt file in the user's state directory unless
--transport says otherwise. --history-size, --history-max-bytes and
--history-max-age bound it. With --subscriptions, the subscription events
are bounded by the same limits apart from the published updates, so that no
number of clients coming and going ever pushes a published update out.

The key is --jwt-key, else MERCURE_JWT_KEY, else MERCURE_JWT_SECRET (the
variable Symfony's .env sets).

--dev starts a development hub: anonymous subscribers, CORS for any origin
with credentials (the request's Origin is echoed, so that pages using
cookies work; an explicit --cors-origin list still decides), the debug UI,
and, on stderr, lines to paste into another shell: export MERCURE_URL=<hub
URL> and export MERCURE_JWT=<token>. Without a key, --dev generates one and
keeps it in the user's state directory (dev.key, mode 0600, beside the
default history file), so the token stays valid at the next start, as the
history does; the banner names both files.

--ui serves the debug UI at /.well-known/mercure/ui/: subscribe and see
events arrive, publish, decode tokens, and list the active subscriptions.
Outside --dev the page holds no secret: paste a token into it.

Logs go to stderr (--log-format, --log-level). Two info lines at start-up
sum the hub up: "listening" (address, transport, retention) and
"configuration" (protocols, anonymous access, origins, key kind, limits).
Each request then gets one info line: method, path, status, duration, client
address (from X-Forwarded-For only when the peer is a --trusted-proxy) and
protocol generation; a publish's adds the update id and topic count, and a
subscription's comes when it ends, with its id, selector count and why it
ended (client gone, write timeout, token expired, slow reader, shutdown).
Data and tokens are never logged. Refusals (401, 403) are logged with their
reason even with --access-log=false, and the client gets the same reason.

The hub runs until SIGINT (Ctrl-C) or SIGTERM: open streams are closed,
in-flight publishes finish, the history is closed, and serve exits 0. A second
signal stops it at once (exit 130).

One subscription request may carry at most 1000 topic= values (draft-07) or
100 matchers of at most 4096 bytes each (draft-08), at most
--max-selector-bytes of selectors in all, at most 100 URI templates or URL
patterns, and URI templates of at most 32 expressions; URL patterns have at
most 32 groups and wildcards and 512 regexp instructions, and those beyond
literal segments, :name segments and a final /* (regexp or {} groups,
modifiers, wildcards in the host...) at most 2048 bytes in all. A request
over a limit gets 400 with a reason that names it.`,
		Example: `$ mercurectl serve --dev
$ MERCURE_JWT_KEY=@secret.txt mercurectl serve --addr :3000 --cors-origin https://app.example.com
$ mercurectl serve --jwt-alg RS256 --jwt-key @public.pem --transport bolt:///var/lib/mercure/hub.db
$ mercurectl serve --addr 127.0.0.1:0 --addr-file hub.addr --anonymous --transport memory`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runServe(cmd.Context(), opts)
		},
	}

	fl := cmd.Flags()
	// --listen is accepted as a synonym of --addr (the name other hubs use);
	// help shows only --addr.
	fl.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "listen" {
			name = "addr"
		}
		return pflag.NormalizedName(name)
	})
	fl.StringVar(&opts.Addr, "addr", defaultServeAddr, "listen address `HOST:PORT`; port 0 picks a free port")
	bindEnv(fl, "addr", "MERCURE_ADDR")
	fl.StringVar(&opts.AddrFile, "addr-file", "", "once listening, write the bound host:port (one line) to `PATH`")
	fl.StringVar(&opts.JWTKey, "jwt-key", "", "verification `KEY` for publishers and subscribers: HMAC secret or PEM public key (@file, @- for stdin)")
	bindEnv(fl, "jwt-key", "MERCURE_JWT_KEY", "MERCURE_JWT_SECRET") // Symfony's .env sets the latter
	fl.StringVar(&opts.PublisherJWTKey, "publisher-jwt-key", "", "verification `KEY` for publishers; overrides --jwt-key")
	bindEnv(fl, "publisher-jwt-key", "MERCURE_PUBLISHER_JWT_KEY")
	fl.StringVar(&opts.SubscriberJWTKey, "subscriber-jwt-key", "", "verification `KEY` for subscribers; overrides --jwt-key")
	bindEnv(fl, "subscriber-jwt-key", "MERCURE_SUBSCRIBER_JWT_KEY")
	fl.StringVar(&opts.JWTAlg, "jwt-alg", "HS256", "signing `ALG` of accepted tokens: "+strings.Join(token.SupportedAlgs(), ", ")+" (never none)")
	bindEnv(fl, "jwt-alg", "MERCURE_JWT_ALG")
	fl.StringVar(&opts.JWKSURL, "jwks-url", "", "verify tokens against the JSON Web Key Set at `URL`, refreshed in the background")
	bindEnv(fl, "jwks-url", "MERCURE_JWKS_URL")
	fl.DurationVar(&opts.JWKSRefresh, "jwks-refresh", token.DefaultJWKSRefresh, "how often to refetch the --jwks-url key set")
	fl.BoolVar(&opts.Anonymous, "anonymous", false, "let subscribers without a token receive public updates")
	bindEnv(fl, "anonymous", "MERCURE_ANONYMOUS")
	fl.StringArrayVar(&opts.Issuers, "issuer", nil, "trusted `ISS` of draft-08 access tokens (repeatable); with none, any iss is accepted")
	bindEnv(fl, "issuer", "MERCURE_ISSUER")
	fl.StringVar(&opts.ResourceIdentifier, "resource-identifier", "", "the aud that draft-08 access tokens must carry (`URL`), also the base of relative topics; default: the listen address's URL, never the request's Host")
	bindEnv(fl, "resource-identifier", "MERCURE_RESOURCE_IDENTIFIER")
	fl.StringVar(&opts.Transport, "transport", "", "history store `DSN`: memory, bolt://relative/file.db, bolt:///absolute/file.db, redis://[user:password@]host:port/db, rediss://…, unix:///path/redis.sock (default: a bolt file in the user's state directory)")
	bindEnv(fl, "transport", "MERCURE_TRANSPORT")
	fl.Uint64Var(&opts.HistorySize, "history-size", defaultHistorySize, "keep at most `N` updates in history (0 = unlimited)")
	fl.Var(&opts.HistoryMaxBytes, "history-max-bytes", "drop the oldest updates beyond `BYTES` of history, such as 256MiB (0 = no byte bound)")
	fl.DurationVar(&opts.HistoryMaxAge, "history-max-age", 0, "drop updates older than this from history (0 = keep)")
	fl.BoolVar(&opts.Subscriptions, "subscriptions", false, "publish subscription events and serve the subscriptions API")
	bindEnv(fl, "subscriptions", "MERCURE_SUBSCRIPTIONS")
	fl.BoolVar(&opts.Draft08Only, "draft-08-only", false, "serve draft-08 only: refuse topic= subscriptions and legacy mercure-claim tokens")
	bindEnv(fl, "draft-08-only", "MERCURE_DRAFT08_ONLY")
	fl.StringArrayVar(&opts.CORSOrigins, "cors-origin", nil, "`ORIGIN` allowed to use the hub from a browser (repeatable, * for any)")
	bindEnv(fl, "cors-origin", "MERCURE_CORS_ORIGINS")
	fl.StringArrayVar(&opts.PublishOrigins, "publish-origin", nil, "`ORIGIN` allowed to publish with the authorization cookie (repeatable)")
	bindEnv(fl, "publish-origin", "MERCURE_PUBLISH_ORIGINS")
	fl.DurationVar(&opts.Heartbeat, "heartbeat", hub.DefaultHeartbeat, "interval of comment lines on idle streams (0 disables)")
	fl.DurationVar(&opts.WriteTimeout, "write-timeout", hub.DefaultWriteTimeout, "maximum lifetime of one subscription (0 = none)")
	fl.DurationVar(&opts.DispatchTimeout, "dispatch-timeout", hub.DefaultDispatchTimeout, "maximum time to write an update to one subscriber")
	fl.BoolVar(&opts.ParkIdle, "park-idle", true, "park idle HTTP/1.1 streams without a goroutine (Linux; TLS and HTTP/2 streams never are)")
	fl.Var(&opts.MaxBodySize, "max-body-size", "largest publish request body (`BYTES`, such as 1048576 or 1MiB); larger gets 413")
	fl.Var(&opts.MaxSelectorBytes, "max-selector-bytes", "most `BYTES` of selectors (topic= or match…= values) in one subscription request; more gets 400")
	fl.IntVar(&opts.MaxSubscribers, "max-subscribers", maxSubscribersAuto, "most open subscriptions (`N`; 0 = no cap); beyond it 503 with Retry-After. Default auto: the descriptor limit less a reserve for publishers, metrics and the store")
	fl.Lookup("max-subscribers").DefValue = "auto"
	bindEnv(fl, "max-subscribers", "MERCURE_MAX_SUBSCRIBERS")
	fl.StringVar(&opts.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics, /healthz and /readyz on `HOST:PORT`")
	fl.StringVar(&opts.TLSCert, "tls-cert", "", "serve HTTPS (and HTTP/2) with the PEM certificate chain at `PATH`")
	fl.StringVar(&opts.TLSKey, "tls-key", "", "PEM private key of --tls-cert at `PATH`")
	fl.StringVar(&opts.LogFormat, "log-format", logFormatAuto, "log `FORMAT` on stderr: auto (text on a terminal, else json), text or json")
	fl.StringVar(&opts.LogLevel, "log-level", "info", "minimum log `LEVEL`: debug, info, warn or error")
	fl.BoolVar(&opts.Dev, "dev", false, "development mode: a key kept in the state directory if none is given, anonymous, CORS for any origin with credentials, the debug UI, print export lines with a token")
	fl.BoolVar(&opts.UI, "ui", false, "serve the debug UI at /.well-known/mercure/ui/ (always on with --dev)")
	bindEnv(fl, "ui", "MERCURE_UI")
	fl.BoolVar(&opts.AccessLog, "access-log", true, "log one line per request at info (a subscription's when it ends, with why); refusals are logged either way")
	bindEnv(fl, "access-log", "MERCURE_ACCESS_LOG")
	fl.StringArrayVar(&opts.TrustedProxies, "trusted-proxy", nil, "honour X-Forwarded-For and X-Forwarded-Proto only from this `CIDR` or address (repeatable)")
	bindEnv(fl, "trusted-proxy", "MERCURE_TRUSTED_PROXIES")
	fl.DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "how long a graceful shutdown may wait for in-flight requests")
	return cmd
}

// runServe runs the hub until the first signal (or until ctx is cancelled, or
// a server fails), then shuts it down in order within --shutdown-timeout. A
// later signal (see stopSignals) stops it at once, with exit code 130.
func runServe(ctx context.Context, opts *serveOptions) error {
	logger, err := newLogger(opts.IO.ErrOut, opts.IO.IsStderrTTY(), opts.LogFormat, opts.LogLevel)
	if err != nil {
		return usageErrorf("serve: %w", err)
	}
	sig := watchSignals(opts.notify, opts.signalWindow)
	defer sig.Close()
	ctx, cancel := sig.context(ctx)
	defer cancel()

	s := newHubServer(opts, logger)
	if err := s.Open(ctx); err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", opts.ShutdownTimeout.String())
	case err := <-s.Failed():
		serveErr = fmt.Errorf("serve: %w", err)
		logger.Error("server stopped", "err", err)
	}
	sig.Begin()

	closeCtx, cancelClose := context.WithTimeout(context.WithoutCancel(ctx), opts.ShutdownTimeout)
	defer cancelClose()
	done := make(chan error, 1)
	go func() { done <- s.Close(closeCtx) }()
	select {
	case err := <-done:
		if err = errors.Join(serveErr, err); err != nil {
			return err
		}
		logger.Info("shutdown complete")
		return nil
	case <-sig.Forced():
		s.removeAddrFile()
		logger.Warn("interrupted again: exiting before the shutdown completed")
		return &interruptedError{}
	}
}
