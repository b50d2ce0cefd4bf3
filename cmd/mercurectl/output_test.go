package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/sse"
)

// events are the events the output tests write.
var outputTestEvents = []sse.Event{
	{ID: "id-1", HasID: true, Data: "one"},
	{ID: "id-2", HasID: true, Type: "note", Data: "two\nlines", Retry: 1500, HasRetry: true},
	{ID: "id-3", HasID: true, Data: `{"html":"<b>&</b>","q":"\""}`},
	{ID: "id-4", HasID: true, Data: ""},
	{ID: "id-5", HasID: true, Data: "a\n\nb\n"},
}

// writeAll writes outputTestEvents with the writer for format on streams
// built from env, with stdout a terminal or not.
func writeAll(t *testing.T, format string, env envMap, tty bool) string {
	t.Helper()
	var out bytes.Buffer
	ios := newIOStreams(strings.NewReader(""), &out, &bytes.Buffer{}, env.Getenv)
	ios.SetStdoutTTY(tty)
	w := newEventWriter(format, ios, func() time.Time { return fixedNow })
	for _, ev := range outputTestEvents {
		if err := w.WriteEvent(ev); err != nil {
			t.Fatal(err)
		}
	}
	return out.String()
}

func TestEventWriters(t *testing.T) {
	t.Parallel()
	noColor := envMap{"NO_COLOR": "1"}
	tests := []struct {
		name   string
		format string
		tty    bool
		want   string
	}{
		{"json", outputJSON, false, `{"id":"id-1","data":"one"}` + "\n" +
			`{"id":"id-2","type":"note","data":"two\nlines","retry":1500}` + "\n" +
			`{"id":"id-3","data":"{\"html\":\"<b>&</b>\",\"q\":\"\\\"\"}"}` + "\n" +
			`{"id":"id-4","data":""}` + "\n" + `{"id":"id-5","data":"a\n\nb\n"}` + "\n"},
		{"default when piped is json", "", false, `{"id":"id-1","data":"one"}` + "\n" +
			`{"id":"id-2","type":"note","data":"two\nlines","retry":1500}` + "\n" +
			`{"id":"id-3","data":"{\"html\":\"<b>&</b>\",\"q\":\"\\\"\"}"}` + "\n" +
			`{"id":"id-4","data":""}` + "\n" + `{"id":"id-5","data":"a\n\nb\n"}` + "\n"},
		{"data", outputData, false, "one\ntwo\nlines\n{\"html\":\"<b>&</b>\",\"q\":\"\\\"\"}\n\na\n\nb\n\n"},
		{"sse", outputSSE, false, "id: id-1\ndata: one\n\nevent: note\nretry: 1500\nid: id-2\ndata: two\ndata: lines\n\n" +
			"id: id-3\ndata: {\"html\":\"<b>&</b>\",\"q\":\"\\\"\"}\n\nid: id-4\ndata: \n\n" +
			"id: id-5\ndata: a\ndata: \ndata: b\ndata: \n\n"},
		{"text piped", outputText, false, "2026-03-01T12:00:00Z  id-1  one\n" +
			"2026-03-01T12:00:00Z  id-2  note  two\n" +
			"                                  lines\n" +
			"2026-03-01T12:00:00Z  id-3  {\"html\":\"<b>&</b>\",\"q\":\"\\\"\"}\n" +
			"2026-03-01T12:00:00Z  id-4\n" +
			"2026-03-01T12:00:00Z  id-5  a\n\n" +
			"                            b\n"},
		{"default on a terminal is text; NO_COLOR: plain", "", true, "12:00:00  id-1  one\n" +
			"12:00:00  id-2  note  two\n" +
			"                      lines\n" +
			"12:00:00  id-3  {\"html\":\"<b>&</b>\",\"q\":\"\\\"\"}\n" +
			"12:00:00  id-4\n" +
			"12:00:00  id-5  a\n\n" +
			"                b\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := writeAll(t, tt.format, noColor, tt.tty); got != tt.want {
				t.Errorf("output\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// -o text is styled on a terminal only, and never under NO_COLOR or
// --no-color; the other formats are never styled.
func TestTextStyling(t *testing.T) {
	t.Parallel()
	const esc = "\x1b["
	if got := writeAll(t, outputText, envMap{}, true); !strings.Contains(got, esc) {
		t.Errorf("terminal: no styling in %q", got)
	}
	if got := writeAll(t, outputText, envMap{"NO_COLOR": "1"}, true); strings.Contains(got, esc) {
		t.Errorf("terminal with NO_COLOR: styled %q", got)
	}
	if got := writeAll(t, outputText, envMap{}, false); strings.Contains(got, esc) {
		t.Errorf("pipe: styled %q", got)
	}
	if got := writeAll(t, outputText, envMap{"CLICOLOR_FORCE": "1"}, false); !strings.Contains(got, esc) {
		t.Errorf("pipe with CLICOLOR_FORCE: not styled %q", got)
	}
	for _, format := range []string{outputJSON, outputData, outputSSE} {
		if got := writeAll(t, format, envMap{"CLICOLOR_FORCE": "1"}, true); strings.Contains(got, esc) {
			t.Errorf("-o %s styled: %q", format, got)
		}
	}

	// --no-color (IOStreams.DisableColor) on a terminal.
	var out bytes.Buffer
	ios := newIOStreams(strings.NewReader(""), &out, &bytes.Buffer{}, envMap{}.Getenv)
	ios.SetStdoutTTY(true)
	ios.DisableColor()
	w := newEventWriter(outputText, ios, func() time.Time { return fixedNow })
	if err := w.WriteEvent(outputTestEvents[1]); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), esc) {
		t.Errorf("--no-color: styled %q", out.String())
	}
}

// A publisher cannot drive the terminal through -o text.
func TestTextEscapesControls(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	ios := newIOStreams(strings.NewReader(""), &out, &bytes.Buffer{}, envMap{"NO_COLOR": "1"}.Getenv)
	ios.SetStdoutTTY(true)
	w := newEventWriter(outputText, ios, func() time.Time { return fixedNow })
	ev := sse.Event{ID: "id\x07", HasID: true, Type: "t\u009b", Data: "\x1b]0;title\x07red\tok\xff é"}
	if err := w.WriteEvent(ev); err != nil {
		t.Fatal(err)
	}
	want := `12:00:00  id\x07  t\u009b  \x1b]0;title\x07red` + "\tok" + `\xff é` + "\n"
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

func TestEscapeControls(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"plain":         "plain",
		"tab\tkept":     "tab\tkept",
		"\x00\x1f\x7f":  `\x00\x1f\x7f`,
		"\u0085":        `\u0085`,
		"é\ufffd":       "é\ufffd",
		"bad \xc3 utf8": `bad \xc3 utf8`,
	}
	for in, want := range tests {
		if got := escapeControls(in); got != want {
			t.Errorf("escapeControls(%q) = %q, want %q", in, got, want)
		}
	}
}
