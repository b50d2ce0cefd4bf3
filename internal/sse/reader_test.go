package sse

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// readResult is everything a stream produces.
type readResult struct {
	Events   []Event
	Comments []string
	LastID   string
	Retry    uint64
	HasRetry bool
	Err      error
}

// readAll reads src to the end (or the first error) with opts.
func readAll(tb testing.TB, src io.Reader, opts ReaderOptions) readResult {
	tb.Helper()
	var res readResult
	opts.OnComment = func(s string) { res.Comments = append(res.Comments, s) }
	r := NewReader(src, opts)
	for {
		ev, err := r.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				res.Err = err
			}
			break
		}
		res.Events = append(res.Events, ev)
		if len(res.Events) > 1<<20 {
			tb.Fatal("too many events")
		}
	}
	res.LastID = r.LastEventID()
	res.Retry, res.HasRetry = r.Retry()
	return res
}

// chunkReader returns its data in chunks whose sizes cycle through sizes.
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.sizes) > 0 {
		n = max(c.sizes[c.i%len(c.sizes)], 0)
		c.i++
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// msg builds an expected event.
func msg(data string) Event { return Event{Data: data} }

func TestReaderRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		want     []Event
		comments []string
		lastID   string
		retry    uint64
		hasRetry bool
	}{
		// The examples of the WHATWG HTML standard, section "Parsing an event stream".
		{
			name: "spec example: multi-line data",
			in:   "data: YHOO\ndata: +2\ndata: 10\n\n",
			want: []Event{msg("YHOO\n+2\n10")},
		},
		{
			name: "spec example: comment, id, empty id resets, leading space kept",
			in:   ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
			want: []Event{
				{Data: "first event", ID: "1", HasID: true, LastEventID: "1"},
				{Data: "second event", ID: "", HasID: true, LastEventID: ""},
				{Data: " third event"},
			},
			comments: []string{" test stream"},
		},
		{
			name: "spec example: bare data fields and a last block without blank line",
			in:   "data\n\ndata\ndata\n\ndata:",
			want: []Event{msg(""), msg("\n")},
		},
		{
			name: "spec example: space after colon is optional",
			in:   "data:test\n\ndata: test\n\n",
			want: []Event{msg("test"), msg("test")},
		},
		{
			name: "CRLF line ends",
			in:   "event: a\r\ndata: x\r\ndata: y\r\n\r\n",
			want: []Event{{Type: "a", Data: "x\ny"}},
		},
		{
			name: "CR line ends",
			in:   "event: a\rdata: x\rdata: y\r\r",
			want: []Event{{Type: "a", Data: "x\ny"}},
		},
		{
			name: "mixed line ends; LF CR is two line ends",
			in:   "data: a\n\rdata: b\r\n\ndata: c\r\r\n",
			want: []Event{msg("a"), msg("b"), msg("c")},
		},
		{
			name: "leading BOM skipped once",
			in:   "\uFEFFdata: x\n\n\uFEFFdata: y\n\n",
			want: []Event{msg("x")},
		},
		{
			name: "second BOM at start is part of the field name",
			in:   "\uFEFF\uFEFFdata: x\n\ndata: y\n\n",
			want: []Event{msg("y")},
		},
		{
			name: "only one leading space is removed",
			in:   "data:   x  \n\n",
			want: []Event{msg("  x  ")},
		},
		{
			name: "tab is not stripped",
			in:   "data:\tx\n\n",
			want: []Event{msg("\tx")},
		},
		{
			name: "field names are case-sensitive and unknown fields ignored",
			in:   "Data: x\nDATA: y\nfoo: bar\ndata: z\n\n",
			want: []Event{msg("z")},
		},
		{
			name: "value may contain colons",
			in:   "data: a:b: c\n\n",
			want: []Event{msg("a:b: c")},
		},
		{
			name: "empty data buffer: no dispatch, type reset",
			in:   "event: foo\n\ndata: x\n\n",
			want: []Event{msg("x")},
		},
		{
			name: "type reset after dispatch",
			in:   "event: foo\ndata: a\n\ndata: b\n\n",
			want: []Event{{Type: "foo", Data: "a"}, msg("b")},
		},
		{
			name: "empty event field gives no type",
			in:   "event\ndata: a\n\nevent:\ndata: b\n\n",
			want: []Event{msg("a"), msg("b")},
		},
		{
			name:   "last event ID carries over; ID only on events with an id field",
			in:     "id: 1\ndata: a\n\ndata: b\n\nid: 2\nid: 3\ndata: c\n\n",
			want:   []Event{{ID: "1", HasID: true, LastEventID: "1", Data: "a"}, {LastEventID: "1", Data: "b"}, {ID: "3", HasID: true, LastEventID: "3", Data: "c"}},
			lastID: "3",
		},
		{
			name:   "id with NUL is ignored",
			in:     "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
			want:   []Event{{ID: "1", HasID: true, LastEventID: "1", Data: "a"}, {LastEventID: "1", Data: "b"}},
			lastID: "1",
		},
		{
			name:   "id without data sets the last event ID at the blank line",
			in:     "id: 7\n\n",
			lastID: "7",
		},
		{
			name:   "id of an event cut off at EOF does not count",
			in:     "id: 1\ndata: a\n\nid: 2\ndata: b\n",
			want:   []Event{{ID: "1", HasID: true, LastEventID: "1", Data: "a"}},
			lastID: "1",
		},
		{
			name:   "id keeps spaces and unicode",
			in:     "id:  urn:uuid:é x \ndata: a\n\n",
			want:   []Event{{ID: " urn:uuid:é x ", HasID: true, LastEventID: " urn:uuid:é x ", Data: "a"}},
			lastID: " urn:uuid:é x ",
		},
		{
			name:  "retry sets the reconnection time and is reported on the event",
			in:    "retry: 1500\ndata: a\n\ndata: b\n\n",
			want:  []Event{{Retry: 1500, HasRetry: true, Data: "a"}, msg("b")},
			retry: 1500, hasRetry: true,
		},
		{
			name:  "retry applies without a dispatch",
			in:    "retry: 42\n",
			retry: 42, hasRetry: true,
		},
		{
			name:  "invalid retry values are ignored",
			in:    "retry: 10\nretry: 1a\nretry:  5\nretry: -5\nretry: +5\nretry: 5.0\nretry\nretry:\nretry: 99999999999999999999999\ndata: a\n\n",
			want:  []Event{{Retry: 10, HasRetry: true, Data: "a"}},
			retry: 10, hasRetry: true,
		},
		{
			name:  "retry zero and the largest value",
			in:    "retry: 0\ndata: a\n\nretry: 18446744073709551615\ndata: b\n\n",
			want:  []Event{{Retry: 0, HasRetry: true, Data: "a"}, {Retry: 18446744073709551615, HasRetry: true, Data: "b"}},
			retry: 18446744073709551615, hasRetry: true,
		},
		{
			name:     "comments of every shape",
			in:       ":\n: x\n:y:z\n\r:\u00e9\ndata: a\n\n",
			want:     []Event{msg("a")},
			comments: []string{"", " x", "y:z", "é"},
		},
		{
			name: "incomplete last event dropped; incomplete last line dropped",
			in:   "data: a\n\ndata: b\n\ndata: c",
			want: []Event{msg("a"), msg("b")},
		},
		{
			name: "data with trailing empty lines",
			in:   "data: a\ndata:\ndata\n\n",
			want: []Event{msg("a\n\n")},
		},
		{
			name: "invalid UTF-8: one U+FFFD per maximal subpart",
			in:   "data: a\xffb\xe2\x82c\xf0\x9f\x98d\xc0\xafe\xed\xa0\x80f\xf4\x90\x80\x80g\n\n",
			want: []Event{msg("a\uFFFDb\uFFFDc\uFFFDd\uFFFD\uFFFDe\uFFFD\uFFFD\uFFFDf\uFFFD\uFFFD\uFFFD\uFFFDg")},
		},
		{
			name: "invalid UTF-8 before a line end",
			in:   "data: \xe2\x82\r\ndata: \xac\n\n",
			want: []Event{msg("\uFFFD\n\uFFFD")},
		},
		{
			name: "NUL allowed in data and type",
			in:   "event: a\x00b\ndata: c\x00d\n\n",
			want: []Event{{Type: "a\x00b", Data: "c\x00d"}},
		},
		{
			name: "empty stream",
			in:   "",
		},
		{
			name: "BOM only",
			in:   "\uFEFF",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := tt.want
			for chunking, src := range sources(tt.in) {
				got := readAll(t, src, ReaderOptions{})
				if got.Err != nil {
					t.Fatalf("%s: error %v", chunking, got.Err)
				}
				if !reflect.DeepEqual(got.Events, want) && (len(got.Events) != 0 || len(want) != 0) {
					t.Errorf("%s: events\n got %#v\nwant %#v", chunking, got.Events, want)
				}
				if !reflect.DeepEqual(got.Comments, tt.comments) {
					t.Errorf("%s: comments %q, want %q", chunking, got.Comments, tt.comments)
				}
				if got.LastID != tt.lastID {
					t.Errorf("%s: LastEventID %q, want %q", chunking, got.LastID, tt.lastID)
				}
				if got.HasRetry != tt.hasRetry || got.Retry != tt.retry {
					t.Errorf("%s: Retry %d %v, want %d %v", chunking, got.Retry, got.HasRetry, tt.retry, tt.hasRetry)
				}
			}
		})
	}
}

// sources yields the same stream split in several ways, including one byte
// at a time (which puts every CR and LF of a CRLF in separate reads).
func sources(s string) map[string]io.Reader {
	return map[string]io.Reader{
		"whole":      strings.NewReader(s),
		"bytewise":   &chunkReader{data: []byte(s), sizes: []int{1}},
		"halfreader": iotest.HalfReader(strings.NewReader(s)),
		"uneven":     &chunkReader{data: []byte(s), sizes: []int{2, 0, 3, 1, 7}},
		"dataerr":    iotest.DataErrReader(strings.NewReader(s)),
	}
}

func TestReaderCRThenLFInNextRead(t *testing.T) {
	t.Parallel()
	// The CR ends a read, the LF starts the next: one line end, not two.
	// Two line ends would dispatch "a" early and then "b" alone.
	src := &chunkReader{data: []byte("data: a\rdata: b\r\n\r\n"), sizes: []int{8, 100}}
	got := readAll(t, src, ReaderOptions{})
	if len(got.Events) != 1 || got.Events[0].Data != "a\nb" {
		t.Fatalf("events %#v, want one with data a\\nb", got.Events)
	}
}

func TestReaderInitialLastEventID(t *testing.T) {
	t.Parallel()
	r := NewReader(strings.NewReader("data: a\n\nid: 5\ndata: b\n\n"), ReaderOptions{LastEventID: "4"})
	if r.LastEventID() != "4" {
		t.Fatalf("initial LastEventID %q", r.LastEventID())
	}
	ev, err := r.Next()
	if err != nil || ev.LastEventID != "4" || ev.HasID {
		t.Fatalf("first event %#v, %v", ev, err)
	}
	ev, err = r.Next()
	if err != nil || ev.LastEventID != "5" || ev.ID != "5" {
		t.Fatalf("second event %#v, %v", ev, err)
	}
}

func TestReaderSizeLimit(t *testing.T) {
	t.Parallel()
	const limit = 64
	long := strings.Repeat("x", limit)
	tests := []struct {
		name    string
		in      string
		wantErr bool
		events  int
	}{
		{"line at the limit", "data:" + long[:limit-5] + "\n\n", false, 1},
		{"line over the limit", "data:" + long[:limit-4] + "\n\n", true, 0},
		{"unterminated long line", "data: a\n\n" + long + long, true, 1},
		{"comment over the limit", ":" + long + "\n", true, 0},
		{"data at the limit", strings.Repeat("data:"+long[:15]+"\n", 4) + "\n", false, 1},
		{"data over the limit", strings.Repeat("data:"+long[:15]+"\n", 4) + "data:\n\n", true, 0},
		{"many small events are fine", strings.Repeat("data: "+long[:40]+"\n\n", 1000), false, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for chunking, src := range sources(tt.in) {
				got := readAll(t, src, ReaderOptions{MaxEventSize: limit})
				if tt.wantErr != errors.Is(got.Err, ErrEventTooLarge) {
					t.Errorf("%s: error %v, want too large: %v", chunking, got.Err, tt.wantErr)
				}
				if len(got.Events) != tt.events {
					t.Errorf("%s: %d events, want %d", chunking, len(got.Events), tt.events)
				}
			}
		})
	}
}

func TestReaderStickyAndSourceErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	// Complete events before the error are delivered, then the error.
	src := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom))
	r := NewReader(src, ReaderOptions{})
	if ev, err := r.Next(); err != nil || ev.Data != "a" {
		t.Fatalf("Next = %#v, %v", ev, err)
	}
	for range 2 {
		if _, err := r.Next(); !errors.Is(err, boom) {
			t.Fatalf("Next error %v, want boom (sticky)", err)
		}
	}
}

// zeroReader always returns (0, nil).
type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestReaderNoProgress(t *testing.T) {
	t.Parallel()
	if _, err := NewReader(zeroReader{}, ReaderOptions{}).Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("error %v, want io.ErrNoProgress", err)
	}
}

func TestReaderLongLinesLinear(t *testing.T) {
	t.Parallel()
	// A 4 MiB line arriving in 512-byte reads, and a CR-only stream, must not
	// be rescanned from the start at every read.
	data := bytes.Repeat([]byte("y"), 4<<20)
	in := append(append([]byte("data: "), data...), "\n\n"...)
	got := readAll(t, &chunkReader{data: in, sizes: []int{512}}, ReaderOptions{})
	if got.Err != nil || len(got.Events) != 1 || len(got.Events[0].Data) != len(data) {
		t.Fatalf("long line: err %v, %d events", got.Err, len(got.Events))
	}
	cr := strings.Repeat("data: z\r\r", 200000)
	got = readAll(t, strings.NewReader(cr), ReaderOptions{})
	if got.Err != nil || len(got.Events) != 200000 {
		t.Fatalf("CR stream: err %v, %d events", got.Err, len(got.Events))
	}
}

func TestDecodeMatchesWHATWG(t *testing.T) {
	t.Parallel()
	// Cases from the Unicode "U+FFFD substitution of maximal subparts"
	// practice, which the WHATWG decoder follows.
	tests := []struct{ in, want string }{
		{"\x80", "\uFFFD"},
		{"\xbf\x80", "\uFFFD\uFFFD"},
		{"\xc0\x80", "\uFFFD\uFFFD"},
		{"\xc2", "\uFFFD"},
		{"\xc2\x41", "\uFFFDA"},
		{"\xe0\x80\x80", "\uFFFD\uFFFD\uFFFD"},
		{"\xe0\xa0", "\uFFFD"},
		{"\xe0\xa0\x41", "\uFFFDA"},
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"},
		{"\xed\x9f\xbf", "\uD7FF"},
		{"\xf0\x80\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"\xf0\x90\x80", "\uFFFD"},
		{"\xf4\x8f\xbf\xbf", "\U0010FFFF"},
		{"\xf4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"\xf5\x80", "\uFFFD\uFFFD"},
		{"\xef\xbf\xbd", "\uFFFD"},
		{"a\xf1\x80\x80b", "a\uFFFDb"},
	}
	for _, tt := range tests {
		if got := decode([]byte(tt.in)); got != tt.want {
			t.Errorf("decode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
