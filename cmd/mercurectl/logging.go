package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Log formats accepted by --log-format.
const (
	logFormatAuto = "auto"
	logFormatText = "text"
	logFormatJSON = "json"
)

// parseLogFormat checks a --log-format value and resolves "auto": text for a
// person at a terminal, JSON for a log collector otherwise.
func parseLogFormat(format string, tty bool) (string, error) {
	switch strings.ToLower(format) {
	case logFormatAuto, "":
		if tty {
			return logFormatText, nil
		}
		return logFormatJSON, nil
	case logFormatText:
		return logFormatText, nil
	case logFormatJSON:
		return logFormatJSON, nil
	}
	return "", fmt.Errorf("unknown log format %q (want auto, text or json)", format)
}

// parseLogLevel reads a --log-level value: debug, info, warn or error, in any
// case, optionally with an offset as slog writes it ("info+2").
func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "warning" || s == "WARNING" {
		s = "warn"
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
	}
	return l, nil
}

// newLogger returns a structured logger writing to w (stderr: logs never go
// to stdout). format is auto, text or json; tty says whether w is a
// terminal, for "auto".
func newLogger(w io.Writer, tty bool, format, level string) (*slog.Logger, error) {
	f, err := parseLogFormat(format, tty)
	if err != nil {
		return nil, err
	}
	l, err := parseLogLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: l}
	if f == logFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
