package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/hub"
)

const (
	// readHeaderTimeout bounds how long a client may take to send request
	// headers (slowloris); bodies and streams are bounded by the hub.
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes keep-alive connections idle for this long.
	idleTimeout = 2 * time.Minute
)

// hubServer is what serve runs: the hub's listener (with TLS), the metrics
// listener, the history store, the hub, their HTTP servers and the address
// file. Open starts them in that order and, when a step fails, undoes what
// the earlier steps did; Close undoes everything, in the reverse order. Each
// step that opens something registers how to undo it (push), so a new
// resource is one step and one push, not a longer clean-up ladder.
type hubServer struct {
	opts   *serveOptions
	logger *slog.Logger
	// newHub builds the hub: hub.New, which tests replace to make it fail.
	newHub func(hub.Config) (*hub.Hub, error)

	// undo holds what Open did, in order; Close runs it backwards.
	undo []undoStep

	keys      serveKeys
	ln        net.Listener
	tls       *tls.Config  // nil without --tls-cert
	mln       net.Listener // nil without --metrics-addr
	store     history.Store
	storeDesc string // the store, for the start-up log (no secrets)
	hub       *hub.Hub
	http      *http.Server
	metrics   *metricsServer // nil without --metrics-addr
	// cfg is the hub's configuration, for the start-up summary.
	cfg hub.Config
	url string // the hub URL, for logs and the --dev banner
	// audience is the aud access tokens must carry; verifies is set when
	// some token can be verified at all.
	audience string
	verifies bool
	// devJWT and devSubJWT are the tokens --dev hands out ("" otherwise).
	devJWT, devSubJWT string
	// addrWritten is set once the address file is written: serve removes
	// only a file it wrote, never one another hub wrote at that path.
	addrWritten bool
	// failed receives the error of an HTTP server that stopped by itself.
	failed chan error
}

// undoStep undoes one step of Open. Only failures to close what holds data
// (the hub, the history) are errors; the others are logged or ignored.
type undoStep func(ctx context.Context) error

func newHubServer(opts *serveOptions, logger *slog.Logger) *hubServer {
	return &hubServer{opts: opts, logger: logger, newHub: hub.New, failed: make(chan error, 2)}
}

func (s *hubServer) push(u undoStep) { s.undo = append(s.undo, u) }

// Open starts the hub and returns once it serves, with the start-up lines
// logged and the address file (if any) written. ctx bounds the start-up
// (connecting to Redis, for one); background work that must last as long as
// the hub, such as the JWKS refresh, is not cancelled with it but by Close.
// On failure Open returns the first error, joined with any error met while
// undoing what it had done.
func (s *hubServer) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
			defer cancel()
			err = errors.Join(err, s.Close(closeCtx))
		}
	}()
	o := s.opts
	// Pushed first so that it runs last: whoever watches the address file
	// sees it go once everything, the history file included, is released.
	s.push(func(context.Context) error { s.removeAddrFile(); return nil })

	// Tokens must still verify while in-flight publishes finish after the
	// first signal, so the JWKS refresh ends with Close, not with ctx.
	bgCtx, cancelBg := context.WithCancel(context.WithoutCancel(ctx))
	s.push(func(context.Context) error { cancelBg(); return nil })
	if s.keys, err = o.readKeys(); err != nil {
		return err
	}
	pub, sub, err := o.verifiers(bgCtx, s.keys, s.logger)
	if err != nil {
		return err
	}
	if err := s.loadTLS(); err != nil {
		return err
	}
	// Listen before opening the store, so that a port in use is reported at
	// once (and before touching the history file another hub may hold).
	if err := s.listen(ctx); err != nil {
		return err
	}
	if err := s.openStore(ctx); err != nil {
		return err
	}
	if o.Dev {
		s.devJWT, s.devSubJWT = o.devTokens(s.keys, s.logger)
	}
	// The audience of access tokens is pinned, never taken from requests:
	// without --resource-identifier, it is the URL of the listen address.
	s.url = publicURL(s.ln.Addr(), s.tls != nil)
	cfg := o.hubConfig(s.store, pub, sub, s.logger)
	if cfg.ResourceIdentifier == "" {
		cfg.ResourceIdentifier = s.url
	}
	s.audience, s.verifies = cfg.ResourceIdentifier, pub != nil || sub != nil
	cfg.UI = o.uiHandler(s.keys, s.devJWT, cfg.ResourceIdentifier)
	s.cfg = cfg
	if err := s.buildHub(cfg); err != nil {
		return err
	}
	s.startServers(bgCtx)
	s.logStart()
	// The address file comes last: whoever waits for it finds the start-up
	// logs (and the --dev token) already written.
	if o.AddrFile != "" {
		if err := writeAddrFile(o.AddrFile, s.ln.Addr().String()); err != nil {
			return fmt.Errorf("serve: --addr-file: %w", err)
		}
		s.addrWritten = true
	}
	return nil
}

// loadTLS reads --tls-cert and --tls-key.
func (s *hubServer) loadTLS() error {
	if s.opts.TLSCert == "" {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(s.opts.TLSCert, s.opts.TLSKey)
	if err != nil {
		return usageErrorf("serve: --tls-cert/--tls-key: %w", err)
	}
	s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return nil
}

// listen binds --addr and --metrics-addr.
func (s *hubServer) listen(ctx context.Context) error {
	ln, err := listen(ctx, s.opts.Addr, "--addr")
	if err != nil {
		return err
	}
	// Accept errors for lack of descriptors back off and are logged once
	// per interval, instead of once per retry by the HTTP server.
	s.ln = &acceptListener{Listener: ln, logger: s.logger}
	// Closing a listener the HTTP server already closed is harmless.
	s.push(func(context.Context) error { _ = ln.Close(); return nil })
	if s.opts.MetricsAddr == "" {
		return nil
	}
	mln, err := listen(ctx, s.opts.MetricsAddr, "--metrics-addr")
	if err != nil {
		return err
	}
	s.mln = mln
	s.push(func(context.Context) error { _ = mln.Close(); return nil })
	return nil
}

// openStore opens the history store that --transport names.
func (s *hubServer) openStore(ctx context.Context) error {
	store, desc, err := openStore(ctx, s.opts.transport, s.opts.storeOptions(s.logger))
	if err != nil {
		if _, ok := errors.AsType[*usageError](err); ok {
			return &usageError{err: fmt.Errorf("serve: %w", err)}
		}
		if strings.HasPrefix(err.Error(), "open history") { // the store says so already
			return fmt.Errorf("serve: %w", err)
		}
		return fmt.Errorf("serve: open history: %w", err)
	}
	s.store, s.storeDesc = store, desc
	s.push(func(context.Context) error {
		if err := store.Close(); err != nil {
			return fmt.Errorf("close history: %w", err)
		}
		return nil
	})
	return nil
}

// buildHub builds the hub on the store.
func (s *hubServer) buildHub(cfg hub.Config) error {
	h, err := s.newHub(cfg)
	if err != nil {
		if errors.Is(err, hub.ErrInvalidConfig) {
			return &usageError{err: fmt.Errorf("serve: %w", err)}
		}
		return fmt.Errorf("serve: %w", err)
	}
	s.hub = h
	s.push(func(context.Context) error {
		if err := h.Close(); err != nil {
			return fmt.Errorf("close hub: %w", err)
		}
		return nil
	})
	return nil
}

// startServers starts serving the hub (and the metrics) on the listeners.
// Requests get contexts derived from bgCtx.
func (s *hubServer) startServers(bgCtx context.Context) {
	s.http = &http.Server{
		Handler:           s.hub,
		TLSConfig:         s.tls,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return bgCtx },
	}
	if s.mln != nil {
		s.metrics = newMetricsServer(s.mln, s.hub, s.store, s.logger)
	}
	go func() { s.report(s.serve()) }()
	if s.metrics != nil {
		go func() { s.report(s.metrics.serve()) }()
	}
	s.push(s.shutdownServers)
}

// report passes on the error of a server that stopped by itself.
func (s *hubServer) report(err error) {
	if err != nil {
		s.failed <- err
	}
}

// Failed receives the error of an HTTP server that stopped by itself.
func (s *hubServer) Failed() <-chan error { return s.failed }

// serve runs the hub's HTTP server until it is shut down.
func (s *hubServer) serve() error {
	var err error
	if s.tls != nil {
		err = s.http.ServeTLS(s.ln, "", "") // the certificate is in TLSConfig; HTTP/2 is negotiated
	} else {
		err = s.http.Serve(s.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// streamPath names, for the start-up log, the path idle streams take:
// "parked" (no goroutine while idle) or "goroutine per stream".
func streamPath(h *hub.Hub, tls bool) string {
	if h.Parking() && !tls {
		return "parked"
	}
	return "goroutine per stream"
}

// logStart logs the start-up summary (serve_summary.go), the warnings about
// the configuration, and with --dev the banner.
func (s *hubServer) logStart() {
	s.logger.Info("listening", s.listeningAttrs(s.cfg)...)
	s.logger.Info("configuration", s.hubAttrs(s.cfg)...)
	s.opts.warnAboutConfig(s.logger, s.keys)
	if s.opts.ResourceIdentifier == "" && s.verifies {
		s.logger.Warn("no --resource-identifier: draft-08 access tokens must carry the listen address as aud; behind a proxy or under a public name, set --resource-identifier to the public hub URL",
			"aud", s.audience)
	}
	if s.opts.Dev {
		s.opts.printDevBanner(s.url, s.storeDesc, s.keys, s.devJWT, s.devSubJWT)
	}
}

// shutdownServers stops accepting connections, ends open streams and lets
// in-flight requests (publishes) finish until ctx is done; requests still
// running then are cut, with a warning.
func (s *hubServer) shutdownServers(ctx context.Context) error {
	if s.metrics != nil {
		s.metrics.draining.Store(true)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		// Closes the listener at once, then waits for in-flight requests.
		if err := s.http.Shutdown(ctx); err != nil {
			s.logger.Warn("shutdown timeout expired: closing the remaining connections", "timeout", s.opts.ShutdownTimeout.String())
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
	return nil
}

// Close undoes what Open did, in the reverse order: the servers (ending the
// streams and waiting for in-flight requests until ctx is done), the hub, the
// history store, the listeners, the background work, and last the address
// file. It returns the failures to close the hub or the history. Calling it
// again does nothing.
func (s *hubServer) Close(ctx context.Context) error {
	var errs []error
	for i := len(s.undo) - 1; i >= 0; i-- {
		if err := s.undo[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.undo = nil
	return errors.Join(errs...)
}

// removeAddrFile removes the --addr-file, if serve wrote it.
func (s *hubServer) removeAddrFile() {
	path := s.opts.AddrFile
	if !s.addrWritten {
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.logger.Warn("cannot remove the address file", "path", path, "err", err)
	}
}
