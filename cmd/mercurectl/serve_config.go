package main

import (
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/hub"
	"github.com/mercurectl/mercurectl/internal/token"
)

// validate checks the flags that can be checked without reading any file,
// so that a bad invocation fails at once with a usage error (exit 2). It is
// the one place where serve's flags are checked; the checks run in this
// order, and the first failure is reported.
func (o *serveOptions) validate() error {
	for _, check := range []func() error{
		o.checkAddrs, o.checkProxies, o.checkTokenFlags, o.checkTransport, o.checkLimits, o.checkLogging, o.checkKeyFlags,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// checkAddrs checks the listen addresses.
func (o *serveOptions) checkAddrs() error {
	if !validListenAddr(o.Addr) {
		return usageErrorf("serve: --addr %q: want HOST:PORT with a port from 0 to 65535 (such as localhost:3000, :3000 or 127.0.0.1:0)", o.Addr)
	}
	if o.MetricsAddr != "" && !validListenAddr(o.MetricsAddr) {
		return usageErrorf("serve: --metrics-addr %q: want HOST:PORT with a port from 0 to 65535", o.MetricsAddr)
	}
	return nil
}

// checkProxies parses --trusted-proxy: CIDRs, or single addresses.
func (o *serveOptions) checkProxies() error {
	o.proxies = o.proxies[:0]
	for _, v := range o.TrustedProxies {
		v = strings.TrimSpace(v)
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return usageErrorf("serve: --trusted-proxy %q: want a CIDR such as 10.0.0.0/8 or an address such as 192.0.2.1", v)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		o.proxies = append(o.proxies, p.Masked())
	}
	return nil
}

// validListenAddr reports whether addr is HOST:PORT with a numeric port
// that TCP has (0 picks a free one): "0.0.0.0:99999" is a usage error, not
// a failure to listen.
func validListenAddr(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	_, err = strconv.ParseUint(port, 10, 16)
	return err == nil
}

// checkTokenFlags checks how tokens are verified, and canonicalises
// --jwt-alg.
func (o *serveOptions) checkTokenFlags() error {
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
	return nil
}

// checkTransport parses --transport.
func (o *serveOptions) checkTransport() error {
	var err error
	o.transport, err = parseTransport(o.Transport)
	return err
}

// checkLimits checks the durations, sizes and the TLS pair.
func (o *serveOptions) checkLimits() error {
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
	if o.MaxSubscribers < maxSubscribersAuto {
		return usageErrorf("serve: --max-subscribers must be 0 (no cap) or more")
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return usageErrorf("serve: --tls-cert and --tls-key go together")
	}
	return nil
}

// checkLogging checks --log-format and --log-level.
func (o *serveOptions) checkLogging() error {
	if _, err := parseLogFormat(o.LogFormat, false); err != nil {
		return usageErrorf("serve: --log-format: %w", err)
	}
	if _, err := parseLogLevel(o.LogLevel); err != nil {
		return usageErrorf("serve: --log-level: %w", err)
	}
	return nil
}

// checkKeyFlags checks that some key, --anonymous or --dev is given, and
// that at most one key comes from stdin.
func (o *serveOptions) checkKeyFlags() error {
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

// hubConfig turns the flags into the hub's configuration. The flags share
// hub.Config's convention (0 switches a heartbeat or a limit off), so values
// pass through unchanged; what no flag sets keeps hub.DefaultConfig's value.
func (o *serveOptions) hubConfig(store history.Store, pub, sub *token.Verifier, logger *slog.Logger) hub.Config {
	cfg := hub.DefaultConfig()
	cfg.Store = store
	cfg.PublisherVerifier, cfg.SubscriberVerifier = pub, sub
	cfg.Anonymous = o.Anonymous || o.Dev
	cfg.ResourceIdentifier = o.ResourceIdentifier
	cfg.CORSOrigins = slices.Clone(o.CORSOrigins)
	cfg.PublishOrigins = slices.Clone(o.PublishOrigins)
	cfg.Heartbeat = o.Heartbeat
	cfg.WriteTimeout = o.WriteTimeout
	cfg.DispatchTimeout = o.DispatchTimeout
	cfg.MaxBodySize = int64(o.MaxBodySize)
	cfg.MaxSelectorBytes = int(o.MaxSelectorBytes)
	cfg.MaxSubscribers = o.maxSubscribers()
	cfg.Subscriptions = o.Subscriptions
	cfg.Draft08Only = o.Draft08Only
	cfg.AccessLog = o.AccessLog
	cfg.TrustedProxies = slices.Clone(o.proxies)
	cfg.ParkIdle = o.ParkIdle
	cfg.Logger = logger
	// Browsers refuse "*" for credentialed requests (cookies, EventSource
	// withCredentials): --dev names whichever origin asks. An explicit
	// --cors-origin list keeps its exact meaning.
	cfg.CORSAnyOriginWithCredentials = o.Dev && len(cfg.CORSOrigins) == 0
	return cfg
}

// storeOptions are what opening the history store needs besides the DSN.
func (o *serveOptions) storeOptions(logger *slog.Logger) storeOptions {
	return storeOptions{
		Retention: history.Retention{MaxUpdates: o.HistorySize, MaxBytes: o.HistoryMaxBytes.bytes(), MaxAge: o.HistoryMaxAge},
		Getenv:    o.Getenv,
		Logger:    logger.With("component", "history"),
		Now:       o.Now,
	}
}

// warnAboutConfig logs the start-up warnings about risky or useless settings.
func (o *serveOptions) warnAboutConfig(logger *slog.Logger, keys serveKeys) {
	hasKey := keys.publisher != nil || keys.subscriber != nil || o.JWKSURL != ""
	// Access tokens are accepted only with a key that someone else could
	// sign with: not without keys, and not with the key --dev generated.
	// Draft-07 tokens never have their iss checked, so setting --issuer
	// costs draft-07-only deployments nothing.
	if hasKey && !keys.generated && len(o.Issuers) == 0 {
		logger.Warn("no --issuer: draft-08 access tokens signed with the key are accepted whatever their iss; " +
			"set --issuer (MERCURE_ISSUER) to the issuer you trust to restrict them and silence this warning " +
			"(draft-07 tokens are not affected)")
	}
	if keys.publisher == nil && o.JWKSURL == "" {
		logger.Warn("no publisher key: nobody can publish (set --jwt-key or --publisher-jwt-key)")
	}
	if keys.subscriber == nil && o.JWKSURL == "" && !o.Anonymous && !o.Dev {
		logger.Warn("no subscriber key and not --anonymous: nobody can subscribe (set --jwt-key or --subscriber-jwt-key)")
	}
	if o.HistoryMaxBytes > 0 && o.HistoryMaxBytes < o.MaxBodySize {
		logger.Warn("--history-max-bytes is smaller than --max-body-size: an update larger than the byte bound is delivered but not kept in history",
			"history_max_bytes", o.HistoryMaxBytes.String(), "max_body_size", o.MaxBodySize.String())
	}
}
