package sse

import (
	"strconv"
	"strings"
)

// ReplayDoneComment is the text of the SSE comment (written with
// AppendComment, so ":" + ReplayDoneComment + "\n") that a mercurectl hub
// sends right after the history replayed for a subscription that carried a
// cursor, before any live update. Standard clients ignore comments; the
// mercurectl client uses it to end a replay exactly when it has caught up
// with what the hub held when the subscription started.
const ReplayDoneComment = "mercurectl:replay-done"

// ReplayMarkerHeader is the response header that a hub sets (to any
// non-empty value, e.g. "1") on a subscription when it promises to send
// ReplayDoneComment after the replayed history. A client that sees it waits
// for the comment instead of guessing the end of the replay from idleness,
// which could end too early when the hub scans a long history.
const ReplayMarkerHeader = "Mercurectl-Replay-Marker"

// ValidField reports whether s can be the value of an `id` or `event` field:
// it must not contain CR, LF or NUL. Values from publishers must be checked
// with it before they reach AppendEvent, since a line break would let them
// inject fields or events (CWE-93); a NUL makes browsers ignore an `id`.
func ValidField(s string) bool {
	return !strings.ContainsAny(s, "\r\n\x00")
}

// AppendEvent appends the wire form of ev to dst and returns the result, in
// the field order of the reference hub (docs/protocol.md#event-stream):
//
//	event: TYPE     (when Type != "")
//	retry: N        (when HasRetry)
//	id: ID          (when HasID or ID != "")
//	data: LINE      (one per line of Data, split on CRLF, CR and LF)
//	(blank line)
//
// Data always produces at least one `data:` line, so that an event with
// empty data is still dispatched; a reader gets Data back with CRLF and CR
// turned into LF (docs/protocol.md#event-stream). LastEventID is not written.
//
// ID and Type should be checked with ValidField first. As a safety net,
// AppendEvent replaces any CR, LF or NUL in them with U+FFFD, so that no
// value can ever inject a field or an event.
func AppendEvent(dst []byte, ev Event) []byte {
	if ev.Type != "" {
		dst = append(dst, "event: "...)
		dst = appendField(dst, ev.Type)
		dst = append(dst, '\n')
	}
	if ev.HasRetry {
		dst = append(dst, "retry: "...)
		dst = strconv.AppendUint(dst, ev.Retry, 10)
		dst = append(dst, '\n')
	}
	if ev.HasID || ev.ID != "" {
		dst = append(dst, "id: "...)
		dst = appendField(dst, ev.ID)
		dst = append(dst, '\n')
	}
	dst = appendLines(dst, "data: ", ev.Data)
	return append(dst, '\n')
}

// AppendComment appends text as comment lines (":" + line + "\n", one per
// line of text split on CRLF, CR and LF) to dst. An empty text gives ":\n",
// the usual keep-alive. Readers pass each line's text, after the colon, to
// ReaderOptions.OnComment.
func AppendComment(dst []byte, text string) []byte {
	return appendLines(dst, ":", text)
}

// appendLines appends prefix+line+"\n" for every line of s, split on CRLF,
// CR and LF (at least one line, possibly empty).
func appendLines(dst []byte, prefix, s string) []byte {
	lf := -1 // index of the next LF at or after pos, once searched; -2 = none left
	pos := 0
	for {
		if lf != -2 && lf < pos {
			if i := strings.IndexByte(s[pos:], '\n'); i >= 0 {
				lf = pos + i
			} else {
				lf = -2
			}
		}
		limit := len(s)
		if lf >= 0 {
			limit = lf
		}
		end := limit // end of this line
		if i := strings.IndexByte(s[pos:limit], '\r'); i >= 0 {
			end = pos + i
		}
		dst = append(dst, prefix...)
		dst = append(dst, s[pos:end]...)
		dst = append(dst, '\n')
		if end == len(s) {
			return dst
		}
		next := end + 1
		if s[end] == '\r' && next < len(s) && s[next] == '\n' {
			next++
		}
		pos = next
	}
}

// appendField appends s with CR, LF and NUL replaced by U+FFFD.
func appendField(dst []byte, s string) []byte {
	if ValidField(s) {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\r', '\n', 0:
			dst = append(dst, "\uFFFD"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
