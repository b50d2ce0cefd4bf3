// Package sse reads and writes Server-Sent Events streams (text/event-stream).
//
// The Reader follows the WHATWG HTML "event stream interpretation" rules
// exactly: the stream is decoded as UTF-8 (invalid sequences become U+FFFD,
// one per maximal subpart, and one leading byte order mark is skipped); lines
// end in CRLF, LF or CR, including a CR and LF that arrive in different reads;
// lines starting with ':' are comments; "field:value" loses one leading space
// of its value; a line without ':' is a field with an empty value; an `id`
// containing NUL is ignored and an empty `id` resets the last event ID; a
// `retry` that is not made only of ASCII digits is ignored; a blank line
// dispatches the event unless its data buffer is empty; an event still
// incomplete at the end of the stream is dropped.
//
// The encoder (AppendEvent, AppendComment) writes the form that Mercure hubs
// send (docs/protocol.md#event-stream) and never lets a field value inject
// other fields.
package sse

import (
	"bytes"
	"errors"
	"io"
	"math"
)

// DefaultMaxEventSize is the default safety limit on the size of one line
// and of one event's data (16 MiB): far above any real Mercure update (hubs
// cap a whole publish request at 1 MiB by default), yet bounded, so that a
// broken or hostile stream cannot make the reader grow without limit.
const DefaultMaxEventSize = 16 << 20

// initialBufferSize is the reader's starting buffer; it grows on demand up to
// the size limit, for lines that do not fit.
const initialBufferSize = 32 << 10

// maxEmptyReads bounds consecutive (0, nil) reads from the source before the
// reader gives up with io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// ErrEventTooLarge is returned by Reader.Next when a line, or the data of one
// event, exceeds ReaderOptions.MaxEventSize. The reader cannot continue after it.
var ErrEventTooLarge = errors.New("sse event exceeds the size limit")

// Event is one dispatched event.
type Event struct {
	// ID is the value of this event's own `id` field (the last one, if the
	// event had several). It is "" when the event had none: the reader never
	// copies an earlier event's id into it; see HasID and LastEventID.
	ID string
	// HasID reports whether the event had a (valid) `id` field. An event can
	// have an empty id (HasID true, ID ""), which resets the last event ID.
	HasID bool
	// LastEventID is the stream's last event ID after this event: what a
	// client sends as Last-Event-ID when it reconnects. It carries over from
	// earlier events when this one has no `id` field.
	LastEventID string
	// Type is the `event` field; "" when there was none (the default type
	// "message" is not filled in). When encoding, "" writes no `event` line.
	Type string
	// Data is the `data` fields joined by LF, without the final LF.
	Data string
	// Retry is the `retry` field in milliseconds, valid when HasRetry.
	Retry uint64
	// HasRetry reports whether the event carried a valid `retry` field.
	HasRetry bool
}

// ReaderOptions configures a Reader. The zero value is ready to use.
type ReaderOptions struct {
	// MaxEventSize caps the length of one line and the size of one event's
	// data, in bytes; 0 means DefaultMaxEventSize. Memory use stays within
	// about twice this value.
	MaxEventSize int
	// OnComment, when set, is called with the text of every comment line
	// (everything after the ':', decoded, with nothing stripped).
	OnComment func(text string)
	// LastEventID is the initial last event ID, for a reader that continues
	// a stream on a new connection.
	LastEventID string
}

// Reader parses an event stream. It is not safe for concurrent use.
type Reader struct {
	src  io.Reader
	opts ReaderOptions
	max  int

	buf        []byte
	start, end int   // unread bytes are buf[start:end]
	srcErr     error // the error (io.EOF included) that ended src, once seen
	err        error // sticky error returned by Next
	bomDone    bool  // the start of the stream has been checked for a BOM
	skipLF     bool  // the previous line ended in CR: skip one LF
	lfPos      int   // position of the next LF at or after start when >= start
	lfChecked  int   // no LF in buf[start:lfChecked] (when lfPos < start)
	crChecked  int   // no CR in buf[start:crChecked]

	data       []byte // data buffer
	typ        string // event type buffer
	idBuf      string // last event ID buffer
	lastID     string // last event ID string (set at every blank line)
	evHasID    bool
	evRetry    uint64
	evHasRetry bool
	retry      uint64 // reconnection time set by the stream
	hasRetry   bool
}

// NewReader returns a Reader that parses the event stream read from r.
func NewReader(r io.Reader, opts ReaderOptions) *Reader {
	limit := opts.MaxEventSize
	if limit <= 0 {
		limit = DefaultMaxEventSize
	}
	return &Reader{
		src:    r,
		opts:   opts,
		max:    limit,
		lfPos:  -1,
		idBuf:  opts.LastEventID,
		lastID: opts.LastEventID,
	}
}

// Next returns the next dispatched event. It returns io.EOF when the stream
// ends cleanly (an incomplete last event is dropped, as the standard says),
// ErrEventTooLarge when the size limit is exceeded, and otherwise the error
// of the underlying reader. Errors are sticky.
func (r *Reader) Next() (Event, error) {
	if r.err != nil {
		return Event{}, r.err
	}
	for {
		line, err := r.readLine()
		if err != nil {
			r.err = err
			return Event{}, err
		}
		if ev, ok, err := r.processLine(line); err != nil {
			r.err = err
			return Event{}, err
		} else if ok {
			return ev, nil
		}
	}
}

// LastEventID returns the last event ID string: the value to send in the
// Last-Event-ID header on reconnection ("" means send none). As in browsers,
// it changes only when an event block ends (a blank line), so an `id` line of
// an event cut off by a disconnection does not count.
func (r *Reader) LastEventID() string { return r.lastID }

// Retry returns the reconnection time in milliseconds most recently set by a
// `retry` field, and whether any was. A `retry` field takes effect as soon as
// its line is read, even if its event is never dispatched.
func (r *Reader) Retry() (ms uint64, ok bool) { return r.retry, r.hasRetry }

// readLine returns the next complete line without its end-of-line bytes. The
// slice is valid until the next call.
func (r *Reader) readLine() ([]byte, error) {
	empty := 0
	for {
		if !r.bomDone {
			if r.end-r.start >= 3 || r.srcErr != nil {
				if bytes.HasPrefix(r.buf[r.start:r.end], bom) {
					r.start += len(bom)
				}
				r.bomDone = true
				continue
			}
		} else {
			if r.skipLF && r.start < r.end {
				if r.buf[r.start] == '\n' {
					r.start++
				}
				r.skipLF = false
			}
			if !r.skipLF {
				if i := r.findEOL(); i >= 0 {
					line := r.buf[r.start:i]
					r.skipLF = r.buf[i] == '\r'
					r.start = i + 1
					if len(line) > r.max {
						return nil, ErrEventTooLarge
					}
					return line, nil
				}
				if r.end-r.start > r.max {
					return nil, ErrEventTooLarge
				}
			}
		}
		if r.srcErr != nil {
			// Whatever is left is an incomplete line: dropped.
			return nil, r.srcErr
		}
		n, err := r.fill()
		if n == 0 && err == nil {
			empty++
			if empty >= maxEmptyReads {
				return nil, io.ErrNoProgress
			}
		} else {
			empty = 0
		}
		if err != nil {
			r.srcErr = err
		}
	}
}

var bom = []byte("\xEF\xBB\xBF")

// errInvalidRead reports a source that broke the io.Reader contract.
var errInvalidRead = errors.New("invalid read count from event stream source")

// findEOL returns the index in buf of the first CR or LF in buf[start:end],
// or -1. It remembers what it has already scanned, so that lines arriving in
// many small reads, and CR-only streams, are scanned in linear time.
func (r *Reader) findEOL() int {
	lf := -1
	if r.lfPos >= r.start {
		lf = r.lfPos
	} else {
		from := max(r.start, r.lfChecked)
		if i := bytes.IndexByte(r.buf[from:r.end], '\n'); i >= 0 {
			lf = from + i
			r.lfPos = lf
		} else {
			r.lfChecked = r.end
		}
	}
	limit := r.end
	if lf >= 0 {
		limit = lf
	}
	from := max(r.start, r.crChecked)
	if from < limit {
		if j := bytes.IndexByte(r.buf[from:limit], '\r'); j >= 0 {
			return from + j
		}
	}
	r.crChecked = max(r.crChecked, limit)
	return lf
}

// fill reads more bytes from the source, first making room by moving the
// unread bytes to the front of the buffer or by growing it (never beyond
// what the size limit needs).
func (r *Reader) fill() (int, error) {
	if r.start > 0 && (r.start == r.end || r.end == len(r.buf)) {
		shift := r.start
		copy(r.buf, r.buf[r.start:r.end])
		r.end -= shift
		r.start = 0
		r.lfPos -= shift
		if r.lfPos < 0 {
			r.lfPos = -1
		}
		r.lfChecked = max(r.lfChecked-shift, 0)
		r.crChecked = max(r.crChecked-shift, 0)
	}
	if r.end == len(r.buf) {
		// Room for a line of max bytes plus its end-of-line byte (or, at the
		// start, a BOM), so that "too large" is only ever decided on data.
		limit := r.max + len(bom) + 1
		if limit < 0 { // overflow with a huge MaxEventSize
			limit = math.MaxInt
		}
		size := min(max(2*len(r.buf), initialBufferSize), limit)
		if size <= len(r.buf) {
			// Cannot happen: readLine reports ErrEventTooLarge first.
			return 0, ErrEventTooLarge
		}
		nb := make([]byte, size)
		copy(nb, r.buf[:r.end])
		r.buf = nb
	}
	n, err := r.src.Read(r.buf[r.end:])
	if n < 0 || n > len(r.buf)-r.end {
		return 0, errInvalidRead
	}
	r.end += n
	return n, err
}

// processLine interprets one line; it returns an event when the line
// dispatched one.
func (r *Reader) processLine(line []byte) (Event, bool, error) {
	if len(line) == 0 {
		ev, ok := r.dispatch()
		return ev, ok, nil
	}
	if line[0] == ':' {
		if r.opts.OnComment != nil {
			r.opts.OnComment(decode(line[1:]))
		}
		return Event{}, false, nil
	}
	field, value := line, line[len(line):]
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "event":
		if string(value) != r.typ { // reuse the string when the type repeats
			r.typ = decode(value)
		}
	case "data":
		if len(r.data)+len(value)+1 > r.max {
			return Event{}, false, ErrEventTooLarge
		}
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
	case "id":
		if bytes.IndexByte(value, 0) >= 0 {
			break
		}
		if string(value) != r.idBuf {
			r.idBuf = decode(value)
		}
		r.evHasID = true
	case "retry":
		if v, ok := parseDigits(value); ok {
			r.retry, r.hasRetry = v, true
			r.evRetry, r.evHasRetry = v, true
		}
	}
	return Event{}, false, nil
}

// dispatch ends an event block (a blank line).
func (r *Reader) dispatch() (Event, bool) {
	r.lastID = r.idBuf
	hasID, retry, hasRetry := r.evHasID, r.evRetry, r.evHasRetry
	r.evHasID, r.evRetry, r.evHasRetry = false, 0, false
	typ := r.typ
	r.typ = ""
	if len(r.data) == 0 {
		return Event{}, false
	}
	ev := Event{
		HasID:       hasID,
		LastEventID: r.lastID,
		Type:        typ,
		Data:        decode(r.data[:len(r.data)-1]),
		Retry:       retry,
		HasRetry:    hasRetry,
	}
	if hasID {
		ev.ID = r.idBuf
	}
	if cap(r.data) > 1<<20 {
		r.data = nil // do not keep a huge buffer after one huge event
	} else {
		r.data = r.data[:0]
	}
	return ev, true
}

// parseDigits parses a non-empty string of ASCII digits; a value that does
// not fit in a uint64 is rejected (ignored, as browsers do).
func parseDigits(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}
