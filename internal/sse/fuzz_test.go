package sse

import (
	"bytes"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// randomChunks returns data in random small chunks (0 to 8 bytes) drawn
// from a seeded generator, so that every split point gets exercised.
type randomChunks struct {
	data []byte
	rng  *rand.Rand
}

func (c *randomChunks) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(c.rng.IntN(9), len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func FuzzReader(f *testing.F) {
	seeds := []string{
		"data: YHOO\ndata: +2\ndata: 10\n\n",
		": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
		"data\n\ndata\ndata\n\ndata:",
		"\uFEFFevent: a\r\nretry: 10\r\nid: x\x00\r\ndata: \xe2\x82\r\r\n",
		"retry: 99999999999999999999\nid:\ndata\r\r",
		strings.Repeat("data: 0123456789abcdef\n", 20) + "\n",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint64(i))
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		const limit = 256
		whole := readAll(t, bytes.NewReader(in), ReaderOptions{MaxEventSize: limit})
		chunked := readAll(t, &randomChunks{data: in, rng: rand.New(rand.NewPCG(seed, 1))}, ReaderOptions{MaxEventSize: limit})
		if !reflect.DeepEqual(whole, chunked) {
			t.Fatalf("chunking changed the result:\nwhole   %#v\nchunked %#v", whole, chunked)
		}
		for _, ev := range whole.Events {
			if len(ev.Data) > 3*limit { // decoding can expand 1 byte to 3
				t.Fatalf("event data of %d bytes exceeds the limit", len(ev.Data))
			}
			for _, s := range []string{ev.Data, ev.ID, ev.Type, ev.LastEventID} {
				if !utf8.ValidString(s) {
					t.Fatalf("invalid UTF-8 in %q", s)
				}
			}
			if strings.ContainsAny(ev.ID+ev.Type, "\r\n") || strings.Contains(ev.ID, "\x00") {
				t.Fatalf("line break or NUL in id/type: %#v", ev)
			}
			if strings.Contains(ev.Data, "\r") {
				t.Fatalf("CR in data: %q", ev.Data)
			}
			if !ev.HasID && ev.ID != "" {
				t.Fatalf("ID without HasID: %#v", ev)
			}
		}
		for _, c := range whole.Comments {
			if strings.ContainsAny(c, "\r\n") {
				t.Fatalf("line break in comment %q", c)
			}
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("urn:uuid:1", "update", "line1\nline2\r\nline3\n\nline5", uint64(10), true, "2", "")
	f.Add("", "", "", uint64(0), false, "", "x")
	f.Add(" a", " b", " c\r", uint64(1<<63), true, "\x00", "\r\n")
	f.Add("é", "\xff", "\xe2\x82\n\xac", uint64(0), false, "id\n", "t\r")
	f.Fuzz(func(t *testing.T, id, typ, data string, retry uint64, hasRetry bool, id2, data2 string) {
		evs := []Event{
			{ID: id, HasID: true, Type: typ, Data: data, Retry: retry, HasRetry: hasRetry},
			{ID: id2, Data: data2},
		}
		var stream []byte
		for i, ev := range evs {
			stream = AppendEvent(stream, ev)
			if i == 0 {
				stream = AppendComment(stream, data2) // comments never disturb events
			}
		}
		got := readAll(t, bytes.NewReader(stream), ReaderOptions{})
		if got.Err != nil {
			t.Fatalf("read error %v", got.Err)
		}
		if len(got.Events) != len(evs) {
			t.Fatalf("%d events read back, want %d:\n%q\n%#v", len(got.Events), len(evs), stream, got.Events)
		}
		lastID := ""
		for i, ev := range evs {
			g := got.Events[i]
			wantHasID := ev.HasID || ev.ID != ""
			wantID := ""
			if wantHasID {
				wantID = decode([]byte(sanitize(ev.ID)))
				lastID = wantID
			}
			want := Event{
				ID:          wantID,
				HasID:       wantHasID,
				LastEventID: lastID,
				Type:        decode([]byte(sanitize(ev.Type))),
				Data:        decode([]byte(normalize(ev.Data))),
				Retry:       ev.Retry,
				HasRetry:    ev.HasRetry,
			}
			if !want.HasRetry {
				want.Retry = 0
			}
			if g != want {
				t.Fatalf("event %d:\n got %#v\nwant %#v\nwire %q", i, g, want, stream)
			}
		}
	})
}

// sanitize is what AppendEvent does to an unchecked id or type.
func sanitize(s string) string {
	return strings.NewReplacer("\r", "\uFFFD", "\n", "\uFFFD", "\x00", "\uFFFD").Replace(s)
}

// normalize turns CRLF and CR into LF, as the SSE round trip does.
func normalize(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}
