package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
)

// diagnostics writes the notices of the client commands to stderr
// (reconnections, warnings), prefixed like errors so that they read as
// mercurectl's own lines amid the data of another stream. Data never goes
// through it.
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

// disconnected reports a lost connection and when the next attempt is.
func (d *diagnostics) disconnected(err error, delay time.Duration) {
	d.printf("connection lost (%s); reconnecting in %s", disconnectReason(err), delay.Round(time.Millisecond))
}

// disconnectReason says why a connection ended (nil: the hub closed it).
func disconnectReason(err error) string {
	if err == nil {
		return "the hub closed the stream"
	}
	return err.Error()
}
