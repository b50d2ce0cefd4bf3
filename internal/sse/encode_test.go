package sse

import (
	"bytes"
	"strings"
	"testing"
)

func TestAppendEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{
			// docs/protocol.md#event-stream: the reference input gives five data lines,
			// including an empty one.
			name: "data split on LF, CRLF and CR",
			ev:   Event{ID: "1", Data: "line1\nline2\r\nline3\n\nline5"},
			want: "id: 1\ndata: line1\ndata: line2\ndata: line3\ndata: \ndata: line5\n\n",
		},
		{
			// docs/protocol.md#event-stream: event, retry, id, data.
			name: "field order",
			ev:   Event{ID: "urn:uuid:1", Type: "t", Retry: 2500, HasRetry: true, Data: "x"},
			want: "event: t\nretry: 2500\nid: urn:uuid:1\ndata: x\n\n",
		},
		{
			name: "empty data still dispatches",
			ev:   Event{ID: "1"},
			want: "id: 1\ndata: \n\n",
		},
		{
			name: "retry zero is written when set",
			ev:   Event{Retry: 0, HasRetry: true, Data: "x"},
			want: "retry: 0\ndata: x\n\n",
		},
		{
			name: "empty id written when HasID",
			ev:   Event{HasID: true, Data: "x"},
			want: "id: \ndata: x\n\n",
		},
		{
			name: "leading spaces survive",
			ev:   Event{ID: " a", Type: " b", Data: " c\n  d"},
			want: "event:  b\nid:  a\ndata:  c\ndata:   d\n\n",
		},
		{
			name: "trailing line breaks kept as empty lines",
			ev:   Event{Data: "a\r\n\r"},
			want: "data: a\ndata: \ndata: \n\n",
		},
		{
			name: "CR-only data",
			ev:   Event{Data: "a\rb\rc"},
			want: "data: a\ndata: b\ndata: c\n\n",
		},
		{
			name: "injection through id and type is neutralised",
			ev:   Event{ID: "1\n\ndata: evil\nid: 2", Type: "a\rretry: 1\x00", Data: "ok"},
			want: "event: a\uFFFDretry: 1\uFFFD\nid: 1\uFFFD\uFFFDdata: evil\uFFFDid: 2\ndata: ok\n\n",
		},
	}
	for _, tt := range tests {
		if got := string(AppendEvent([]byte("<"), tt.ev)); got != "<"+tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, "<"+tt.want)
		}
	}
}

func TestAppendEventReadBack(t *testing.T) {
	t.Parallel()
	// The injection case read back: one event, the hostile id stays one id.
	ev := Event{ID: "1\n\ndata: evil\nid: 2", Type: "x\ny", Data: "ok"}
	got := readAll(t, bytes.NewReader(AppendEvent(nil, ev)), ReaderOptions{})
	if got.Err != nil || len(got.Events) != 1 {
		t.Fatalf("read back %#v, err %v", got.Events, got.Err)
	}
	if e := got.Events[0]; e.Data != "ok" || e.ID != "1\uFFFD\uFFFDdata: evil\uFFFDid: 2" || e.Type != "x\uFFFDy" {
		t.Fatalf("read back %#v", e)
	}
}

func TestAppendComment(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"":                ":\n",
		ReplayDoneComment: ":" + ReplayDoneComment + "\n",
		"a\nb\r\nc\rd":    ":a\n:b\n:c\n:d\n",
	}
	for in, want := range tests {
		if got := string(AppendComment(nil, in)); got != want {
			t.Errorf("AppendComment(%q) = %q, want %q", in, got, want)
		}
	}
	// Comments are invisible to the event stream but reach OnComment.
	var stream []byte
	stream = AppendComment(stream, "")
	stream = AppendEvent(stream, Event{ID: "1", Data: "a"})
	stream = AppendComment(stream, ReplayDoneComment)
	stream = AppendEvent(stream, Event{ID: "2", Data: "b"})
	got := readAll(t, bytes.NewReader(stream), ReaderOptions{})
	if len(got.Events) != 2 || got.Events[1].Data != "b" {
		t.Fatalf("events %#v", got.Events)
	}
	if want := []string{"", ReplayDoneComment}; strings.Join(got.Comments, "|") != strings.Join(want, "|") {
		t.Fatalf("comments %q, want %q", got.Comments, want)
	}
}

func TestValidField(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"":              true,
		"urn:uuid:abc":  true,
		"é \t x":        true,
		"a\nb":          false,
		"a\rb":          false,
		"a\x00b":        false,
		"\u2028 (LSEP)": true, // not a line end for SSE
	} {
		if got := ValidField(s); got != want {
			t.Errorf("ValidField(%q) = %v, want %v", s, got, want)
		}
	}
}
