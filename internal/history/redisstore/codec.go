package redisstore

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
)

// Field names of a stream entry. Every entry holds these five (entries
// written before the kinds' counters existed, the first three only):
//
//	i  the update's ID, as is (the trim and lookup scripts read it to maintain
//	   the id index without decoding the rest)
//	t  the update's Time: Unix nanoseconds in offset binary (the sign bit
//	   flipped, so that earlier is smaller) as 20 zero-padded decimal digits,
//	   which the scripts compare exactly as two 10-digit halves (Lua numbers
//	   are doubles)
//	u  everything else, in the versioned binary form below
//	n  the entry's kind's count of entries, just after it was appended
//	b  the entry's kind's sum of sizes, just after it was appended (both in
//	   decimal; see scripts.go)
//
// The stream entry ID itself carries the Seq (see parseSeq), and the stream
// the kind. An entry's history.Size is len(i) + len(u) - 1: the id, and u
// without its version byte.
const (
	fieldID     = "i"
	fieldTime   = "t"
	fieldUpdate = "u"
	fieldCount  = "n"
	fieldBytes  = "b"
)

// codecVersion is the first byte of field u. An entry written by a later
// format is skipped with an error log rather than misread.
const codecVersion = 1

// errCorrupt marks an entry this version cannot decode.
var errCorrupt = errors.New("corrupt stream entry")

// The form of field u:
//
//	version  byte (codecVersion)
//	flags    byte (history.FlagHasRetry | history.FlagPrivate)
//	retry    uvarint
//	type     uvarint length + bytes
//	topics   uvarint count, then each as uvarint length + bytes
//	data     uvarint length + bytes
//
// From retry on it is the tail shared with the bolt store (history.AppendTail).

// encodeUpdate returns the u field of u.
func encodeUpdate(u *history.Update) []byte {
	dst := make([]byte, 0, 2+history.TailSize(u))
	dst = append(dst, codecVersion)
	dst = history.AppendFlags(dst, u)
	return history.AppendTail(dst, u)
}

// timeDigits is the width of field t.
const timeDigits = 20

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// encodeTime returns the t field for t. Times outside the range of Unix
// nanoseconds (years 1678 to 2262) are stored as its bounds.
func encodeTime(t time.Time) string {
	var ns int64
	switch {
	case t.Before(minTime):
		ns = math.MinInt64
	case t.After(maxTime):
		ns = math.MaxInt64
	default:
		ns = t.UnixNano()
	}
	return fmt.Sprintf("%020d", uint64(ns)^(1<<63))
}

// decodeTime parses a t field.
func decodeTime(s string) (time.Time, error) {
	if len(s) != timeDigits {
		return time.Time{}, fmt.Errorf("%w: bad time %q", errCorrupt, s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: bad time %q", errCorrupt, s)
	}
	return time.Unix(0, int64(v^(1<<63))), nil
}

// decodeEntry rebuilds the update stored as the given fields at seq. Strings
// are cut from one copy of the u field, so decoding costs one allocation for
// all of an update's text however many topics it has.
func decodeEntry(seq uint64, id, tm, blob string) (*history.Update, error) {
	t, err := decodeTime(tm)
	if err != nil {
		return nil, fmt.Errorf("decode update %d: %w", seq, err)
	}
	r := history.NewReader(blob)
	r.Version(codecVersion)
	u := &history.Update{Seq: seq, ID: id, Time: t}
	r.Flags(u)
	r.Tail(u)
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("decode update %d: %w: %w", seq, errCorrupt, err)
	}
	return u, nil
}
