package redisstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
)

// Field names of a stream entry. Every entry holds exactly these three:
//
//	i  the update's ID, as is (the trim and lookup scripts read it to maintain
//	   the id index without decoding the rest)
//	t  the update's Time: Unix nanoseconds in offset binary (the sign bit
//	   flipped, so that earlier is smaller) as 20 zero-padded decimal digits,
//	   which the scripts compare exactly as two 10-digit halves (Lua numbers
//	   are doubles)
//	u  everything else, in the versioned binary form below
//
// The stream entry ID itself carries the Seq (see seqID).
const (
	fieldID     = "i"
	fieldTime   = "t"
	fieldUpdate = "u"
)

// codecVersion is the first byte of field u. An entry written by a later
// format is skipped with an error log rather than misread.
const codecVersion = 1

const (
	flagHasRetry = 1 << iota
	flagPrivate
)

// errCorrupt marks an entry this version cannot decode.
var errCorrupt = errors.New("corrupt stream entry")

// The form of field u:
//
//	version  byte (codecVersion)
//	flags    byte (flagHasRetry | flagPrivate)
//	retry    uvarint
//	type     uvarint length + bytes
//	topics   uvarint count, then each as uvarint length + bytes
//	data     uvarint length + bytes

// encodeUpdate returns the u field of u.
func encodeUpdate(u *history.Update) []byte {
	n := 2 + 3*binary.MaxVarintLen64 + len(u.Type) + len(u.Data)
	for _, t := range u.Topics {
		n += binary.MaxVarintLen64 + len(t)
	}
	dst := make([]byte, 0, n)
	var flags byte
	if u.HasRetry {
		flags |= flagHasRetry
	}
	if u.Private {
		flags |= flagPrivate
	}
	dst = append(dst, codecVersion, flags)
	dst = binary.AppendUvarint(dst, u.Retry)
	dst = appendString(dst, u.Type)
	dst = binary.AppendUvarint(dst, uint64(len(u.Topics)))
	for _, t := range u.Topics {
		dst = appendString(dst, t)
	}
	return appendString(dst, u.Data)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
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
	r := reader{s: blob}
	if v := r.u8("version"); r.err == nil && v != codecVersion {
		return nil, fmt.Errorf("decode update %d: %w: unknown format version %d", seq, errCorrupt, v)
	}
	flags := r.u8("flags")
	u := &history.Update{
		Seq:      seq,
		ID:       id,
		Time:     t,
		HasRetry: flags&flagHasRetry != 0,
		Private:  flags&flagPrivate != 0,
	}
	u.Retry = r.uvarint("retry")
	u.Type = r.str("type")
	n := r.uvarint("topic count")
	// Each topic takes at least one byte, which bounds the allocation on a
	// corrupt count.
	if r.err == nil && n > uint64(len(blob)-r.off) {
		r.fail("topic count")
	}
	if r.err == nil && n > 0 {
		u.Topics = make([]string, n)
		for i := range u.Topics {
			u.Topics[i] = r.str("topic")
		}
	}
	u.Data = r.str("data")
	if r.err == nil && r.off != len(blob) {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode update %d: %w", seq, r.err)
	}
	return u, nil
}

type reader struct {
	s   string
	off int
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad %s at offset %d", errCorrupt, what, r.off)
	}
}

func (r *reader) u8(what string) byte {
	if r.err != nil || r.off >= len(r.s) {
		r.fail(what)
		return 0
	}
	c := r.s[r.off]
	r.off++
	return c
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if r.off >= len(r.s) || shift > 63 {
			r.fail(what)
			return 0
		}
		c := r.s[r.off]
		r.off++
		if shift == 63 && c > 1 {
			r.fail(what)
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
}

func (r *reader) str(what string) string {
	n := r.uvarint(what)
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.s)-r.off) {
		r.fail(what)
		return ""
	}
	s := r.s[r.off : r.off+int(n)]
	r.off += int(n)
	return s
}
