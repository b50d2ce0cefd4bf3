package history

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The binary form of an update shared by the durable stores. Each store
// writes its own head, which starts with a version byte of its own and the
// flags byte, then the common tail:
//
//	flags    byte (FlagHasRetry | FlagPrivate)
//	...      the store's own fields (bolt: time and id; Redis: none)
//	retry    uvarint
//	type     uvarint length + bytes
//	topics   uvarint count, then each as uvarint length + bytes
//	data     uvarint length + bytes
//
// The tail ends the encoding: nothing may follow the data. Changing the tail
// changes every store's format, so each must then bump its version byte.

// Flag bits of the flags byte. Any other bit set makes the update corrupt, so
// that a later format that adds one is refused rather than misread.
const (
	// FlagHasRetry is set when Update.HasRetry is.
	FlagHasRetry = 1 << iota
	// FlagPrivate is set when Update.Private is.
	FlagPrivate

	flagsKnown = FlagHasRetry | FlagPrivate
)

// ErrCorrupt is matched (with errors.Is) by every error of a Reader: the bytes
// are not an update in the stored form this version knows.
var ErrCorrupt = errors.New("corrupt stored update")

// corruptError is a Reader's error. Its text leaves out ErrCorrupt's so that a
// store can wrap its own sentinel around it without saying "corrupt" twice.
type corruptError struct{ msg string }

func (e *corruptError) Error() string { return e.msg }

// Is makes errors.Is(err, ErrCorrupt) hold.
func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

// AppendFlags appends the flags byte of u to dst.
func AppendFlags(dst []byte, u *Update) []byte {
	var flags byte
	if u.HasRetry {
		flags |= FlagHasRetry
	}
	if u.Private {
		flags |= FlagPrivate
	}
	return append(dst, flags)
}

// AppendString appends s to dst as a uvarint length followed by its bytes.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// AppendTail appends the tail of u (retry, type, topics, data) to dst.
func AppendTail(dst []byte, u *Update) []byte {
	dst = binary.AppendUvarint(dst, u.Retry)
	dst = AppendString(dst, u.Type)
	dst = binary.AppendUvarint(dst, uint64(len(u.Topics)))
	for _, t := range u.Topics {
		dst = AppendString(dst, t)
	}
	return AppendString(dst, u.Data)
}

// Size is what u counts for Retention.MaxBytes: the length of its id, plus
// the flags byte and the tail of the form above (retry, type, topics and
// data, with their length prefixes). It is the same on every store, so that
// a byte bound keeps the same updates whatever the transport; what a store
// adds of its own (bolt's version byte, time, pages and id index; Redis's
// entry fields and index) is not counted.
func Size(u *Update) uint64 {
	return uint64(len(u.ID)) + 1 + uint64(tailLen(u))
}

// uvarintLen is the length of v as a uvarint.
func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// tailLen is the exact length of the tail of u.
func tailLen(u *Update) int {
	n := uvarintLen(u.Retry) + uvarintLen(uint64(len(u.Type))) + len(u.Type) +
		uvarintLen(uint64(len(u.Topics))) + uvarintLen(uint64(len(u.Data))) + len(u.Data)
	for _, t := range u.Topics {
		n += uvarintLen(uint64(len(t))) + len(t)
	}
	return n
}

// TailSize returns an upper bound of the size of the tail of u, to size a
// buffer before AppendTail.
func TailSize(u *Update) int {
	n := 3*binary.MaxVarintLen64 + len(u.Type) + len(u.Data)
	for _, t := range u.Topics {
		n += binary.MaxVarintLen64 + len(t)
	}
	return n
}

// Bytes is what a Reader reads from: a string, whose fields are then
// substrings of it (no copy), or a byte slice, whose fields then alias it.
type Bytes interface {
	string | []byte
}

// Reader decodes the stored form field by field, checking every bound. The
// first failure sticks: later reads return zero values and Err reports where
// decoding stopped. A Reader does not allocate unless it fails (or a []byte
// Reader's Tail copies text out), so a store can read the head of a stored
// update on a hot path for free.
type Reader[B Bytes] struct {
	b   B
	off int
	err error
}

// NewReader returns a Reader of b from its first byte.
func NewReader[B Bytes](b B) Reader[B] {
	return Reader[B]{b: b}
}

// Err returns nil, or the first failure, which matches ErrCorrupt.
func (r *Reader[B]) Err() error { return r.err }

// Offset returns the offset of the next byte to read.
func (r *Reader[B]) Offset() int { return r.off }

// Fail records that the field what is bad at the current offset, unless a
// failure is already recorded. Stores call it for checks of their own.
func (r *Reader[B]) Fail(what string) {
	if r.err == nil {
		r.err = &corruptError{fmt.Sprintf("bad %s at offset %d", what, r.off)}
	}
}

// Byte reads one byte.
func (r *Reader[B]) Byte(what string) byte {
	if r.err != nil || r.off >= len(r.b) {
		r.Fail(what)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// Version reads the version byte and fails unless it is want.
func (r *Reader[B]) Version(want byte) {
	off := r.off
	if v := r.Byte("version"); r.err == nil && v != want {
		r.err = &corruptError{fmt.Sprintf("unknown format version %d at offset %d", v, off)}
	}
}

// Flags reads the flags byte, fails on unknown bits and, when u is not nil,
// sets u.HasRetry and u.Private from it.
func (r *Reader[B]) Flags(u *Update) {
	off := r.off
	flags := r.Byte("flags")
	if r.err != nil {
		return
	}
	if flags&^flagsKnown != 0 {
		r.off = off
		r.Fail("flags")
		return
	}
	if u != nil {
		u.HasRetry = flags&FlagHasRetry != 0
		u.Private = flags&FlagPrivate != 0
	}
}

// Uvarint reads an unsigned varint in the encoding/binary form, refusing one
// that is truncated or overflows 64 bits.
func (r *Reader[B]) Uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	var v uint64
	for i, shift := 0, uint(0); ; i, shift = i+1, shift+7 {
		p := r.off + i
		if p >= len(r.b) || i == binary.MaxVarintLen64 {
			r.Fail(what)
			return 0
		}
		c := r.b[p]
		if i == binary.MaxVarintLen64-1 && c > 1 {
			r.Fail(what)
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			r.off = p + 1
			return v
		}
	}
}

// Varint reads a signed (zig-zag) varint in the encoding/binary form.
func (r *Reader[B]) Varint(what string) int64 {
	ux := r.Uvarint(what)
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// Field reads a uvarint length and returns that many following bytes, which
// alias the Reader's input. A failure is reported at the length's offset.
func (r *Reader[B]) Field(what string) B {
	var zero B
	start := r.off
	n := r.Uvarint(what)
	if r.err != nil {
		return zero
	}
	if n > uint64(len(r.b)-r.off) {
		r.off = start
		r.Fail(what)
		return zero
	}
	f := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return f
}

// str reads a length-prefixed field as a string: a substring of a string
// input, a copy out of a []byte one.
func (r *Reader[B]) str(what string) string {
	f := r.Field(what)
	if len(f) == 0 {
		return ""
	}
	return string(f)
}

// Tail reads the tail into u (Retry, Type, Topics, Data) and then fails if
// any byte follows it. On failure u may be partly filled in.
func (r *Reader[B]) Tail(u *Update) {
	u.Retry = r.Uvarint("retry")
	u.Type = r.str("type")
	n := r.Uvarint("topic count")
	// Each topic takes at least one byte, which bounds the allocation on a
	// corrupt count.
	if r.err == nil && n > uint64(len(r.b)-r.off) {
		r.Fail("topic count")
	}
	if r.err == nil && n > 0 {
		u.Topics = make([]string, n)
		for i := range u.Topics {
			u.Topics[i] = r.str("topic")
		}
	}
	u.Data = r.str("data")
	if r.err == nil && r.off != len(r.b) {
		r.Fail("trailing bytes")
	}
}
