package main

import (
	"io"
	"strings"
	"sync"

	"github.com/charmbracelet/lipgloss"
	"github.com/mattn/go-isatty"
	"github.com/muesli/termenv"
)

// IOStreams are a command's standard streams, with what is known about them:
// whether each one is a terminal and whether colour may be written to it.
// Commands write only through these, never to os.Stdout or with cobra's
// Print helpers (which write to stderr), so that tests see every byte: data
// to Out, logs, progress and diagnostics to ErrOut.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	inTTY, outTTY, errTTY bool

	// The colour policy, read once from the environment (see colorPolicy).
	policy colorPolicy

	mu          sync.Mutex
	noColor     bool // --no-color
	outRenderer *lipgloss.Renderer
	errRenderer *lipgloss.Renderer
}

// colorPolicy is what the environment says about colour, documented in
// `mercurectl help environment`.
type colorPolicy struct {
	// off: NO_COLOR is set to a non-empty value (https://no-color.org).
	// It beats everything else (docs/cli.md#configuration).
	off bool
	// force: CLICOLOR_FORCE is set and not "0": colour even when not a terminal.
	force bool
	// autoOff: CLICOLOR=0 or TERM=dumb: no colour on terminals either.
	autoOff bool
	// profile is the palette used when colour is on, from COLORTERM and TERM.
	profile termenv.Profile
}

// readColorPolicy reads NO_COLOR, CLICOLOR, CLICOLOR_FORCE, COLORTERM and TERM.
func readColorPolicy(getenv func(string) string) colorPolicy {
	p := colorPolicy{
		off:     getenv("NO_COLOR") != "",
		force:   getenv("CLICOLOR_FORCE") != "" && getenv("CLICOLOR_FORCE") != "0",
		autoOff: getenv("CLICOLOR") == "0" || getenv("TERM") == "dumb",
		profile: termenv.ANSI,
	}
	colorterm := strings.ToLower(getenv("COLORTERM"))
	switch {
	case colorterm == "truecolor" || colorterm == "24bit":
		p.profile = termenv.TrueColor
	case strings.Contains(getenv("TERM"), "256color"):
		p.profile = termenv.ANSI256
	}
	return p
}

// newIOStreams wraps the given streams, detecting which of them are terminals
// (a stream that is not an *os.File, such as a buffer, never is).
func newIOStreams(in io.Reader, out, errOut io.Writer, getenv func(string) string) *IOStreams {
	return &IOStreams{
		In:     in,
		Out:    out,
		ErrOut: errOut,
		inTTY:  isTerminal(in),
		outTTY: isTerminal(out),
		errTTY: isTerminal(errOut),
		policy: readColorPolicy(getenv),
	}
}

// isTerminal reports whether v is a file descriptor attached to a terminal.
func isTerminal(v any) bool {
	f, ok := v.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// IsStdinTTY reports whether In is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.inTTY }

// IsStdoutTTY reports whether Out is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.outTTY }

// IsStderrTTY reports whether ErrOut is a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.errTTY }

// SetStdinTTY overrides terminal detection for In (tests).
func (s *IOStreams) SetStdinTTY(tty bool) { s.inTTY = tty }

// SetStdoutTTY overrides terminal detection for Out (tests).
func (s *IOStreams) SetStdoutTTY(tty bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outTTY = tty
	s.outRenderer = nil
}

// SetStderrTTY overrides terminal detection for ErrOut (tests).
func (s *IOStreams) SetStderrTTY(tty bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errTTY = tty
	s.errRenderer = nil
}

// DisableColor turns colour off on every stream (the --no-color flag).
func (s *IOStreams) DisableColor() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noColor = true
	s.outRenderer, s.errRenderer = nil, nil
}

// ColorEnabled reports whether Out may carry colour and styling.
func (s *IOStreams) ColorEnabled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.colorLocked(s.outTTY)
}

// ErrColorEnabled reports whether ErrOut may carry colour and styling.
func (s *IOStreams) ErrColorEnabled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.colorLocked(s.errTTY)
}

func (s *IOStreams) colorLocked(tty bool) bool {
	switch {
	case s.noColor || s.policy.off:
		return false
	case s.policy.force:
		return true
	case s.policy.autoOff:
		return false
	default:
		return tty
	}
}

// Renderer returns the Lip Gloss renderer for Out: styles rendered with it
// carry colour only when ColorEnabled. Never use Lip Gloss's package-level
// default renderer, which looks at the process's stdout instead.
func (s *IOStreams) Renderer() *lipgloss.Renderer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outRenderer == nil {
		s.outRenderer = s.newRendererLocked(s.Out, s.outTTY)
	}
	return s.outRenderer
}

// ErrRenderer returns the Lip Gloss renderer for ErrOut.
func (s *IOStreams) ErrRenderer() *lipgloss.Renderer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errRenderer == nil {
		s.errRenderer = s.newRendererLocked(s.ErrOut, s.errTTY)
	}
	return s.errRenderer
}

func (s *IOStreams) newRendererLocked(w io.Writer, tty bool) *lipgloss.Renderer {
	r := lipgloss.NewRenderer(w)
	if s.colorLocked(tty) {
		r.SetColorProfile(s.policy.profile)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	// Set explicitly so that Lip Gloss never queries the terminal for its
	// background colour (an escape sequence round trip on the TTY).
	r.SetHasDarkBackground(true)
	return r
}
