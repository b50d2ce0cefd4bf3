package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

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
history. Before the first update it resumes from the position the hub gave
when subscribe connected (its response cursor), so a quiet subscriber loses
nothing either; against a hub that gives none, a warning says that a
reconnection before the first update could miss updates. Reconnections are
reported on stderr; one refused with 401/403 exits 77.

--last-event-id ID starts after the update ID ("earliest" for the whole
history); stderr warns if the hub no longer holds ID. To print history and
stop once caught up, use 'mercurectl replay'.

Without credentials, subscribe is anonymous and receives public updates (when
the hub allows it); --jwt or --jwt-key (which mints a subscriber token for
exactly these selectors) gives access to private updates too.

In draft-08, a selector with a path segment starting with ':' or '*' is sent
as a URL pattern and any other as an exact topic. In draft-07 every selector
is sent as a topic, which the hub reads as an exact topic or a URI template.
URI templates ({id}) exist only in draft-07: with --protocol auto, a
subscription with one (or with --match-type template) is sent in draft-07,
which hubs serving both generations accept; a hub that serves draft-08 only
refuses it, and the error names the URL pattern to use instead, as
--protocol 8 does. --match-type forces one type for every selector.`,
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

// clientDeps returns the factory's dependencies that the client needs.
func (o *subscribeOptions) clientDeps() clientDeps {
	return clientDeps{In: o.IO.In, HTTPClient: o.HTTPClient, Now: o.Now, Logger: o.Logger}
}

func runSubscribe(ctx context.Context, opts *subscribeOptions) error {
	received := 0
	run := streamRun{
		cmd: "subscribe", io: opts.IO, deps: opts.clientDeps(), conn: &opts.Conn,
		output: opts.Sel.Output, timeout: opts.Timeout, notify: opts.notify,
		timedOut: func() error {
			if opts.Count > 0 {
				return newTimeoutError(fmt.Errorf("subscribe: --timeout %s expired after %d of %d updates", opts.Timeout, received, opts.Count))
			}
			return nil // --timeout without --count is how long to listen
		},
	}
	return run.run(ctx, func(ctx context.Context, s *stream) error {
		warnedNoCursor := false
		return s.client.Subscribe(ctx, client.SubscribeRequest{
			Selectors:   opts.Sel.selectors(),
			LastEventID: opts.LastEventID,
			Reconnect:   true,
			OnEvent: func(ev sse.Event) error {
				if err := s.out.WriteEvent(ev); err != nil {
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
					s.diag.warnf("the hub does not hold update %q any more (its cursor is %q): updates after it may have been lost",
						ci.RequestCursor, ci.ResponseCursor)
				case ci.Reconnect:
					s.diag.printf("reconnected to %s", s.client.HubURL())
				}
				if ci.ResumeCursor == "" && received == 0 && !warnedNoCursor {
					// Only the hub's cursor lets a subscriber that has
					// received nothing resume without loss.
					warnedNoCursor = true
					s.diag.warnf("the hub sent no cursor: until the first update arrives, a reconnection could miss updates published meanwhile (--last-event-id avoids this)")
				}
				if !ci.Reconnect && opts.IO.IsStderrTTY() {
					s.diag.printf("subscribed to %s (%s); Ctrl-C to stop", s.client.HubURL(), ci.Protocol)
				}
			},
			OnDisconnect: s.diag.disconnected,
		})
	})
}
