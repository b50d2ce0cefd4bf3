package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// factory supplies the dependencies of commands, lazily where they cost
// something to build, so that a command pays only for what it uses and tests
// can replace any of it. Commands copy what they need into
// their options struct; tests build a factory with only the fields they use.
type factory struct {
	// IO holds the standard streams.
	IO *IOStreams
	// HTTPClient returns the client for talking to hubs and JWKS endpoints.
	HTTPClient func() (*http.Client, error)
	// Now is the clock.
	Now func() time.Time
	// Getenv reads the environment; commands never call os.Getenv.
	Getenv func(string) string
	// Logger returns the logger of client commands (serve builds its own from
	// --log-format and --log-level).
	Logger func() *slog.Logger
}

// newFactory wires the production dependencies.
func newFactory(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *factory {
	// IO depends on the process's streams (terminal detection) and on
	// NO_COLOR, CLICOLOR, CLICOLOR_FORCE, COLORTERM and TERM.
	ios := newIOStreams(stdin, stdout, stderr, getenv)
	return &factory{
		IO: ios,
		// HTTPClient depends on nothing but the proxy variables
		// (HTTPS_PROXY, NO_PROXY...) read by net/http. It has no overall
		// timeout because subscriptions are long-lived streams: commands
		// bound their requests with contexts instead.
		HTTPClient: sync.OnceValues(func() (*http.Client, error) {
			return &http.Client{Transport: newHTTPTransport()}, nil
		}),
		// Now is the wall clock.
		Now: time.Now,
		// Getenv is the process environment.
		Getenv: getenv,
		// Logger depends on IO: text on stderr, warnings and errors only.
		Logger: sync.OnceValue(func() *slog.Logger {
			return slog.New(slog.NewTextHandler(ios.ErrOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}),
	}
}

// newHTTPTransport returns the transport of the factory's client: the
// standard one, with bounded connection set-up so that an unreachable hub is
// reported in seconds rather than minutes.
func newHTTPTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ForceAttemptHTTP2 = true
	return t
}
