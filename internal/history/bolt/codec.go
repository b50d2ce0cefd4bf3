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

// The stored form of an update (the log bucket's value; Seq is the key):
//
//	version  byte (codecVersion)
//	flags    byte (history.FlagHasRetry | history.FlagPrivate)
//	seconds  varint  (Time.Unix)
//	nanos    uvarint (Time.Nanosecond)
//	id       uvarint length + bytes
//	retry    uvarint
//	type     uvarint length + bytes
//	topics   uvarint count, then each as uvarint length + bytes
//	data     uvarint length + bytes
//
// From retry on it is the tail shared with the Redis store (history.AppendTail).
// Time and ID come first so that eviction and the age check can read them
// without decoding the rest.

// encodedSize returns an upper bound of the encoded size of u.
func encodedSize(u *history.Update) int {
	return 2 + 3*binary.MaxVarintLen64 + len(u.ID) + history.TailSize(u)
}

// appendUpdate appends the stored form of u (all but Seq) to dst.
func appendUpdate(dst []byte, u *history.Update) []byte {
	dst = append(dst, codecVersion)
	dst = history.AppendFlags(dst, u)
	dst = binary.AppendVarint(dst, u.Time.Unix())
	dst = binary.AppendUvarint(dst, uint64(u.Time.Nanosecond()))
	dst = history.AppendString(dst, u.ID)
	return history.AppendTail(dst, u)
}

// readHead reads the version, flags (into u unless nil) and time.
func readHead[B history.Bytes](r *history.Reader[B], u *history.Update) time.Time {
	r.Version(codecVersion)
	r.Flags(u)
	sec := r.Varint("time")
	nsec := r.Uvarint("time")
	if r.Err() == nil && nsec >= uint64(time.Second) {
		r.Fail("time")
	}
	if r.Err() != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec))
}

// decodeUpdate decodes the stored form of the update at seq. Strings are cut
// from one copy of v, so that decoding an update costs one allocation for all
// of its text however many topics it has, and nothing refers to bolt's memory
// map once the read transaction ends.
func decodeUpdate(seq uint64, v []byte) (*history.Update, error) {
	r := history.NewReader(string(v))
	u := &history.Update{Seq: seq}
	u.Time = readHead(&r, u)
	u.ID = r.Field("id")
	r.Tail(u)
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("decode update %d: %w: %w", seq, ErrCorrupt, err)
	}
	return u, nil
}

// decodeHead returns the time and id of a stored update, and its
// history.Size, without decoding the rest. id aliases v. It does not allocate
// unless v is corrupt: eviction calls it for every update it drops.
func decodeHead(v []byte) (t time.Time, id []byte, size uint64, err error) {
	r := history.NewReader(v)
	t = readHead(&r, nil)
	id = r.Field("id")
	if err := r.Err(); err != nil {
		return time.Time{}, nil, 0, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	// What follows the id is the tail; Size counts the id, the flags byte
	// and the tail.
	return t, id, uint64(len(id) + 1 + len(v) - r.Offset()), nil
}

// decodeTime returns the time of a stored update. Like decodeHead, it does
// not allocate unless v is corrupt.
func decodeTime(v []byte) (time.Time, error) {
	r := history.NewReader(v)
	t := readHead(&r, nil)
	if err := r.Err(); err != nil {
		return time.Time{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return t, nil
}
