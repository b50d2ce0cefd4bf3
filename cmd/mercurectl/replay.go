package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/mercurectl/mercurectl/internal/client"
	"github.com/mercurectl/mercurectl/internal/sse"
)

// replayOptions are the inputs of `mercurectl replay`.
type replayOptions struct {
	IO         *IOStreams
	HTTPClient func() (*http.Client, error)
	Now        func() time.Time
	Logger     func() *slog.Logger
	// notify relays SIGINT and SIGTERM; tests send fake signals.
	notify signalNotifier

	Conn     connectionOptions
	Sel      selectorOptions
	From     string
	Idle     time.Duration
	AllowGap bool
	Timeout  time.Duration
}

func newReplayCmd(f *factory, runF func(*replayOptions) error) *cobra.Command {
	opts := &replayOptions{IO: f.IO, HTTPClient: f.HTTPClient, Now: f.Now, Logger: f.Logger, notify: notifySignals}
	cmd := &cobra.Command{
		Use:   "replay --topic <selector> [--topic <selector>...] --from <id>|earliest [flags]",
		Short: "Print the history of topics held by a hub, then exit",
		Long: `Print every update matching the selectors that the hub's history holds after
the update --from ID ("earliest" for the whole history), in the formats of
'mercurectl subscribe' (-o text, json, data or sse), then exit 0 by itself
once caught up with what the hub held when replay connected. Updates
published after that are not waited for.

How replay knows it has caught up:
  - against 'mercurectl serve' it is exact: the hub marks the end of the
    history in the stream (with an SSE comment that other clients ignore);
  - against other hubs it asks the subscriptions API, when the hub enables it
    and the credentials allow it, for the id of the newest update, and stops
    when that update arrives;
  - otherwise it stops after --idle (1s by default) without traffic once the
    hub has started sending. A hub that pauses longer than --idle within its
    history ends the replay early: raise --idle for such a hub.

If the hub closes or breaks the stream before the replay is over (a restart),
replay reconnects and resumes after the last update printed, as subscribe
does: nothing is printed twice or left out.

If the hub does not hold --from any more (its history was truncated, or the
id never existed), updates may have been lost: replay says so on stderr and
exits 1, unless --allow-gap, which prints what the hub holds and exits 0.

It also ends on --timeout D (exit 124 if not caught up D after the start) and
on Ctrl-C (SIGINT or SIGTERM: exit 0 after the updates already written; a
second one exits 130 at once). Other exit codes are those of subscribe: 69
hub unreachable, 77 credentials refused, 2 usage error.`,
		Example: `$ mercurectl replay --topic https://example.com/books/1 --from earliest
$ mercurectl replay --topic 'https://example.com/books/:id' --from urn:uuid:0193d7b1-1d4b-7c2f-9a53-6a7d1c3e9f10 -o json
$ mercurectl replay --hub https://hub.example.com --jwt @token.txt --topic '*' --from earliest --idle 3s -o sse > history.sse`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runReplay(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	addSelectorFlags(fl, &opts.Sel)
	fl.StringVar(&opts.From, "from", "", "replay the updates after `ID` (earliest: the whole history); required")
	fl.DurationVar(&opts.Idle, "idle", client.DefaultIdle, "against hubs that do not mark the end of the history: stop after `D` without traffic")
	fl.BoolVar(&opts.AllowGap, "allow-gap", false, "when the hub no longer holds --from, print what it holds instead of failing")
	fl.DurationVar(&opts.Timeout, "timeout", 0, "exit 124 if not caught up `D` after the start (0: none)")
	addConnectionFlags(fl, &opts.Conn, "subscribe")
	return cmd
}

// validate checks the flags before anything is read.
func (o *replayOptions) validate() error {
	if err := o.Sel.validate("replay"); err != nil {
		return err
	}
	if o.From == "" {
		return usageErrorf(`replay: --from is required: an update id, or "earliest" for the whole history`)
	}
	if o.Idle <= 0 {
		return usageErrorf("replay: --idle must be positive")
	}
	if o.Timeout < 0 {
		return usageErrorf("replay: --timeout must not be negative")
	}
	return o.Conn.validate("replay")
}

// clientDeps returns the factory's dependencies that the client needs.
func (o *replayOptions) clientDeps() clientDeps {
	return clientDeps{In: o.IO.In, HTTPClient: o.HTTPClient, Now: o.Now, Logger: o.Logger}
}

func runReplay(ctx context.Context, opts *replayOptions) error {
	run := streamRun{
		cmd: "replay", io: opts.IO, deps: opts.clientDeps(), conn: &opts.Conn,
		output: opts.Sel.Output, timeout: opts.Timeout, notify: opts.notify,
		timedOut: func() error {
			return newTimeoutError(fmt.Errorf("replay: --timeout %s expired before the replay caught up", opts.Timeout))
		},
	}
	return run.run(ctx, func(ctx context.Context, s *stream) error {
		res, err := s.client.Replay(ctx, client.ReplayRequest{
			Selectors: opts.Sel.selectors(),
			From:      opts.From,
			Idle:      opts.Idle,
			AllowGap:  opts.AllowGap,
			Reconnect: true,
			OnEvent: func(ev sse.Event) error {
				if err := s.out.WriteEvent(ev); err != nil {
					return fmt.Errorf("write output: %w", err)
				}
				return nil
			},
			OnConnect: func(ci client.ConnInfo) {
				if ci.Gap() && opts.AllowGap {
					s.diag.warnf("the hub does not hold update %q (its cursor is %q): updates after it may have been lost; replaying what it holds",
						ci.RequestCursor, ci.ResponseCursor)
				}
				if ci.Reconnect {
					s.diag.printf("reconnected to %s", s.client.HubURL())
				}
			},
			OnDisconnect: s.diag.disconnected,
		})
		switch {
		case errors.Is(err, client.ErrHistoryGap):
			return fmt.Errorf("%w (--allow-gap prints what the hub holds)", err)
		case err != nil:
			return err
		}
		if opts.IO.IsStderrTTY() {
			s.diag.printf("replayed %d updates (%s)", res.Events, replayEndText(res.End))
		}
		return nil
	})
}

// replayEndText says how a replay knew it was over.
func replayEndText(e client.ReplayEnd) string {
	switch e {
	case client.ReplayEndMarker:
		return "the hub marked the end of its history"
	case client.ReplayEndCursor:
		return "reached the hub's newest update"
	case client.ReplayEndIdle:
		return "no traffic for --idle"
	case client.ReplayEndEOF:
		return "the hub closed the stream"
	default:
		return e.String()
	}
}
