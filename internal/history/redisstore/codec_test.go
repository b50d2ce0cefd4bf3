package redisstore

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/history/historytest"
)

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	for _, u := range []*history.Update{
		{ID: "a", Topics: []string{"x", "y/{id}"}, Data: "l1\nl2", Type: "t", Retry: 5, HasRetry: true, Private: true,
			Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)},
		{ID: "", Time: time.Unix(0, 0)},
		{ID: "neg", Topics: []string{""}, Time: time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.UTC), Retry: math.MaxUint64},
	} {
		got, err := decodeEntry(42, u.ID, encodeTime(u.Time), string(encodeUpdate(u)))
		if err != nil {
			t.Fatalf("decode(%q): %v", u.ID, err)
		}
		want := *u
		want.Seq = 42
		if d := historytest.SameUpdate(got, &want); d != "" {
			t.Errorf("round trip of %q: %s", u.ID, d)
		}
	}
}

func TestEncodeTimeOrder(t *testing.T) {
	t.Parallel()
	times := []time.Time{
		time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), // clamped to the minimum
		time.Unix(0, math.MinInt64),
		time.Unix(-1, 0),
		time.Unix(0, -1),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Unix(1, 0),
		time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2030, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Unix(0, math.MaxInt64),
	}
	var prev string
	for i, tm := range times {
		s := encodeTime(tm)
		if len(s) != timeDigits {
			t.Fatalf("encodeTime(%v) = %q: not %d digits", tm, s, timeDigits)
		}
		if i > 0 && s < prev {
			t.Errorf("encodeTime(%v) = %q sorts before the previous %q", tm, s, prev)
		}
		if i > 1 && s == prev {
			t.Errorf("encodeTime(%v) = %q equals the previous", tm, s)
		}
		prev = s
		got, err := decodeTime(s)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && !got.Equal(tm) {
			t.Errorf("decodeTime(encodeTime(%v)) = %v", tm, got)
		}
	}
	if got, _ := decodeTime(encodeTime(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))); !got.Equal(time.Unix(0, math.MaxInt64)) {
		t.Errorf("a time after 2262 decodes as %v, want the maximum", got)
	}
}

func TestDecodeRejectsCorruptEntries(t *testing.T) {
	t.Parallel()
	good := string(encodeUpdate(historytest.NewUpdate("x")))
	tm := encodeTime(time.Now())
	for name, c := range map[string]struct{ tm, blob string }{
		"empty":          {tm, ""},
		"version":        {tm, "\x02" + good[1:]},
		"truncated":      {tm, good[:len(good)-1]},
		"trailing":       {tm, good + "x"},
		"topic count":    {tm, "\x01\x00\x00\x00\xff\xff\xff\xff\x0f"},
		"varint":         {tm, "\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"},
		"short time":     {"123", good},
		"time not digit": {"1234567890123456789x", good},
	} {
		if _, err := decodeEntry(1, "x", c.tm, c.blob); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: decode = %v, want errCorrupt", name, err)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(string(encodeUpdate(&history.Update{Topics: []string{"a", "b"}, Data: "d", Type: "t", HasRetry: true, Retry: 3})))
	f.Add("\x01\x03\x00\x00\x00\x00")
	f.Fuzz(func(t *testing.T, blob string) {
		u, err := decodeEntry(7, "id", encodeTime(time.Unix(1, 2)), blob)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes.
		if again := string(encodeUpdate(u)); again != blob {
			if u2, err := decodeEntry(7, "id", encodeTime(u.Time), again); err != nil ||
				historytest.SameUpdate(u2, u) != "" || !slices.Equal(u2.Topics, u.Topics) {
				t.Fatalf("re-encoding %q gives %q, which decodes differently", blob, again)
			}
		}
	})
}
