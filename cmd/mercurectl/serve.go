package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/hub"
	"github.com/mercurectl/mercurectl/internal/token"
	"github.com/mercurectl/mercurectl/internal/ui"
)

// Serve defaults that are not the hub's own.
const (
	defaultServeAddr       = "localhost:3000"
	defaultShutdownTimeout = 5 * time.Second
	// defaultHistorySize bounds the history unless --history-size says
	// otherwise: enough to replay a busy topic after a reconnection, small
	// enough that the memory transport cannot grow without bound.
	defaultHistorySize = 10000
	// devKeySize is the size of the random HMAC key of --dev (256 bits, as
	// HS256 wants).
	devKeySize = 32
	// devTokenTTL is the lifetime of the token --dev prints when the key was
	// given rather than generated (a generated key dies with the process, so
	// its token needs no expiry).
	devTokenTTL = 24 * time.Hour
	// readHeaderTimeout bounds how long a client may take to send request
	// headers (slowloris); bodies and streams are bounded by the hub.
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes keep-alive connections idle for this long.
	idleTimeout = 2 * time.Minute
)

// serveOptions are the inputs of `mercurectl serve`.
type serveOptions struct {
	IO         *IOStreams
	Getenv     func(string) string
	Now        func() time.Time
	HTTPClient func() (*http.Client, error)
	// notifyForce relays SIGINT and SIGTERM to c once a shutdown has begun,
	// so that a second signal forces the exit; tests replace it.
	notifyForce func(c chan<- os.Signal) (stop func())

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
	HistoryMaxAge      time.Duration
	Subscriptions      bool
	Draft08Only        bool
	CORSOrigins        []string
	PublishOrigins     []string
	Heartbeat          time.Duration
	WriteTimeout       time.Duration
	DispatchTimeout    time.Duration
	MaxBodySize        byteSize
	MaxSelectorBytes   byteSize
	MetricsAddr        string
	TLSCert            string
	TLSKey             string
	LogFormat          string
	LogLevel           string
	Dev                bool
	UI                 bool
	ShutdownTimeout    time.Duration

	// Set by validate.
	transport transportSpec
}

func newServeCmd(f *factory, runF func(*serveOptions) error) *cobra.Command {
	opts := &serveOptions{
		IO:               f.IO,
		Getenv:           f.Getenv,
		Now:              f.Now,
		HTTPClient:       f.HTTPClient,
		notifyForce:      notifySignals,
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
--transport says otherwise.

--dev starts a development hub: a random key if none is given, anonymous
subscribers, CORS for every origin, the debug UI, and a ready-to-use token
printed on stderr as MERCURE_JWT=<token>, with the hub URL.

--ui serves the debug UI at /.well-known/mercure/ui/: subscribe and see
events arrive, publish, decode tokens, and list the active subscriptions.
Outside --dev the page holds no secret: paste a token into it.

The hub runs until SIGINT (Ctrl-C) or SIGTERM: open streams are closed,
in-flight publishes finish, the history is closed, and serve exits 0. A second
signal stops it at once (exit 130).

One subscription request may carry at most 1000 topic= values (draft-07) or
100 matchers of at most 4096 bytes each (draft-08), at most
--max-selector-bytes of selectors in all, at most 100 URI templates or URL
patterns, and URI templates of at most 32 expressions; URL patterns have at
most 32 groups and wildcards and 512 regexp instructions, and those beyond
literal segments, :name segments and a final /* (regexp or {} groups,
modifiers, wildcards in the host...) at most 4096 bytes in all. A request
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
	bindEnv(fl, "jwt-key", "MERCURE_JWT_KEY")
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
	fl.Var(&opts.MaxBodySize, "max-body-size", "largest publish request body (`BYTES`, such as 1048576 or 1MiB); larger gets 413")
	fl.Var(&opts.MaxSelectorBytes, "max-selector-bytes", "most `BYTES` of selectors (topic= or match…= values) in one subscription request; more gets 400")
	fl.StringVar(&opts.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics, /healthz and /readyz on `HOST:PORT`")
	fl.StringVar(&opts.TLSCert, "tls-cert", "", "serve HTTPS (and HTTP/2) with the PEM certificate chain at `PATH`")
	fl.StringVar(&opts.TLSKey, "tls-key", "", "PEM private key of --tls-cert at `PATH`")
	fl.StringVar(&opts.LogFormat, "log-format", logFormatAuto, "log `FORMAT` on stderr: auto (text on a terminal, else json), text or json")
	fl.StringVar(&opts.LogLevel, "log-level", "info", "minimum log `LEVEL`: debug, info, warn or error")
	fl.BoolVar(&opts.Dev, "dev", false, "development mode: random key if none, anonymous, CORS *, the debug UI, print a token")
	fl.BoolVar(&opts.UI, "ui", false, "serve the debug UI at /.well-known/mercure/ui/ (always on with --dev)")
	bindEnv(fl, "ui", "MERCURE_UI")
	fl.DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "how long a graceful shutdown may wait for in-flight requests")
	return cmd
}

// validate checks the flags that can be checked without reading any file,
// so that a bad invocation fails at once with a usage error (exit 2).
func (o *serveOptions) validate() error {
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return usageErrorf("serve: --addr %q: want HOST:PORT (such as localhost:3000, :3000 or 127.0.0.1:0)", o.Addr)
	}
	if o.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(o.MetricsAddr); err != nil {
			return usageErrorf("serve: --metrics-addr %q: want HOST:PORT", o.MetricsAddr)
		}
	}
	alg, err := token.CanonicalAlg(o.JWTAlg)
	if err != nil {
		return usageErrorf("serve: --jwt-alg: %w", err)
	}
	o.JWTAlg = alg
	if o.JWKSURL != "" {
		if u, err := url.Parse(o.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return usageErrorf("serve: --jwks-url %q: want an http:// or https:// URL", o.JWKSURL)
		}
	}
	if o.ResourceIdentifier != "" {
		if u, err := url.Parse(o.ResourceIdentifier); err != nil || u.Scheme == "" || u.Host == "" {
			return usageErrorf("serve: --resource-identifier %q: want an absolute URL, such as https://example.com/.well-known/mercure", o.ResourceIdentifier)
		}
	}
	if o.transport, err = parseTransport(o.Transport); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"heartbeat", o.Heartbeat}, {"write-timeout", o.WriteTimeout}, {"history-max-age", o.HistoryMaxAge},
		{"shutdown-timeout", o.ShutdownTimeout}, {"jwks-refresh", o.JWKSRefresh},
	} {
		if d.v < 0 {
			return usageErrorf("serve: --%s must not be negative", d.name)
		}
	}
	if o.DispatchTimeout <= 0 {
		return usageErrorf("serve: --dispatch-timeout must be positive")
	}
	if o.MaxBodySize <= 0 {
		return usageErrorf("serve: --max-body-size must be positive")
	}
	if o.MaxSelectorBytes <= 0 {
		return usageErrorf("serve: --max-selector-bytes must be positive")
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return usageErrorf("serve: --tls-cert and --tls-key go together")
	}
	if _, err := parseLogFormat(o.LogFormat, false); err != nil {
		return usageErrorf("serve: --log-format: %w", err)
	}
	if _, err := parseLogLevel(o.LogLevel); err != nil {
		return usageErrorf("serve: --log-level: %w", err)
	}
	var fromStdin []string
	for _, k := range []struct{ flag, v string }{
		{"jwt-key", o.JWTKey}, {"publisher-jwt-key", o.PublisherJWTKey}, {"subscriber-jwt-key", o.SubscriberJWTKey},
	} {
		if k.v == "@-" {
			fromStdin = append(fromStdin, "--"+k.flag)
		}
	}
	if len(fromStdin) > 1 {
		return usageErrorf("serve: only one key can be read from stdin (@-), not %s", strings.Join(fromStdin, " and "))
	}
	noKey := o.JWTKey == "" && o.PublisherJWTKey == "" && o.SubscriberJWTKey == "" && o.JWKSURL == ""
	if noKey && !o.Anonymous && !o.Dev {
		return usageErrorf("serve: no key to verify tokens: set --jwt-key (or MERCURE_JWT_KEY), " +
			"--publisher-jwt-key and --subscriber-jwt-key, or --jwks-url; or pass --anonymous " +
			"(subscribers need no token, nobody can publish) or --dev")
	}
	if o.Dev && noKey && !token.IsHMAC(o.JWTAlg) {
		return usageErrorf("serve: --dev generates an HMAC key, so --jwt-alg must be HS256, HS384 or HS512 unless a key is given")
	}
	return nil
}

// serveKeys is the resolved key material.
type serveKeys struct {
	publisher, subscriber []byte
	// publisherFlag and subscriberFlag name where each key came from, for
	// error messages.
	publisherFlag, subscriberFlag string
	// generated is set when --dev made up the key.
	generated bool
}

// readKeys resolves the key flags (@file, @-), and makes up a key for --dev
// when none is given.
func (o *serveOptions) readKeys() (serveKeys, error) {
	var k serveKeys
	read := func(flag, v string) ([]byte, error) {
		if v == "" {
			return nil, nil
		}
		b, err := readSecret(v, o.IO.In)
		if err != nil {
			return nil, usageErrorf("serve: --%s: %w", flag, err)
		}
		return b, nil
	}
	common, err := read("jwt-key", o.JWTKey)
	if err != nil {
		return k, err
	}
	if k.publisher, err = read("publisher-jwt-key", o.PublisherJWTKey); err != nil {
		return k, err
	}
	if k.subscriber, err = read("subscriber-jwt-key", o.SubscriberJWTKey); err != nil {
		return k, err
	}
	k.publisherFlag, k.subscriberFlag = "publisher-jwt-key", "subscriber-jwt-key"
	if k.publisher == nil {
		k.publisher, k.publisherFlag = common, "jwt-key"
	}
	if k.subscriber == nil {
		k.subscriber, k.subscriberFlag = common, "jwt-key"
	}
	if o.Dev && k.publisher == nil && k.subscriber == nil && o.JWKSURL == "" {
		key := make([]byte, devKeySize)
		if _, err := rand.Read(key); err != nil {
			return k, fmt.Errorf("generate a development key: %w", err)
		}
		k.publisher, k.subscriber, k.generated = key, key, true
	}
	return k, nil
}

// hubServer is a running hub and its listeners.
type hubServer struct {
	logger  *slog.Logger
	store   history.Store
	hub     *hub.Hub
	http    *http.Server
	ln      net.Listener
	tls     bool
	metrics *metricsServer // nil without --metrics-addr
}

func runServe(ctx context.Context, opts *serveOptions) error {
	logger, err := newLogger(opts.IO.ErrOut, opts.IO.IsStderrTTY(), opts.LogFormat, opts.LogLevel)
	if err != nil {
		return usageErrorf("serve: %w", err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Background work that must end with serve (the JWKS refresh) uses
	// bgCtx: it is not cancelled by the first signal, so that tokens still
	// verify while in-flight publishes finish.
	bgCtx, cancelBg := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBg()

	keys, err := opts.readKeys()
	if err != nil {
		return err
	}
	pubVerifier, subVerifier, err := opts.verifiers(bgCtx, keys, logger)
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	if opts.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey)
		if err != nil {
			return usageErrorf("serve: --tls-cert/--tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	// Listen before opening the store, so that a port in use is reported at
	// once (and before touching the history file another hub may hold).
	ln, err := listen(ctx, opts.Addr, "--addr")
	if err != nil {
		return err
	}
	var mln net.Listener
	if opts.MetricsAddr != "" {
		if mln, err = listen(ctx, opts.MetricsAddr, "--metrics-addr"); err != nil {
			_ = ln.Close()
			return err
		}
	}
	closeListeners := func() {
		_ = ln.Close()
		if mln != nil {
			_ = mln.Close()
		}
	}

	store, storeDesc, err := openStore(ctx, opts.transport, storeOptions{
		Retention: history.Retention{MaxUpdates: opts.HistorySize, MaxAge: opts.HistoryMaxAge},
		Getenv:    opts.Getenv,
		Logger:    logger.With("component", "history"),
		Now:       opts.Now,
	})
	if err != nil {
		closeListeners()
		if _, ok := errors.AsType[*usageError](err); ok {
			return &usageError{err: fmt.Errorf("serve: %w", err)}
		}
		return fmt.Errorf("serve: open history: %w", err)
	}
	var devJWT, devSubJWT string
	if opts.Dev {
		devJWT, devSubJWT = opts.devTokens(keys, logger)
	}
	// The audience of access tokens is pinned, never taken from requests:
	// without --resource-identifier, it is the URL of the listen address.
	hubURL := publicURL(ln.Addr(), tlsConfig != nil)
	cfg := opts.hubConfig(store, pubVerifier, subVerifier, logger)
	if cfg.ResourceIdentifier == "" {
		cfg.ResourceIdentifier = hubURL
	}
	cfg.UI = opts.uiHandler(keys, devJWT)
	h, err := hub.New(cfg)
	if err != nil {
		closeListeners()
		_ = store.Close()
		if errors.Is(err, hub.ErrInvalidConfig) {
			return &usageError{err: fmt.Errorf("serve: %w", err)}
		}
		return fmt.Errorf("serve: %w", err)
	}

	s := &hubServer{
		logger: logger,
		store:  store,
		hub:    h,
		ln:     ln,
		tls:    tlsConfig != nil,
		http: &http.Server{
			Handler:           h,
			TLSConfig:         tlsConfig,
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       idleTimeout,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			BaseContext:       func(net.Listener) context.Context { return bgCtx },
		},
	}
	if mln != nil {
		s.metrics = newMetricsServer(mln, h, store, logger)
	}

	errc := make(chan error, 2)
	go func() { errc <- s.serve() }()
	if s.metrics != nil {
		go func() { errc <- s.metrics.serve() }()
	}

	attrs := []any{"addr", ln.Addr().String(), "url", hubURL, "transport", storeDesc}
	if s.metrics != nil {
		attrs = append(attrs, "metrics", "http://"+mln.Addr().String()+"/metrics")
	}
	logger.Info("listening", attrs...)
	opts.warnAboutConfig(logger, keys)
	if opts.ResourceIdentifier == "" && (pubVerifier != nil || subVerifier != nil) {
		logger.Warn("no --resource-identifier: draft-08 access tokens must carry the listen address as aud; behind a proxy or under a public name, set --resource-identifier to the public hub URL",
			"aud", cfg.ResourceIdentifier)
	}
	if opts.Dev {
		opts.printDevBanner(hubURL, keys, devJWT, devSubJWT)
	}
	// The address file comes last: whoever waits for it finds the start-up
	// logs (and the --dev token) already written.
	if opts.AddrFile != "" {
		if err := writeAddrFile(opts.AddrFile, ln.Addr().String()); err != nil {
			return errors.Join(fmt.Errorf("serve: --addr-file: %w", err), s.shutdown(opts.ShutdownTimeout))
		}
	}

	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", opts.ShutdownTimeout.String())
	case err := <-errc:
		// A server stopped by itself: shut everything down and report it.
		serveErr = fmt.Errorf("serve: %w", err)
		logger.Error("server stopped", "err", err)
	}

	// From now on a second signal forces the exit. The force channel is
	// registered before NotifyContext's handler is removed, so no signal
	// falls through to the default action (which kills the process).
	force := make(chan os.Signal, 1)
	stopForce := opts.notifyForce(force)
	defer stopForce()
	stop()

	done := make(chan error, 1)
	go func() { done <- s.shutdown(opts.ShutdownTimeout) }()
	select {
	case err := <-done:
		if opts.AddrFile != "" {
			if rmErr := os.Remove(opts.AddrFile); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
				logger.Warn("cannot remove the address file", "path", opts.AddrFile, "err", rmErr)
			}
		}
		if err = errors.Join(serveErr, err); err != nil {
			return err
		}
		logger.Info("shutdown complete")
		return nil
	case <-force:
		logger.Warn("interrupted again: exiting before the shutdown completed")
		return &interruptedError{}
	}
}

// verifiers builds the publisher and subscriber token verifiers; either may
// be nil (nobody can publish; only anonymous subscribers).
func (o *serveOptions) verifiers(ctx context.Context, keys serveKeys, logger *slog.Logger) (pub, sub *token.Verifier, err error) {
	var jwks *token.JWKS
	if o.JWKSURL != "" {
		client, err := o.HTTPClient()
		if err != nil {
			return nil, nil, err
		}
		jwks, err = token.NewJWKS(ctx, o.JWKSURL, client, o.JWKSRefresh, logger.With("component", "jwks"))
		if err != nil {
			return nil, nil, fmt.Errorf("serve: --jwks-url: %w", err)
		}
	}
	build := func(flag string, key []byte) (*token.Verifier, error) {
		if key == nil && jwks == nil {
			return nil, nil
		}
		v, err := token.NewVerifier(token.VerifierConfig{
			Alg: o.JWTAlg, Key: key, JWKS: jwks, Issuers: o.Issuers, Now: o.Now,
		})
		if err != nil {
			if key == nil {
				return nil, usageErrorf("serve: %w", err)
			}
			return nil, usageErrorf("serve: --%s: %w", flag, err)
		}
		return v, nil
	}
	if pub, err = build(keys.publisherFlag, keys.publisher); err != nil {
		return nil, nil, err
	}
	if sub, err = build(keys.subscriberFlag, keys.subscriber); err != nil {
		return nil, nil, err
	}
	return pub, sub, nil
}

// hubConfig turns the flags into the hub's configuration.
func (o *serveOptions) hubConfig(store history.Store, pub, sub *token.Verifier, logger *slog.Logger) hub.Config {
	cfg := hub.Config{
		Store:              store,
		PublisherVerifier:  pub,
		SubscriberVerifier: sub,
		Anonymous:          o.Anonymous || o.Dev,
		ResourceIdentifier: o.ResourceIdentifier,
		CORSOrigins:        slices.Clone(o.CORSOrigins),
		PublishOrigins:     slices.Clone(o.PublishOrigins),
		Heartbeat:          o.Heartbeat,
		WriteTimeout:       o.WriteTimeout,
		DispatchTimeout:    o.DispatchTimeout,
		MaxBodySize:        int64(o.MaxBodySize),
		MaxSelectorBytes:   int(o.MaxSelectorBytes),
		Subscriptions:      o.Subscriptions,
		Draft08Only:        o.Draft08Only,
		Logger:             logger,
		Now:                o.Now,
	}
	// On the command line 0 disables; in hub.Config 0 means the default.
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = -1
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = -1
	}
	if o.Dev && len(cfg.CORSOrigins) == 0 {
		cfg.CORSOrigins = []string{"*"}
	}
	return cfg
}

// warnAboutConfig logs the start-up warnings about risky or useless settings.
func (o *serveOptions) warnAboutConfig(logger *slog.Logger, keys serveKeys) {
	hasKey := keys.publisher != nil || keys.subscriber != nil || o.JWKSURL != ""
	// (A key generated by --dev signs nothing but the printed token.)
	if hasKey && !keys.generated && len(o.Issuers) == 0 {
		logger.Warn("no --issuer set: draft-08 access tokens signed with the key are accepted whatever their iss")
	}
	if keys.publisher == nil && o.JWKSURL == "" {
		logger.Warn("no publisher key: nobody can publish (set --jwt-key or --publisher-jwt-key)")
	}
	if keys.subscriber == nil && o.JWKSURL == "" && !o.Anonymous && !o.Dev {
		logger.Warn("no subscriber key and not --anonymous: nobody can subscribe (set --jwt-key or --subscriber-jwt-key)")
	}
}

// devTokens mints what --dev hands out: a token granting publish and
// subscribe on every topic, in the legacy format that every hub and client
// understands, and a subscriber token when the subscriber key differs. Each
// is "" when the key cannot mint (no key, or not HMAC).
func (o *serveOptions) devTokens(keys serveKeys, logger *slog.Logger) (jwt, subJWT string) {
	mint := func(key []byte, publish bool) string {
		if key == nil || !token.IsHMAC(o.JWTAlg) {
			return ""
		}
		mo := token.MintOptions{Alg: o.JWTAlg, Key: key, Subscribe: []string{"*"}, Now: o.Now}
		if publish {
			mo.Publish = []string{"*"}
		}
		if !keys.generated {
			mo.TTL = devTokenTTL
		}
		tok, err := token.Mint(mo)
		if err != nil {
			logger.Warn("cannot mint a development token", "err", err)
			return ""
		}
		return tok
	}
	jwt = mint(keys.publisher, true)
	if keys.subscriber != nil && string(keys.subscriber) != string(keys.publisher) {
		subJWT = mint(keys.subscriber, false)
	}
	return jwt, subJWT
}

// uiHandler returns the debug UI for --ui and --dev, nil otherwise. Only
// --dev gives the page a secret: the development token, and the key itself
// only when --dev generated it (a configured key never leaves the hub).
func (o *serveOptions) uiHandler(keys serveKeys, devJWT string) http.Handler {
	if !o.UI && !o.Dev {
		return nil
	}
	uo := ui.Options{
		HubPath:            hub.Path,
		Dev:                o.Dev,
		ResourceIdentifier: o.ResourceIdentifier,
		Subscriptions:      o.Subscriptions,
		Draft08Only:        o.Draft08Only,
		Anonymous:          o.Anonymous || o.Dev,
	}
	if len(o.Issuers) > 0 {
		uo.Issuer = o.Issuers[0]
	}
	if o.Dev {
		uo.DevToken = devJWT
		if keys.generated {
			uo.MintKey, uo.MintAlg = keys.publisher, o.JWTAlg
		}
	}
	return ui.New(uo)
}

// printDevBanner prints, on stderr, what --dev promises: the hub URL and the
// development tokens.
func (o *serveOptions) printDevBanner(hubURL string, keys serveKeys, jwt, subJWT string) {
	r := o.IO.ErrRenderer()
	title := r.NewStyle().Bold(true).Foreground(lipgloss.Color("3"))
	var b strings.Builder
	b.WriteString("\n" + title.Render("Development mode: not for production.") + "\n")
	switch {
	case keys.generated:
		b.WriteString("Anonymous subscribers, CORS for every origin, and a random key that lives as\nlong as this process.\n\n")
	default:
		b.WriteString("Anonymous subscribers and CORS for every origin.\n\n")
	}
	fmt.Fprintf(&b, "MERCURE_URL=%s\n", hubURL)
	if jwt != "" {
		fmt.Fprintf(&b, "MERCURE_JWT=%s\n", jwt)
	} else {
		b.WriteString("(no token printed: --dev mints tokens only with an HMAC key)\n")
	}
	if subJWT != "" {
		fmt.Fprintf(&b, "MERCURE_SUBSCRIBER_JWT=%s\n", subJWT)
	}
	b.WriteString("\nTry it from another terminal, with the variables above exported:\n")
	b.WriteString("  $ mercurectl subscribe --topic '*'\n")
	b.WriteString("  $ mercurectl publish --topic https://example.com/hello --data 'Hello, world'\n")
	fmt.Fprintf(&b, "  $ curl -N '%s?topic=*'\n", hubURL)
	fmt.Fprintf(&b, "Or open the debug UI: %s/ui/\n\n", hubURL)
	_, _ = fmt.Fprint(o.IO.ErrOut, b.String()) // as the logs, best effort
}

// listen binds addr, turning the common failures into clear messages.
func listen(ctx context.Context, addr, flag string) (net.Listener, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	switch {
	case isAddrInUse(err):
		return nil, fmt.Errorf("serve: cannot listen on %s: the address is already in use (another hub running? choose another port with %s)", addr, flag)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("serve: cannot listen on %s: permission denied (ports below 1024 need privileges; choose another with %s)", addr, flag)
	case err != nil:
		return nil, fmt.Errorf("serve: cannot listen on %s: %w", addr, err)
	}
	return ln, nil
}

// wsaeaddrinuse is Windows' WSAEADDRINUSE, which syscall.EADDRINUSE does not match.
const wsaeaddrinuse = syscall.Errno(10048)

// isAddrInUse reports whether a listen error means the port is taken.
func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || (runtime.GOOS == "windows" && errors.Is(err, wsaeaddrinuse))
}

// publicURL is the hub URL for a bound address: an unspecified host (":3000",
// "0.0.0.0") becomes localhost.
func publicURL(addr net.Addr, tls bool) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		host, port = addr.String(), ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: hub.Path}).String()
}

// writeAddrFile writes addr and a newline to path atomically: readers see
// either no file or the whole line.
func writeAddrFile(path, addr string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(addr + "\n")
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}

// serve runs the hub's HTTP server until it is shut down.
func (s *hubServer) serve() error {
	var err error
	if s.tls {
		err = s.http.ServeTLS(s.ln, "", "") // the certificate is in TLSConfig; HTTP/2 is negotiated
	} else {
		err = s.http.Serve(s.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// shutdown stops the hub: it stops accepting connections, ends open streams,
// lets in-flight requests (publishes) finish within timeout, then closes the
// hub and the history store. Requests still running at the timeout are cut,
// with a warning; only failures to close are errors.
func (s *hubServer) shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if s.metrics != nil {
		s.metrics.draining.Store(true)
	}

	var wg sync.WaitGroup
	wg.Go(func() {
		// Closes the listener at once, then waits for in-flight requests.
		if err := s.http.Shutdown(ctx); err != nil {
			s.logger.Warn("shutdown timeout expired: closing the remaining connections", "timeout", timeout.String())
			_ = s.http.Close()
		}
	})
	if s.metrics != nil {
		wg.Go(func() {
			if err := s.metrics.http.Shutdown(ctx); err != nil {
				_ = s.metrics.http.Close()
			}
		})
	}
	// Streams never end by themselves: ending them is what lets
	// http.Server.Shutdown return.
	if err := s.hub.Shutdown(ctx); err != nil {
		s.logger.Warn("not every subscription ended in time", "err", err)
	}
	wg.Wait()

	var errs []error
	if err := s.hub.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close hub: %w", err))
	}
	if err := s.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close history: %w", err))
	}
	return errors.Join(errs...)
}
