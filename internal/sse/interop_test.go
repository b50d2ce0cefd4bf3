package sse_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	r3sse "github.com/r3labs/sse/v2"
	"gopkg.in/cenkalti/backoff.v1"

	"github.com/mercurectl/mercurectl/internal/sse"
)

// TestInteropR3labs checks that a widely used third-party SSE client reads
// what AppendEvent writes the same way our Reader does. The stream avoids
// the points where that client departs from the standard (it copies the
// previous id into events without one, does not reset on an empty id, and
// dispatches retry-only blocks).
func TestInteropR3labs(t *testing.T) {
	t.Parallel()
	events := []sse.Event{
		{ID: "urn:uuid:1", Data: "hello"},
		{ID: "2", Type: "update", Data: "line1\nline2\r\nline3\n\nline5"},
		{ID: "3", Data: ""},
		{ID: "4", Type: "t", Retry: 1500, HasRetry: true, Data: " leading space\n  indented"},
		{ID: "é/5", Data: `{"json": "ünïcödé ☃"}`},
		{ID: "6", Data: "trailing newline\n"},
	}
	var stream []byte
	stream = sse.AppendComment(stream, "")
	for i, ev := range events {
		stream = sse.AppendEvent(stream, ev)
		if i == 2 {
			stream = sse.AppendComment(stream, sse.ReplayDoneComment)
		}
	}

	// Ours.
	r := sse.NewReader(bytes.NewReader(stream), sse.ReaderOptions{})
	var ours []sse.Event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ours = append(ours, ev)
	}

	// Theirs, over HTTP as it insists.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write(stream)
	}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := r3sse.NewClient(srv.URL)
	c.Connection = &http.Client{Transport: tr}
	c.ReconnectStrategy = &backoff.StopBackOff{}
	var theirs []*r3sse.Event
	if err := c.SubscribeRawWithContext(t.Context(), func(ev *r3sse.Event) { theirs = append(theirs, ev) }); err != nil {
		t.Fatalf("r3labs: %v", err)
	}

	if len(ours) != len(events) || len(theirs) != len(events) {
		t.Fatalf("ours %d events, theirs %d, want %d", len(ours), len(theirs), len(events))
	}
	for i := range events {
		o, th := ours[i], theirs[i]
		retry := ""
		if o.HasRetry {
			retry = strconv.FormatUint(o.Retry, 10)
		}
		if o.LastEventID != string(th.ID) || o.Type != string(th.Event) || o.Data != string(th.Data) || retry != string(th.Retry) {
			t.Errorf("event %d: ours %#v, theirs id=%q event=%q data=%q retry=%q", i, o, th.ID, th.Event, th.Data, th.Retry)
		}
	}
}
