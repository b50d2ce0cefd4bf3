package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mercurectl/mercurectl/internal/client"
	"github.com/mercurectl/mercurectl/internal/match"
	"github.com/mercurectl/mercurectl/internal/sse"
)

// selectorOptions are the flags that say what to receive and how to print
// it, shared by subscribe and replay.
type selectorOptions struct {
	Topics    []string
	MatchType string
	Output    string
}

// addSelectorFlags adds --topic, --match-type and --output to fl.
func addSelectorFlags(fl *pflag.FlagSet, o *selectorOptions) {
	fl.StringArrayVarP(&o.Topics, "topic", "t", nil, "topic `SELECTOR` (repeatable): a topic, * for every topic, a URL pattern (draft-08) or URI template (draft-07)")
	fl.StringVar(&o.MatchType, "match-type", "", "how every selector is sent (`TYPE`): exact, urlpattern or template; default: guessed from each selector")
	fl.StringVarP(&o.Output, "output", "o", "", outputHelp)
}

// validate checks the selector flags.
func (o *selectorOptions) validate(cmd string) error {
	if len(o.Topics) == 0 {
		return usageErrorf("%s: at least one --topic is required (* for every topic)", cmd)
	}
	for _, t := range o.Topics {
		if t == "" {
			return usageErrorf("%s: --topic must not be empty", cmd)
		}
	}
	switch o.MatchType {
	case client.MatchAuto, match.TypeExact, match.TypeURLPattern, match.TypeTemplate:
	default:
		return usageErrorf("%s: --match-type %q: want exact, urlpattern or template", cmd, o.MatchType)
	}
	return validOutput(cmd, o.Output)
}

// selectors returns the selectors to send.
func (o *selectorOptions) selectors() []client.Selector {
	return client.Selectors(o.MatchType, o.Topics...)
}

// subscribeOptions are the inputs of `mercurectl subscribe`.
type subscribeOptions struct {
	IO         *IOStreams
	HTTPClient func() (*http.Client, error)
	Now        func() time.Time
	Logger     func() *slog.Logger
	// notify relays SIGINT and SIGTERM; tests send fake signals.
	notify signalNotifier

	Conn        connectionOptions
	Sel         selectorOptions
	LastEventID string
	Count       int
	Timeout     time.Duration
}

func newSubscribeCmd(f *factory, runF func(*subscribeOptions) error) *cobra.Command {
	opts := &subscribeOptions{IO: f.IO, HTTPClient: f.HTTPClient, Now: f.Now, Logger: f.Logger, notify: notifySignals}
	cmd := &cobra.Command{
		Use:   "subscribe --topic <selector> [--topic <selector>...] [flags]",
		Short: "Stream the updates of topics from a hub",
		Long: `Subscribe to topic selectors and write every update received to stdout, one
per line (-o json, the default when stdout is not a terminal), styled for
people (-o text, the default on a terminal), as bare data (-o data) or in the
SSE wire format (-o sse).

subscribe runs until one of these:
  --count N     exit 0 once N updates were written;
  --timeout D   D after the start: exit 0 without --count, and with --count
                exit 124 if fewer than N updates arrived;
  Ctrl-C        (SIGINT or SIGTERM) exit 0; a second one exits 130 at once.

If the first connection fails, subscribe exits at once: 69 when the hub is
unreachable, 77 when it refuses the credentials (401/403). Once connected, it
reconnects after network errors and hub restarts, with a capped exponential
backoff that honours the hub's retry field, and resumes after the last update
received (Last-Event-ID): nothing is lost or repeated when the hub keeps
history. Reconnections are reported on stderr; one refused with 401/403
exits 77.

--last-event-id ID starts after the update ID ("earliest" for the whole
history); stderr warns if the hub no longer holds ID. To print history and
stop once caught up, use 'mercurectl replay'.

Without credentials, subscribe is anonymous and receives public updates (when
the hub allows it); --jwt or --jwt-key (which mints a subscriber token for
exactly these selectors) gives access to private updates too.

In draft-08, a selector with a path segment starting with ':' or '*' is sent
as a URL pattern and any other as an exact topic; a URI template ({id}) is a
usage error that suggests the URL pattern. In draft-07 every selector is sent
as a topic, which the hub reads as an exact topic or a URI template.
--match-type forces one type for every selector.`,
		Example: `$ mercurectl subscribe --topic https://example.com/books/1
$ mercurectl subscribe --topic 'https://example.com/books/:id' -o json | jq .data
$ mercurectl subscribe --topic '*' --count 1 --timeout 30s -o data
$ mercurectl subscribe --hub https://hub.example.com --jwt @token.txt --topic https://example.com/inbox --last-event-id earliest`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runSubscribe(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	addSelectorFlags(fl, &opts.Sel)
	fl.StringVar(&opts.LastEventID, "last-event-id", "", "start after the update `ID` (earliest: all the history the hub holds)")
	fl.IntVarP(&opts.Count, "count", "n", 0, "exit 0 after `N` updates (0: no limit)")
	fl.DurationVar(&opts.Timeout, "timeout", 0, "stop `D` after the start: exit 0, or 124 when --count updates did not all arrive (0: none)")
	addConnectionFlags(fl, &opts.Conn, "subscribe")
	return cmd
}

// validate checks the flags before anything is read.
func (o *subscribeOptions) validate() error {
	if err := o.Sel.validate("subscribe"); err != nil {
		return err
	}
	if o.Count < 0 {
		return usageErrorf("subscribe: --count must not be negative")
	}
	if o.Timeout < 0 {
		return usageErrorf("subscribe: --timeout must not be negative")
	}
	return o.Conn.validate("subscribe")
}

// errTimeoutExpired is the cause of the --timeout context.
var errTimeoutExpired = errors.New("--timeout expired")

func runSubscribe(ctx context.Context, opts *subscribeOptions) error {
	// --timeout counts from the start of the command, connection included
	// (docs/cli.md#subscribe), so that a script's wait is bounded.
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, opts.Timeout, errTimeoutExpired)
		defer cancel()
	}
	c, err := opts.Conn.newClient("subscribe", clientDeps{
		In: opts.IO.In, HTTPClient: opts.HTTPClient, Now: opts.Now, Logger: opts.Logger,
	})
	if err != nil {
		return err
	}
	w := newEventWriter(opts.Sel.Output, opts.IO, opts.Now)
	diag := newDiagnostics(opts.IO)
	received := 0
	req := client.SubscribeRequest{
		Selectors:   opts.Sel.selectors(),
		LastEventID: opts.LastEventID,
		Reconnect:   true,
		OnEvent: func(ev sse.Event) error {
			if err := w.WriteEvent(ev); err != nil {
				return fmt.Errorf("write output: %w", err)
			}
			received++
			if opts.Count > 0 && received >= opts.Count {
				return client.ErrStop
			}
			return nil
		},
		OnConnect: func(ci client.ConnInfo) {
			switch {
			case ci.Gap():
				diag.warnf("the hub does not hold update %q any more (its cursor is %q): updates after it may have been lost",
					ci.RequestCursor, ci.ResponseCursor)
			case ci.Reconnect:
				diag.printf("reconnected to %s", c.HubURL())
			}
			if !ci.Reconnect && opts.IO.IsStderrTTY() {
				diag.printf("subscribed to %s (%s); Ctrl-C to stop", c.HubURL(), ci.Protocol)
			}
		},
		OnDisconnect: func(err error, delay time.Duration) {
			diag.printf("connection lost (%s); reconnecting in %s", disconnectReason(err), delay.Round(time.Millisecond))
		},
	}
	stopped, err := runInterruptible(ctx, opts.notify, func(ctx context.Context) error {
		return c.Subscribe(ctx, req)
	})
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*interruptedError](err); ok {
		return err
	}
	switch {
	case errors.Is(context.Cause(ctx), errTimeoutExpired) && errors.Is(err, context.DeadlineExceeded):
		if opts.Count > 0 {
			return newTimeoutError(fmt.Errorf("subscribe: --timeout %s expired after %d of %d updates", opts.Timeout, received, opts.Count))
		}
		return nil
	case stopped && errors.Is(err, context.Canceled):
		return nil // Ctrl-C: a clean stop
	}
	return opts.Conn.explain("subscribe", err)
}

// disconnectReason says why a connection ended (nil: the hub closed it).
func disconnectReason(err error) string {
	if err == nil {
		return "the hub closed the stream"
	}
	return err.Error()
}

// diagnostics writes notices to stderr, prefixed like errors.
type diagnostics struct {
	ios  *IOStreams
	warn string
}

func newDiagnostics(ios *IOStreams) *diagnostics {
	return &diagnostics{ios: ios, warn: ios.ErrRenderer().NewStyle().Foreground(lipgloss.Color("3")).Render("warning:")}
}

// printf writes a notice.
func (d *diagnostics) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(d.ios.ErrOut, "mercurectl: "+format+"\n", args...)
}

// warnf writes a warning.
func (d *diagnostics) warnf(format string, args ...any) {
	_, _ = fmt.Fprintf(d.ios.ErrOut, "mercurectl: %s %s\n", d.warn, strings.TrimSpace(fmt.Sprintf(format, args...)))
}
