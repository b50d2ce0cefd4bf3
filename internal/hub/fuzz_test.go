package hub

// Fuzz targets for the publish form parser, the publish handler and the
// subscription parser. They run through ServeHTTP with httptest recorders,
// so that each input costs microseconds.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mercurectl/mercurectl/internal/history"
	"github.com/mercurectl/mercurectl/internal/match"
	"github.com/mercurectl/mercurectl/internal/sse"
	"github.com/mercurectl/mercurectl/internal/token"
)

// fuzzHubURL is the hub URL of requests built with httptest.NewRequest.
const fuzzHubURL = "http://example.com" + Path

// formValues turns parsed fields into url.Values (order kept per name).
func formValues(fs []field) url.Values {
	v := url.Values{}
	for _, f := range fs {
		v[f.name] = append(v[f.name], f.value)
	}
	return v
}

// FuzzParseForm: parseForm never panics, agrees with net/url wherever
// net/url accepts the input, and round-trips url.Values.Encode.
func FuzzParseForm(f *testing.F) {
	f.Add("topic=a&topic=b&data=x+y%20z", "topic", "https://example.com/books/1")
	f.Add("a=%zz&b=%4&c=%&&=x&d", "", "")
	f.Add("private&x=1;y=2&%E2%82%AC=%E2%82%AC", "data", "line1\r\nline2\n")
	f.Add("=&==&a==b", "a&b=c", "%+&=")
	f.Fuzz(func(t *testing.T, raw, name, value string) {
		fields := parseForm(raw, nil)
		pairs := 0
		for p := range strings.SplitSeq(raw, "&") {
			if p != "" {
				pairs++
			}
		}
		if len(fields) != pairs {
			t.Fatalf("parseForm(%q) gave %d fields for %d pairs", raw, len(fields), pairs)
		}
		if want, err := url.ParseQuery(raw); err == nil {
			if got := formValues(fields); !equalValues(got, want) {
				t.Fatalf("parseForm(%q) = %v, net/url says %v", raw, got, want)
			}
		}

		v := url.Values{name: {value, name}, "topic": {value}}
		v.Add("data", value+"\r\n"+name)
		if got := formValues(parseForm(v.Encode(), nil)); !equalValues(got, v) {
			t.Fatalf("round trip of %v gave %v", v, got)
		}
		// Appending to dst keeps what was there.
		if got := parseForm("b=2", []field{{"a", "1"}}); len(got) != 2 || got[0] != (field{"a", "1"}) {
			t.Fatalf("parseForm does not append: %v", got)
		}
	})
}

func equalValues(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		if !slices.Equal(va, b[k]) {
			return false
		}
	}
	return true
}

// fuzzHub is a hub with a bounded history, for fuzzing through ServeHTTP.
func fuzzHub(f *testing.F) *testHub {
	return newTestHub(f, func(c *Config) {
		c.Store = history.NewMemory(history.Retention{MaxUpdates: 8}, nil)
		c.Anonymous = true
		c.PublishOrigins = []string{"https://app.example"}
	})
}

// FuzzPublish posts arbitrary form bodies: the hub never panics or answers
// 5xx, stores nothing it refuses, and whatever it accepts is exactly what
// the form said, with an SSE wire form that cannot carry injected fields.
func FuzzPublish(f *testing.F) {
	th := fuzzHub(f)
	tokens := [...]string{
		legacyToken(f, []string{"*"}, []string{"*"}),
		mint(f, token.MintOptions{Format: token.FormatAccessToken, Publish: []string{"*"}, Audience: fuzzHubURL}),
	}
	f.Add("topic=a&data=hello&id=x&type=t&retry=10", uint8(0))
	f.Add("topic=a&data=line1%0D%0Aline2%0Dline3%0A%0Aid:+injected&private", uint8(1))
	f.Add("topic=a&id=x%0Aevent:+evil&type=y%0D%0Adata:+z", uint8(0))
	f.Add("topic=a&id=%E2%80%8B&type=%C2%85&data=%FF", uint8(1))
	f.Add("topic=*&topic=/.well-known/mercure/x&retry=-1", uint8(1))
	f.Add("topic=a&topic=b&retry=18446744073709551615&id=%23x", uint8(2))
	f.Add("topic=a&data=%00", uint8(3))
	f.Fuzz(func(t *testing.T, body string, mode uint8) {
		legacy := mode%2 == 0
		req := httptest.NewRequest(http.MethodPost, fuzzHubURL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if mode&2 == 0 {
			req.Header.Set("Authorization", "Bearer "+tokens[mode%2])
		} else {
			// The cookie, with the CSRF check.
			name := cookie08
			if legacy {
				name = cookie07
			}
			req.AddCookie(&http.Cookie{Name: name, Value: tokens[mode%2]})
			req.Header.Set("Origin", "https://app.example")
		}
		before := th.store.LastSeq()
		rec := httptest.NewRecorder()
		th.h.ServeHTTP(rec, req)
		after := th.store.LastSeq()
		if rec.Code >= 500 {
			t.Fatalf("%q: %d %s", body, rec.Code, rec.Body)
		}
		if rec.Code != http.StatusOK {
			if after != before {
				t.Fatalf("%q refused with %d but stored", body, rec.Code)
			}
			return
		}
		if after != before+1 {
			t.Fatalf("%q accepted but LastSeq went from %d to %d", body, before, after)
		}
		var u *history.Update
		if err := th.store.Scan(t.Context(), before, after, func(x *history.Update) error { u = x; return nil }); err != nil || u == nil {
			t.Fatalf("stored update not found: %v", err)
		}
		if rec.Body.String() != u.ID {
			t.Fatalf("reply %q, stored id %q", rec.Body.String(), u.ID)
		}

		// The update is what the form said.
		form := form(parseForm(body, nil))
		if !slices.Equal(u.Topics, form.all("topic")) {
			t.Fatalf("topics %q, form %q", u.Topics, form.all("topic"))
		}
		data, _ := form.first("data")
		_, private := form.first("private")
		if u.Data != data || u.Private != private {
			t.Fatalf("stored %+v for form %q", u, body)
		}
		if id, ok := form.first("id"); ok && id != "" && u.ID != id {
			t.Fatalf("id %q stored as %q", id, u.ID)
		}
		if typ, _ := form.first("type"); u.Type != typ {
			t.Fatalf("type %q stored as %q", typ, u.Type)
		}
		if r, ok := form.first("retry"); (ok && r != "") != u.HasRetry {
			t.Fatalf("retry %q stored as %v", r, u.HasRetry)
		}

		// What every generation refuses never gets through.
		if !sse.ValidField(u.ID) || !sse.ValidField(u.Type) || strings.HasPrefix(u.ID, "#") || u.ID == "earliest" {
			t.Fatalf("accepted id %q type %q", u.ID, u.Type)
		}
		if !legacy {
			if match.HasControlOrFormat(u.ID) || match.HasControlOrFormat(u.Type) || u.Type == "mercure" || !utf8.ValidString(u.Data) {
				t.Fatalf("draft-08 accepted id %q type %q data %q", u.ID, u.Type, u.Data)
			}
			for _, topic := range u.Topics {
				if topic == "*" || match.HasControlOrFormat(topic) || reservedTopic08(topic, &url.URL{Scheme: "http", Host: "example.com", Path: Path}) {
					t.Fatalf("draft-08 accepted topic %q", topic)
				}
			}
		} else {
			for _, topic := range u.Topics {
				if reservedTopic07(topic) {
					t.Fatalf("draft-07 accepted topic %q", topic)
				}
			}
		}

		// The wire form is one event, and reads back as the update.
		wire := string(encodeUpdate(nil, u))
		if !strings.HasSuffix(wire, "\n\n") || strings.Count(wire, "\n\n") != 1 {
			t.Fatalf("wire %q is not one event", wire)
		}
		var lines struct{ id, event, retry int }
		for line := range strings.SplitSeq(strings.TrimSuffix(wire, "\n\n"), "\n") {
			switch {
			case strings.HasPrefix(line, "id: "):
				lines.id++
			case strings.HasPrefix(line, "event: "):
				lines.event++
			case strings.HasPrefix(line, "retry: "):
				lines.retry++
			case strings.HasPrefix(line, "data: "):
			default:
				t.Fatalf("wire %q has a line %q that is not a field", wire, line)
			}
			if strings.Contains(line, "\r") {
				t.Fatalf("wire %q has a CR", wire)
			}
		}
		if lines.id != 1 || lines.event > 1 || lines.retry > 1 {
			t.Fatalf("wire %q has injected fields", wire)
		}
		rd := sse.NewReader(strings.NewReader(wire), sse.ReaderOptions{})
		ev, err := rd.Next()
		if err != nil {
			t.Fatalf("wire %q: %v", wire, err)
		}
		// Draft-07 accepts invalid UTF-8 (as the reference 0.x hub does); readers decode
		// the stream as UTF-8, so only valid strings can read back equal.
		wantData := strings.ReplaceAll(strings.ReplaceAll(u.Data, "\r\n", "\n"), "\r", "\n")
		same := func(got, want string) bool { return got == want || !utf8.ValidString(want) }
		if !same(ev.ID, u.ID) || !same(ev.Type, u.Type) || !same(ev.Data, wantData) || ev.Retry != u.Retry || ev.HasRetry != u.HasRetry {
			t.Fatalf("wire %q reads back as %+v, stored %+v", wire, ev, u)
		}
		if _, err := rd.Next(); err == nil {
			t.Fatalf("wire %q holds more than one event", wire)
		}
	})
}

// FuzzSubscribeQuery sends arbitrary subscription queries (and QUERY
// bodies, and Last-Event-ID headers): the hub never panics nor answers 5xx,
// and it never leaves a subscription registered after the handler returns.
func FuzzSubscribeQuery(f *testing.F) {
	th := fuzzHub(f)
	tokens := [...]string{
		"",
		legacyToken(f, []string{"*"}, []string{"*"}),
		mint(f, token.MintOptions{Format: token.FormatAccessToken, Publish: []string{"*"}, Subscribe: []string{"*"}, Audience: fuzzHubURL}),
	}
	// Some history to replay.
	for _, body := range []string{"topic=a&id=one", "topic=b&id=two&private", "topic=a&id=one&data=dup"} {
		req := httptest.NewRequest(http.MethodPost, fuzzHubURL, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokens[1])
		rec := httptest.NewRecorder()
		th.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			f.Fatalf("seed publish: %d %s", rec.Code, rec.Body)
		}
	}
	f.Add("topic=a&lastEventID=one", "", uint8(1))
	f.Add("match=a&match_urlpattern=%2Fbooks%2F%3Aid&last_event_id=earliest", "", uint8(2))
	f.Add("match=*", "two", uint8(5))
	f.Add("Match=a&topic=b&match_regexp=c", "one", uint8(0))
	f.Add("match_urlpattern=https%3A%2F%2Fexample.com%2F(&match=%E2%80%8B", "", uint8(2))
	f.Add("topic=https%3A%2F%2Fexample.com%2F%7Bid%7D&authorization=x", "nope", uint8(3))
	f.Add("match=a&last_event_id=&foo", "", uint8(8))
	f.Fuzz(func(t *testing.T, query, lastEventID string, mode uint8) {
		method := [...]string{http.MethodGet, http.MethodHead, methodQuery}[mode%3]
		req := httptest.NewRequest(method, fuzzHubURL, nil)
		if method == methodQuery {
			req = httptest.NewRequest(method, fuzzHubURL, strings.NewReader(query))
		} else {
			req.URL.RawQuery = query
		}
		if tok := tokens[(mode/3)%3]; tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if lastEventID != "" {
			req.Header.Set("Last-Event-ID", lastEventID)
		}
		// A subscription that gets through streams until its client
		// leaves: this one has already left.
		ctx, cancel := context.WithCancel(req.Context())
		cancel()
		req = req.WithContext(ctx)
		rec := httptest.NewRecorder()
		th.h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, query, rec.Code, rec.Body)
		}
		if n := th.h.Subscribers(); n != 0 {
			t.Fatalf("%d subscribers left registered", n)
		}
		if rec.Code == http.StatusOK {
			if ct := rec.Header().Get("Content-Type"); ct != "text/event-stream" {
				t.Fatalf("200 with Content-Type %q", ct)
			}
			for _, ev := range confParse(t, rec.Body.String()) {
				if !ev.HasID {
					t.Fatalf("event without id: %+v", ev)
				}
			}
		}
	})
}
