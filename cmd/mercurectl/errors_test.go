package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestExitCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"plain error", errors.New("boom"), 1},
		{"context canceled", context.Canceled, 1},
		{"usage", usageErrorf("bad flag"), 2},
		{"wrapped usage", fmt.Errorf("serve: %w", usageErrorf("bad")), 2},
		{"joined usage", errors.Join(errors.New("x"), usageErrorf("bad")), 2},
		{"unreachable", newUnreachableError(errors.New("connection refused")), 69},
		{"wrapped unreachable", fmt.Errorf("publish: %w", newUnreachableError(errors.New("dns"))), 69},
		{"credentials", newCredentialsError(errors.New("401")), 77},
		{"timeout", newTimeoutError(errors.New("2 of 3 updates")), 124},
		{"interrupted", &interruptedError{}, 130},
		{"interrupted wins over usage", errors.Join(usageErrorf("x"), &interruptedError{}), 130},
		{"usage wins over unreachable", errors.Join(newUnreachableError(errors.New("x")), usageErrorf("y")), 2},
		{"credentials win over unreachable", newCredentialsError(newUnreachableError(errors.New("x"))), 77},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := exitCode(tt.err); got != tt.want {
				t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// The help topic lists every exit code that exitCode can return, and the
// constants have the documented values (docs/cli.md#exit-codes).
func TestExitCodeDocs(t *testing.T) {
	t.Parallel()
	want := []int{0, 1, 2, 69, 77, 124, 130}
	if len(exitCodeDocs) != len(want) {
		t.Fatalf("exitCodeDocs has %d codes, want %d", len(exitCodeDocs), len(want))
	}
	f, ts := newTestFactory(nil)
	topic := newExitCodesTopic(f)
	topic.HelpFunc()(topic, nil)
	for i, d := range exitCodeDocs {
		if d.code != want[i] {
			t.Errorf("exitCodeDocs[%d].code = %d, want %d", i, d.code, want[i])
		}
		line := fmt.Sprintf("  %-5s %s", strconv.Itoa(d.code), d.meaning)
		if !strings.Contains(ts.Out.String(), line) {
			t.Errorf("help exit-codes lacks %q", line)
		}
	}
}

func TestPrintError(t *testing.T) {
	t.Parallel()
	cmd := &cobra.Command{Use: "serve [flags]"}
	root := &cobra.Command{Use: "mercurectl"}
	root.AddCommand(cmd)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"plain", errors.New("cannot listen"), "mercurectl: cannot listen\n"},
		{"usage", usageErrorf("serve: no key"), "mercurectl: serve: no key\nUsage: mercurectl serve [flags]\nRun 'mercurectl serve --help' for more information.\n"},
		{"timeout", newTimeoutError(errors.New("1 of 2 updates")), "mercurectl: 1 of 2 updates\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			printError(&b, cmd, tt.err)
			if b.String() != tt.want {
				t.Errorf("printError wrote %q, want %q", b.String(), tt.want)
			}
		})
	}
}
