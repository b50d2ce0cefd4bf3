package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes, which scripts rely on: `mercurectl help exit-codes` and
// docs/cli.md#exit-codes document them (see exitCodeDocs), and they never
// change meaning.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitUnreachable = 69  // sysexits.h EX_UNAVAILABLE
	exitCredentials = 77  // sysexits.h EX_NOPERM
	exitTimeout     = 124 // as timeout(1)
	exitInterrupted = 130 // 128 + SIGINT, as shells report a Ctrl-C
)

// exitCodeDocs describes every exit code, in order, for the help topic.
var exitCodeDocs = []struct {
	code    int
	meaning string
}{
	{exitOK, "success, including a clean stop of serve, subscribe or replay on SIGINT/SIGTERM"},
	{exitError, "any other failure"},
	{exitUsage, "usage error: bad flag, missing argument, invalid value"},
	{exitUnreachable, "hub unreachable: connection refused, DNS failure, TLS failure"},
	{exitCredentials, "the hub refused the credentials (HTTP 401 or 403)"},
	{exitTimeout, "--timeout expired before the command's goal was met"},
	{exitInterrupted, "interrupted a second time (forced)"},
}

// usageError is a bad invocation: an unknown flag or command, a missing
// argument, an invalid value. Exit code 2; the top level also prints the
// command's usage line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf returns a *usageError with a formatted message (%w wraps).
func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// unreachableError means the hub could not be reached at all: connection
// refused, DNS failure, TLS failure. Exit code 69.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// newUnreachableError marks err as "hub unreachable".
func newUnreachableError(err error) error { return &unreachableError{err: err} }

// credentialsError means the hub refused the credentials (HTTP 401 or 403).
// Exit code 77.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// newCredentialsError marks err as "credentials refused".
func newCredentialsError(err error) error { return &credentialsError{err: err} }

// timeoutError means --timeout expired before the command's goal was met.
// Exit code 124.
type timeoutError struct{ err error }

func (e *timeoutError) Error() string { return e.err.Error() }
func (e *timeoutError) Unwrap() error { return e.err }

// newTimeoutError marks err as "--timeout expired".
func newTimeoutError(err error) error { return &timeoutError{err: err} }

// interruptedError means a second SIGINT/SIGTERM forced the command to stop
// without finishing its clean-up. Exit code 130. (A first signal is a clean
// stop and not an error at all.)
type interruptedError struct{}

func (*interruptedError) Error() string { return "interrupted again: stopped without a clean shutdown" }

// exitCode maps an error returned by a command to the process exit code. It
// is the only place where errors become exit codes, so that every command
// maps the same failure to the same code.
func exitCode(err error) int {
	var (
		interrupted *interruptedError
		usage       *usageError
		credentials *credentialsError
		unreachable *unreachableError
		timeout     *timeoutError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &interrupted):
		return exitInterrupted
	case errors.As(err, &usage):
		return exitUsage
	case errors.As(err, &credentials):
		return exitCredentials
	case errors.As(err, &unreachable):
		return exitUnreachable
	case errors.As(err, &timeout):
		return exitTimeout
	default:
		return exitError
	}
}

// printError writes err once, as "mercurectl: <message>", and for usage
// errors the usage line of cmd (the command that failed) and where to get
// help. cmd may be nil.
func printError(w io.Writer, cmd *cobra.Command, err error) {
	// Nothing useful can be done if stderr itself fails.
	_, _ = fmt.Fprintf(w, "mercurectl: %v\n", err)
	if _, ok := errors.AsType[*usageError](err); !ok || cmd == nil {
		return
	}
	_, _ = fmt.Fprintf(w, "Usage: %s\n", cmd.UseLine())
	_, _ = fmt.Fprintf(w, "Run '%s --help' for more information.\n", cmd.CommandPath())
}
