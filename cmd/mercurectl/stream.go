package main

import (
	"context"
	"errors"
	"time"

	"github.com/mercurectl/mercurectl/internal/client"
)

// The run skeleton that subscribe and replay share: the --timeout context,
// the client, the event writer and the diagnostics, the interrupt wrapper,
// and the mapping of how the stream ended to the command's result.

// errTimeoutExpired is the cause of the context of --timeout, which tells
// its expiry apart from other deadlines.
var errTimeoutExpired = errors.New("--timeout expired")

// streamRun describes one run of a streaming command.
type streamRun struct {
	// cmd names the command in messages.
	cmd  string
	io   *IOStreams
	deps clientDeps
	conn *connectionOptions
	// output is the -o format ("" for the default).
	output string
	// timeout is --timeout (0: none), counted from the start of the command.
	timeout time.Duration
	notify  signalNotifier
	// timedOut returns the command's result when --timeout expired: nil
	// when that is success (subscribe without --count).
	timedOut func() error
}

// stream is what a streaming command works with.
type stream struct {
	client *client.Client
	out    eventWriter
	diag   *diagnostics
}

// run builds the stream and runs fn with it until fn returns, --timeout
// expires or a signal stops it. A first SIGINT/SIGTERM cancels fn's context
// and is a clean stop (exit 0); a second one returns at once (exit 130).
func (r streamRun) run(ctx context.Context, fn func(context.Context, *stream) error) error {
	// --timeout counts from the start of the command, connection included
	// (docs/cli.md#subscribe), so that a script's wait is bounded.
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, r.timeout, errTimeoutExpired)
		defer cancel()
	}
	c, err := r.conn.newClient(r.cmd, r.deps)
	if err != nil {
		return err
	}
	s := &stream{client: c, out: newEventWriter(r.output, r.io, r.deps.Now), diag: newDiagnostics(r.io)}
	stopped, err := runInterruptible(ctx, r.notify, func(ctx context.Context) error { return fn(ctx, s) })
	switch {
	case err == nil:
		return nil
	case isInterrupted(err):
		return err
	case errors.Is(context.Cause(ctx), errTimeoutExpired) && errors.Is(err, context.DeadlineExceeded):
		return r.timedOut()
	case stopped && errors.Is(err, context.Canceled):
		return nil // Ctrl-C: a clean stop
	}
	return r.conn.explain(r.cmd, err)
}

// isInterrupted reports whether err is a forced stop (exit 130).
func isInterrupted(err error) bool {
	_, ok := errors.AsType[*interruptedError](err)
	return ok
}
