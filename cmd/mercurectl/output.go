package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/lipgloss"

	"github.com/mercurectl/mercurectl/internal/sse"
)

// Output formats of subscribe and replay (-o, --output).
const (
	outputText = "text"
	outputJSON = "json"
	outputData = "data"
	outputSSE  = "sse"
)

// outputFormats lists the formats, for help and validation.
var outputFormats = []string{outputText, outputJSON, outputData, outputSSE}

// outputHelp is the help of the -o flag.
const outputHelp = "output `FORMAT`: text (styled, for people), json (one object per line: id, type, data, retry), " +
	"data (the data field and a newline) or sse (the event stream as received); default text on a terminal, json otherwise"

// validOutput checks an -o value ("" is the default, resolved later).
func validOutput(cmd, format string) error {
	if format == "" {
		return nil
	}
	for _, f := range outputFormats {
		if format == f {
			return nil
		}
	}
	return usageErrorf("%s: --output %q: want %s", cmd, format, strings.Join(outputFormats, ", "))
}

// eventWriter writes each event to stdout, in one write per event so that
// a reader of the pipe never sees half an event.
type eventWriter interface {
	WriteEvent(ev sse.Event) error
}

// newEventWriter returns the writer for format ("" picks text on a terminal
// and json otherwise: people get styled lines, scripts a stable format). now
// stamps text output.
func newEventWriter(format string, ios *IOStreams, now func() time.Time) eventWriter {
	if format == "" {
		format = outputJSON
		if ios.IsStdoutTTY() {
			format = outputText
		}
	}
	switch format {
	case outputText:
		return newTextWriter(ios, now)
	case outputData:
		return &dataWriter{w: ios.Out}
	case outputSSE:
		return &sseWriter{w: ios.Out}
	default:
		return &jsonWriter{w: ios.Out}
	}
}

// jsonEvent is one line of -o json (docs/cli.md#output-formats). The keys are
// fixed and deliberately limited to these four, so that scripts can rely on
// them:
// "type" is omitted when the event has none (the SSE default, "message"),
// "retry" (milliseconds, a number) when the event carries no retry field.
type jsonEvent struct {
	ID    string  `json:"id"`
	Type  string  `json:"type,omitempty"`
	Data  string  `json:"data"`
	Retry *uint64 `json:"retry,omitempty"`
}

// jsonWriter writes NDJSON: one object per event per line.
type jsonWriter struct {
	w   io.Writer
	buf bytes.Buffer
}

// WriteEvent implements eventWriter.
func (j *jsonWriter) WriteEvent(ev sse.Event) error {
	je := jsonEvent{ID: ev.ID, Type: ev.Type, Data: ev.Data}
	if ev.HasRetry {
		r := ev.Retry
		je.Retry = &r
	}
	j.buf.Reset()
	enc := json.NewEncoder(&j.buf)
	enc.SetEscapeHTML(false) // data is often HTML or JSON: keep <, > and & readable
	if err := enc.Encode(je); err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	_, err := j.w.Write(j.buf.Bytes())
	return err
}

// dataWriter writes the data field of each event and a newline.
type dataWriter struct {
	w   io.Writer
	buf []byte
}

// WriteEvent implements eventWriter.
func (d *dataWriter) WriteEvent(ev sse.Event) error {
	d.buf = append(append(d.buf[:0], ev.Data...), '\n')
	_, err := d.w.Write(d.buf)
	return err
}

// sseWriter writes events in the SSE wire format (id, event, retry and data
// fields, then a blank line): the stream can be replayed into any SSE tool.
type sseWriter struct {
	w   io.Writer
	buf []byte
}

// WriteEvent implements eventWriter.
func (s *sseWriter) WriteEvent(ev sse.Event) error {
	s.buf = sse.AppendEvent(s.buf[:0], ev)
	_, err := s.w.Write(s.buf)
	return err
}

// textWriter writes one line per event for people: the time it arrived, its
// id, its type (when it has one) and its data; further lines of the data
// are aligned under the first. Styles come from the renderer of stdout, so
// they are plain when stdout is not a terminal, under NO_COLOR and with
// --no-color. Control characters of the event are shown escaped, so that
// a publisher cannot send escape sequences to the terminal.
type textWriter struct {
	w   io.Writer
	now func() time.Time
	// timeLayout is short on a terminal and RFC 3339 elsewhere (a file
	// needs the date).
	timeLayout                    string
	timeStyle, idStyle, typeStyle lipgloss.Style
	buf                           bytes.Buffer
}

func newTextWriter(ios *IOStreams, now func() time.Time) *textWriter {
	r := ios.Renderer()
	tw := &textWriter{
		w:          ios.Out,
		now:        now,
		timeLayout: time.RFC3339,
		timeStyle:  r.NewStyle().Faint(true),
		idStyle:    r.NewStyle().Foreground(lipgloss.Color("6")),
		typeStyle:  r.NewStyle().Foreground(lipgloss.Color("5")).Bold(true),
	}
	if ios.IsStdoutTTY() {
		tw.timeLayout = time.TimeOnly
	}
	return tw
}

// WriteEvent implements eventWriter.
func (t *textWriter) WriteEvent(ev sse.Event) error {
	t.buf.Reset()
	ts := t.now().Format(t.timeLayout)
	t.buf.WriteString(t.timeStyle.Render(ts))
	width := len(ts)
	id := escapeControls(ev.ID)
	if id == "" {
		id = "-"
	}
	t.buf.WriteString("  ")
	t.buf.WriteString(t.idStyle.Render(id))
	width += 2 + lipgloss.Width(id)
	if ev.Type != "" {
		typ := escapeControls(ev.Type)
		t.buf.WriteString("  ")
		t.buf.WriteString(t.typeStyle.Render(typ))
		width += 2 + lipgloss.Width(typ)
	}
	indent := strings.Repeat(" ", width+2)
	// One final newline of the data (a file's last line) is not shown: it
	// would only print an empty line. -o json and -o data keep it.
	data := strings.TrimSuffix(ev.Data, "\n")
	for i, line := range strings.Split(data, "\n") {
		switch {
		case i == 0 && line != "":
			t.buf.WriteString("  ")
		case i == 0:
		case line == "":
			t.buf.WriteString("\n") // no trailing white space on empty lines
		default:
			t.buf.WriteString("\n")
			t.buf.WriteString(indent)
		}
		t.buf.WriteString(escapeControls(line))
	}
	t.buf.WriteByte('\n')
	_, err := t.w.Write(t.buf.Bytes())
	return err
}

// escapeControls replaces the control characters of s (C0 but tab, DEL,
// C1) and the bytes of invalid UTF-8 with Go escapes such as \x1b and
// \u009b, so that text output cannot move the cursor, change colours or
// retitle the terminal.
func escapeControls(s string) string {
	clean := true
	for _, r := range s {
		if isControl(r) || r == utf8.RuneError {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case isControl(r) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case isControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// isControl reports whether r is a C0 control other than tab, DEL or a C1
// control.
func isControl(r rune) bool {
	return (r < 0x20 && r != '\t') || (r >= 0x7f && r < 0xa0)
}
