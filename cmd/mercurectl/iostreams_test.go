package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"
)

func TestColorPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     envMap
		tty     bool
		noColor bool // --no-color
		want    bool
	}{
		{"terminal", nil, true, false, true},
		{"pipe", nil, false, false, false},
		{"NO_COLOR on a terminal", envMap{"NO_COLOR": "1"}, true, false, false},
		{"NO_COLOR=0 still disables", envMap{"NO_COLOR": "0"}, true, false, false},
		{"empty NO_COLOR is unset", envMap{"NO_COLOR": ""}, true, false, true},
		{"--no-color", nil, true, true, false},
		{"CLICOLOR=0", envMap{"CLICOLOR": "0"}, true, false, false},
		{"CLICOLOR=1 on a pipe", envMap{"CLICOLOR": "1"}, false, false, false},
		{"CLICOLOR_FORCE on a pipe", envMap{"CLICOLOR_FORCE": "1"}, false, false, true},
		{"CLICOLOR_FORCE=0", envMap{"CLICOLOR_FORCE": "0"}, false, false, false},
		{"CLICOLOR_FORCE beats CLICOLOR=0", envMap{"CLICOLOR_FORCE": "1", "CLICOLOR": "0"}, false, false, true},
		{"NO_COLOR beats CLICOLOR_FORCE", envMap{"CLICOLOR_FORCE": "1", "NO_COLOR": "1"}, true, false, false},
		{"--no-color beats CLICOLOR_FORCE", envMap{"CLICOLOR_FORCE": "1"}, true, true, false},
		{"TERM=dumb", envMap{"TERM": "dumb"}, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			ios := newIOStreams(strings.NewReader(""), &out, &errOut, tt.env.Getenv)
			ios.SetStdoutTTY(tt.tty)
			ios.SetStderrTTY(tt.tty)
			if tt.noColor {
				ios.DisableColor()
			}
			if got := ios.ColorEnabled(); got != tt.want {
				t.Errorf("ColorEnabled() = %v, want %v", got, tt.want)
			}
			if got := ios.ErrColorEnabled(); got != tt.want {
				t.Errorf("ErrColorEnabled() = %v, want %v", got, tt.want)
			}
			// What the renderer writes follows the same decision.
			styled := ios.Renderer().NewStyle().Bold(true).Foreground(lipgloss.Color("2")).Render("ok")
			if hasEscape := strings.Contains(styled, "\x1b["); hasEscape != tt.want {
				t.Errorf("Renderer().Render = %q: escape sequences %v, want %v", styled, hasEscape, tt.want)
			}
		})
	}
}

// Colour is decided per stream: a terminal stderr can be styled while a
// piped stdout is not.
func TestColorPerStream(t *testing.T) {
	t.Parallel()
	ios := newIOStreams(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{}, envMap{}.Getenv)
	ios.SetStdoutTTY(false)
	ios.SetStderrTTY(true)
	if ios.ColorEnabled() {
		t.Error("piped stdout has colour")
	}
	if !ios.ErrColorEnabled() {
		t.Error("terminal stderr has no colour")
	}
	if s := ios.Renderer().NewStyle().Bold(true).Render("x"); s != "x" {
		t.Errorf("stdout renderer styled %q", s)
	}
	if s := ios.ErrRenderer().NewStyle().Bold(true).Render("x"); s == "x" {
		t.Error("stderr renderer did not style")
	}
}

func TestIsTerminal(t *testing.T) {
	t.Parallel()
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	if isTerminal(f) {
		t.Error("a regular file is a terminal")
	}
}
