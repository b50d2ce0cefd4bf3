package bolt

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/historytest"
)

var codecCases = []*history.Update{
	{ID: "a", Topics: []string{"t"}, Data: "d", Time: time.Unix(1700000000, 5)},
	{ID: "", Time: time.Unix(0, 0)},
	{ID: "full", Topics: []string{"x", "", "https://example.com/{id}"}, Data: "l1\nl2\r\n", Type: "ty",
		Retry: math.MaxUint64, HasRetry: true, Private: true, Time: time.Date(1900, 1, 1, 0, 0, 0, 999999999, time.UTC)},
	{ID: "far", Time: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), Retry: 7},
}

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	for _, in := range codecCases {
		enc := appendUpdate(nil, in)
		if len(enc) > encodedSize(in) {
			t.Errorf("%q: encoded %d bytes, more than the bound %d", in.ID, len(enc), encodedSize(in))
		}
		if enc[0] != codecVersion {
			t.Errorf("%q: first byte %d, want the version", in.ID, enc[0])
		}
		out, err := decodeUpdate(42, enc)
		if err != nil {
			t.Fatalf("%q: %v", in.ID, err)
		}
		want := *in
		want.Seq = 42
		if d := historytest.SameUpdate(out, &want); d != "" {
			t.Errorf("%q: %s", in.ID, d)
		}
		tm, id, size, err := decodeHead(enc)
		if err != nil || !tm.Equal(in.Time) || string(id) != in.ID || size != history.Size(in) {
			t.Errorf("%q: decodeHead = %v, %q, %d, %v; want size %d", in.ID, tm, id, size, err, history.Size(in))
		}
	}
}

func TestCodecDecodedTextDoesNotAliasInput(t *testing.T) {
	t.Parallel()
	enc := appendUpdate(nil, &history.Update{ID: "id", Topics: []string{"topic"}, Data: "data"})
	out, err := decodeUpdate(1, enc)
	if err != nil {
		t.Fatal(err)
	}
	// bbolt reuses the memory behind a value once the transaction ends.
	for i := range enc {
		enc[i] = 'X'
	}
	if out.ID != "id" || out.Topics[0] != "topic" || out.Data != "data" {
		t.Errorf("decoded update changed with its input: %+v", out)
	}
}

func TestCodecCorrupt(t *testing.T) {
	t.Parallel()
	good := appendUpdate(nil, codecCases[2])
	// Every truncation is refused.
	for i := range len(good) {
		if _, err := decodeUpdate(1, good[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decode of %d of %d bytes = %v, want ErrCorrupt", i, len(good), err)
		}
	}
	bad := [][]byte{
		append([]byte{2}, good[1:]...),                              // unknown version
		append(bytes.Clone(good), 0),                                // trailing byte
		{codecVersion, 0, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03, 0},       // nanos = 1e9
		{codecVersion, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, // huge topic count
	}
	for _, b := range bad {
		if _, err := decodeUpdate(1, b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decode of %x = %v, want ErrCorrupt", b, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, u := range codecCases {
		f.Add(appendUpdate(nil, u))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := decodeUpdate(7, b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// What decodes survives a round trip unchanged (varints may have
		// been written longer than needed, so compare updates, not bytes).
		again, err := decodeUpdate(7, appendUpdate(nil, u))
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", u, err)
		}
		if d := historytest.SameUpdate(again, u); d != "" {
			t.Fatalf("round trip of %x: %s", b, d)
		}
	})
}
