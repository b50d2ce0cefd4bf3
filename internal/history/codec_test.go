package history

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

// sample has every field set, with varints of two bytes, so that the pinned
// bytes below exercise each part of the layout.
var sample = Update{
	ID:       "ab",
	Topics:   []string{"t", "u/{x}"},
	Data:     "hi\n",
	Type:     "ev",
	Retry:    1000,
	HasRetry: true,
	Private:  true,
	Time:     time.Unix(-65, 300),
}

// The expected bytes are worked out by hand from the layouts documented in
// codec.go, bolt/codec.go and redis/codec.go: they pin the format that files
// and streams already hold, so they must never be regenerated from the code.
var (
	// tail of sample: retry 1000 = 0x68|0x80, 1000>>7 = 7; then "ev"; two
	// topics "t" and "u/{x}"; data "hi\n".
	sampleTail = []byte{
		0xe8, 0x07,
		0x02, 'e', 'v',
		0x02, 0x01, 't', 0x05, 'u', '/', '{', 'x', '}',
		0x03, 'h', 'i', '\n',
	}
	// bolt: version 1, flags 3, seconds -65 (zig-zag 129 = 0x81 0x01),
	// nanos 300 (0x2c|0x80, 2), id "ab", then the tail.
	sampleBolt = slices.Concat([]byte{
		0x01, 0x03,
		0x81, 0x01,
		0xac, 0x02,
		0x02, 'a', 'b',
	}, sampleTail)
	// Redis field u: version 1, flags 3, then the tail.
	sampleRedis = slices.Concat([]byte{0x01, 0x03}, sampleTail)
)

// appendBolt and appendRedis assemble the two stores' layouts from the
// shared pieces, the way bolt/codec.go and redis/codec.go do.
func appendBolt(dst []byte, u *Update) []byte {
	dst = AppendFlags(append(dst, 1), u)
	dst = binary.AppendVarint(dst, u.Time.Unix())
	dst = binary.AppendUvarint(dst, uint64(u.Time.Nanosecond()))
	dst = AppendString(dst, u.ID)
	return AppendTail(dst, u)
}

func appendRedis(dst []byte, u *Update) []byte {
	return AppendTail(AppendFlags(append(dst, 1), u), u)
}

func TestCodecPinnedBytes(t *testing.T) {
	t.Parallel()
	if got := AppendTail(nil, &sample); !bytes.Equal(got, sampleTail) {
		t.Errorf("AppendTail =\n%x, want\n%x", got, sampleTail)
	}
	if got := appendBolt(nil, &sample); !bytes.Equal(got, sampleBolt) {
		t.Errorf("bolt layout =\n%x, want\n%x", got, sampleBolt)
	}
	if got := appendRedis(nil, &sample); !bytes.Equal(got, sampleRedis) {
		t.Errorf("redis layout =\n%x, want\n%x", got, sampleRedis)
	}
	for _, c := range []struct {
		u    Update
		want byte
	}{{Update{}, 0}, {Update{HasRetry: true}, 1}, {Update{Private: true}, 2}} {
		if got := AppendFlags(nil, &c.u); !bytes.Equal(got, []byte{c.want}) {
			t.Errorf("AppendFlags(%+v) = %x, want %02x", c.u, got, c.want)
		}
	}
	// The empty update: every length and count is a single zero byte.
	if got := appendBolt(nil, &Update{Time: time.Unix(0, 0)}); !bytes.Equal(got, []byte{1, 0, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("bolt layout of the empty update = %x", got)
	}
	if got := len(sampleTail); got > TailSize(&sample) {
		t.Errorf("tail of %d bytes exceeds TailSize %d", got, TailSize(&sample))
	}
}

// decodeBolt and decodeRedis read the pinned layouts back.
func decodeBolt[B Bytes](b B) (*Update, error) {
	r := NewReader(b)
	u := &Update{}
	r.Version(1)
	r.Flags(u)
	sec := r.Varint("time")
	nsec := r.Uvarint("time")
	u.Time = time.Unix(sec, int64(nsec))
	u.ID = string(r.Field("id"))
	r.Tail(u)
	return u, r.Err()
}

func decodeRedis(s string) (*Update, error) {
	r := NewReader(s)
	u := &Update{ID: sample.ID, Time: sample.Time}
	r.Version(1)
	r.Flags(u)
	r.Tail(u)
	return u, r.Err()
}

func sameUpdate(a, b *Update) bool {
	return a.ID == b.ID && slices.Equal(a.Topics, b.Topics) && a.Data == b.Data && a.Type == b.Type &&
		a.Retry == b.Retry && a.HasRetry == b.HasRetry && a.Private == b.Private && a.Time.Equal(b.Time)
}

func TestReaderDecodesPinnedBytes(t *testing.T) {
	t.Parallel()
	for name, dec := range map[string]func() (*Update, error){
		"bolt string": func() (*Update, error) { return decodeBolt(string(sampleBolt)) },
		"bolt bytes":  func() (*Update, error) { return decodeBolt(sampleBolt) },
		"redis":       func() (*Update, error) { return decodeRedis(string(sampleRedis)) },
	} {
		u, err := dec()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !sameUpdate(u, &sample) {
			t.Errorf("%s: decoded %+v, want %+v", name, u, sample)
		}
	}
}

func TestReaderRefusesCorruptInput(t *testing.T) {
	t.Parallel()
	// Every truncation is refused, in either layout.
	for i := range len(sampleBolt) {
		if _, err := decodeBolt(sampleBolt[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("bolt decode of %d of %d bytes = %v, want ErrCorrupt", i, len(sampleBolt), err)
		}
	}
	for i := range len(sampleRedis) {
		if _, err := decodeRedis(string(sampleRedis[:i])); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("redis decode of %d of %d bytes = %v, want ErrCorrupt", i, len(sampleRedis), err)
		}
	}
	for name, b := range map[string]string{
		"version":        "\x02\x00\x00\x00\x00\x00",
		"flag bit":       "\x01\x04\x00\x00\x00\x00",
		"high flag bit":  "\x01\x80\x00\x00\x00\x00",
		"trailing":       "\x01\x00\x00\x00\x00\x00\x00",
		"topic count":    "\x01\x00\x00\x00\xff\xff\xff\xff\x0f",
		"topic past end": "\x01\x00\x00\x00\x01\x05ab",
		"varint 10th":    "\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02\x00\x00\x00",
		"varint 11 long": "\x01\x00\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01\x00\x00\x00",
		"data past end":  "\x01\x00\x00\x00\x00\x02a",
	} {
		_, err := decodeRedis(b)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decode of %x = %v, want ErrCorrupt", name, b, err)
		}
	}
	// The largest uvarint is accepted (ten bytes, the last one 1).
	u, err := decodeRedis("\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x00\x00\x00")
	if err != nil || u.Retry != math.MaxUint64 || !u.HasRetry {
		t.Errorf("decode of the largest retry = %+v, %v", u, err)
	}
}

func TestReaderErrorSaysWhere(t *testing.T) {
	t.Parallel()
	r := NewReader("\x01\x00\x00\x00\x01\x05ab")
	r.Version(1)
	r.Flags(nil)
	r.Tail(&Update{})
	if err := r.Err(); err == nil || err.Error() != "bad topic at offset 5" {
		t.Errorf("error = %v, want bad topic at offset 5", err)
	}
	r = NewReader("\x07")
	r.Version(1)
	if err := r.Err(); err == nil || err.Error() != "unknown format version 7 at offset 0" {
		t.Errorf("error = %v, want the unknown version", err)
	}
	// The first failure sticks.
	r.Fail("later")
	if r.Byte("more") != 0 || r.Err().Error() != "unknown format version 7 at offset 0" {
		t.Errorf("a later failure replaced the first: %v", r.Err())
	}
}

// TestReaderHeadDoesNotAllocate guards bolt's eviction path, which reads the
// time and id of every update it drops from a []byte.
func TestReaderHeadDoesNotAllocate(t *testing.T) {
	var sink time.Time
	var id []byte
	allocs := testing.AllocsPerRun(100, func() {
		r := NewReader(sampleBolt)
		r.Version(1)
		r.Flags(nil)
		sec := r.Varint("time")
		nsec := r.Uvarint("time")
		id = r.Field("id")
		if r.Err() != nil {
			panic(r.Err())
		}
		sink = time.Unix(sec, int64(nsec))
	})
	if allocs != 0 {
		t.Errorf("reading the head allocates %v times", allocs)
	}
	if !sink.Equal(sample.Time) || string(id) != sample.ID {
		t.Errorf("head = %v, %q", sink, id)
	}
}

func FuzzTail(f *testing.F) {
	f.Add(sampleTail)
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01, 'x', 0x01, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(string(b))
		var u Update
		r.Tail(&u)
		// The []byte Reader agrees with the string one.
		rb := NewReader(b)
		var ub Update
		rb.Tail(&ub)
		if (r.Err() == nil) != (rb.Err() == nil) || (r.Err() == nil && !sameUpdate(&u, &ub)) {
			t.Fatalf("string and []byte readers disagree on %x: %v, %v", b, r.Err(), rb.Err())
		}
		// Uvarint and Varint agree with encoding/binary.
		rv := NewReader(b)
		if v, n := binary.Uvarint(b); n > 0 != (rv.Uvarint("v") == v && rv.Err() == nil && rv.Offset() == n) {
			t.Fatalf("Uvarint of %x disagrees with binary.Uvarint (%d, %d): %v", b, v, n, rv.Err())
		}
		rv = NewReader(b)
		if v, n := binary.Varint(b); n > 0 != (rv.Varint("v") == v && rv.Err() == nil && rv.Offset() == n) {
			t.Fatalf("Varint of %x disagrees with binary.Varint (%d, %d): %v", b, v, n, rv.Err())
		}
		if err := r.Err(); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			return
		}
		// What decodes re-encodes to the same bytes, or (when varints were
		// written longer than needed) to shorter bytes that decode the same.
		again := AppendTail(nil, &u)
		if len(again) > TailSize(&u) {
			t.Fatalf("tail of %d bytes exceeds TailSize %d", len(again), TailSize(&u))
		}
		if !bytes.Equal(again, b) {
			r2 := NewReader(again)
			var u2 Update
			r2.Tail(&u2)
			if r2.Err() != nil || !sameUpdate(&u2, &u) || len(again) > len(b) {
				t.Fatalf("re-encoding %x gives %x, which decodes differently: %v", b, again, r2.Err())
			}
		}
	})
}

// TestSizeCountsTheSharedForm pins what an update counts for a byte bound:
// its id, the flags byte and the tail, whatever the store.
func TestSizeCountsTheSharedForm(t *testing.T) {
	t.Parallel()
	if got, want := Size(&sample), uint64(len(sample.ID)+1+len(sampleTail)); got != want || got != 21 {
		t.Errorf("Size(sample) = %d, want %d (21)", got, want)
	}
	long := string(bytes.Repeat([]byte{'x'}, 20000)) // three-byte length prefixes
	for _, u := range []*Update{
		{},
		{ID: "a", Topics: []string{"t"}, Data: "d"},
		{ID: long, Type: long, Topics: []string{long, "", long}, Data: long, Retry: math.MaxUint64, HasRetry: true},
		{Topics: make([]string, 200), Retry: 127},
		{Retry: 128, Private: true, SubscriptionEvent: true},
	} {
		want := uint64(len(u.ID) + len(AppendTail(AppendFlags(nil, u), u)))
		if got := Size(u); got != want {
			t.Errorf("Size = %d, want %d (id %d bytes, %d topics)", got, want, len(u.ID), len(u.Topics))
		}
	}
}
