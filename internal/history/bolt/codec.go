package bolt

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
)

// codecVersion is the first byte of every stored update. A file written by a
// later format is refused rather than misread.
const codecVersion = 1

const (
	flagHasRetry = 1 << iota
	flagPrivate
)

// The stored form of an update (the log bucket's value; Seq is the key):
//
//	version  byte (codecVersion)
//	flags    byte (flagHasRetry | flagPrivate)
//	seconds  varint  (Time.Unix)
//	nanos    uvarint (Time.Nanosecond)
//	id       uvarint length + bytes
//	retry    uvarint
//	type     uvarint length + bytes
//	topics   uvarint count, then each as uvarint length + bytes
//	data     uvarint length + bytes
//
// Time and ID come first so that eviction and the age check can read them
// without decoding the rest.

// encodedSize returns an upper bound of the encoded size of u.
func encodedSize(u *history.Update) int {
	n := 2 + 3*binary.MaxVarintLen64 + 4*binary.MaxVarintLen64
	n += len(u.ID) + len(u.Type) + len(u.Data)
	for _, t := range u.Topics {
		n += binary.MaxVarintLen64 + len(t)
	}
	return n
}

// appendUpdate appends the stored form of u (all but Seq) to dst.
func appendUpdate(dst []byte, u *history.Update) []byte {
	var flags byte
	if u.HasRetry {
		flags |= flagHasRetry
	}
	if u.Private {
		flags |= flagPrivate
	}
	dst = append(dst, codecVersion, flags)
	dst = binary.AppendVarint(dst, u.Time.Unix())
	dst = binary.AppendUvarint(dst, uint64(u.Time.Nanosecond()))
	dst = appendString(dst, u.ID)
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

// reader decodes the stored form. Strings are cut from str, one copy of the
// whole value, so that decoding an update costs one allocation for all of its
// text however many topics it has, and nothing refers to bolt's memory map
// once the read transaction ends.
type reader struct {
	b   []byte
	str string
	off int
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad %s at offset %d", ErrCorrupt, what, r.off)
	}
}

func (r *reader) u8(what string) byte {
	if r.err != nil || r.off >= len(r.b) {
		r.fail(what)
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.off += n
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.off += n
	return v
}

// field returns the next length-prefixed field as a sub-slice of r.b.
func (r *reader) field(what string) []byte {
	n := r.uvarint(what)
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail(what)
		return nil
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b
}

// head reads the version, flags and time.
func (r *reader) head() (flags byte, t time.Time) {
	if v := r.u8("version"); r.err == nil && v != codecVersion {
		r.err = fmt.Errorf("%w: unknown update format version %d", ErrCorrupt, v)
	}
	flags = r.u8("flags")
	if r.err == nil && flags&^(flagHasRetry|flagPrivate) != 0 {
		r.fail("flags")
	}
	sec := r.varint("time")
	nsec := r.uvarint("time")
	if r.err == nil && nsec >= uint64(time.Second) {
		r.fail("time")
	}
	if r.err != nil {
		return 0, time.Time{}
	}
	return flags, time.Unix(sec, int64(nsec))
}

// decodeUpdate decodes the stored form of the update at seq. It copies
// everything it keeps out of v.
func decodeUpdate(seq uint64, v []byte) (*history.Update, error) {
	r := reader{b: v, str: string(v)}
	flags, t := r.head()
	u := &history.Update{
		Seq:      seq,
		Time:     t,
		HasRetry: flags&flagHasRetry != 0,
		Private:  flags&flagPrivate != 0,
	}
	u.ID = r.sub("id")
	u.Retry = r.uvarint("retry")
	u.Type = r.sub("type")
	n := r.uvarint("topic count")
	// Each topic takes at least one byte, which bounds the allocation on a
	// corrupt count.
	if r.err == nil && n > uint64(len(v)-r.off) {
		r.fail("topic count")
	}
	if r.err == nil && n > 0 {
		u.Topics = make([]string, n)
		for i := range u.Topics {
			u.Topics[i] = r.sub("topic")
		}
	}
	u.Data = r.sub("data")
	if r.err == nil && r.off != len(v) {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode update %d: %w", seq, r.err)
	}
	return u, nil
}

// sub returns the next length-prefixed field as a substring of r.str.
func (r *reader) sub(what string) string {
	b := r.field(what)
	if r.err != nil || len(b) == 0 {
		return ""
	}
	return r.str[r.off-len(b) : r.off]
}

// decodeHead returns the time and id of a stored update without decoding the
// rest. id aliases v.
func decodeHead(v []byte) (t time.Time, id []byte, err error) {
	r := reader{b: v}
	_, t = r.head()
	id = r.field("id")
	return t, id, r.err
}

// decodeTime returns the time of a stored update.
func decodeTime(v []byte) (time.Time, error) {
	r := reader{b: v}
	_, t := r.head()
	return t, r.err
}
