package conformance

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// multiLineData is published to check data framing: every line ending
// (LF, CRLF, CR), a blank line and indentation.
const (
	multiLineData = "line 1\nline 2\r\nline 3\n\n  indented line\rlast line"
	multiLineWant = "line 1\nline 2\nline 3\n\n  indented line\nlast line"
)

// eventRetry is the retry field published to check that it is relayed.
const eventRetry = "2500"

func subscribeCases() []*caseDef {
	return []*caseDef{
		{
			group: "subscribe", name: "exact-topic",
			spec07: d07Subscriptions, spec08: d08Matchers,
			run: func(t *T) error {
				return t.checkSelector(exact(t.topic("books/1")), t.topic("books/1"), t.topic("books/2"))
			},
		},
		{
			group: "subscribe", name: "uri-template",
			spec07: d07Subscriptions,
			run: func(t *T) error {
				return t.checkSelector(tmpl(t.topic("books/{id}")), t.topic("books/1"), t.topic("authors/1"))
			},
		},
		{
			group: "subscribe", name: "url-pattern",
			spec08: d08Matchers,
			run: func(t *T) error {
				return t.checkSelector(pattern(t.topic("books/:id")), t.topic("books/1"), t.topic("authors/1"))
			},
		},
		{
			group: "subscribe", name: "wildcard",
			spec07: d07Subscriptions, spec08: d08Matchers,
			run: func(t *T) error {
				s, err := t.subscribe(sub{sels: []sel{exact("*")}})
				if err != nil {
					return err
				}
				id, err := t.publishData(t.topic("any"), "for *")
				if err != nil {
					return err
				}
				_, _, err = s.waitFor(id, "an update on any topic, for a subscriber to *")
				return err
			},
		},
		{
			group: "subscribe", name: "alternate-topic",
			spec07: d07Publication, spec08: d08Publication,
			run: func(t *T) error {
				canonical, alt := t.topic("canonical"), t.topic("alternate")
				s, err := t.subscribe(sub{sels: []sel{exact(alt)}})
				if err != nil {
					return err
				}
				id, err := t.publish(pub{topics: []string{canonical, alt}, data: str("x")})
				if err != nil {
					return err
				}
				_, _, err = s.waitFor(id, "an update on its alternate topic")
				return err
			},
		},
		{
			group: "subscribe", name: "private-for-authorized",
			spec07: d07Authorization, spec08: d08Authorization,
			run: func(t *T) error {
				topic := t.topic("t")
				s, err := t.subscribe(sub{sels: []sel{exact(topic)}})
				if err != nil {
					return err
				}
				id, err := t.publish(pub{topics: []string{topic}, data: str("secret"), private: str("on")})
				if err != nil {
					return err
				}
				_, _, err = s.waitFor(id, "a private update, for a subscriber whose token grants its topic")
				return err
			},
		},
		{
			group: "subscribe", name: "private-not-for-other-grants",
			spec07: d07Authorization, spec08: d08Authorization,
			needs: needKey,
			run: func(t *T) error {
				topic := t.topic("t")
				other, err := t.r.mint(t.gen, nil, []sel{exact(t.topic("other"))}, mintOpts{})
				if err != nil {
					return err
				}
				return t.checkPrivateHidden(sub{sels: []sel{exact(topic)}, token: &other}, topic, "a subscriber whose token grants another topic")
			},
		},
		{
			group: "subscribe", name: "private-not-for-anonymous",
			spec07: d07Authorization, spec08: d08Authorization,
			needs: needAnonymous,
			run: func(t *T) error {
				topic := t.topic("t")
				return t.checkPrivateHidden(sub{sels: []sel{exact(topic)}, token: str("")}, topic, "an anonymous subscriber")
			},
		},
		{
			group: "subscribe", name: "private-granted-by-alternate",
			spec07: d07Authorization, spec08: d08Authorization,
			needs: needKey,
			run: func(t *T) error {
				canonical, alt := t.topic("canonical"), t.topic("alternate")
				tok, err := t.r.mint(t.gen, nil, []sel{exact(alt)}, mintOpts{})
				if err != nil {
					return err
				}
				s, err := t.subscribe(sub{sels: []sel{exact(canonical)}, token: &tok})
				if err != nil {
					return err
				}
				id, err := t.publish(pub{topics: []string{canonical, alt}, data: str("x"), private: str("on")})
				if err != nil {
					return err
				}
				_, _, err = s.waitFor(id, "a private update whose alternate topic the token grants")
				return err
			},
		},
		{
			group: "subscribe", name: "multi-line-data",
			spec07: d07Subscriptions + ", " + sseFraming, spec08: d08Subscription + ", " + sseFraming,
			run: func(t *T) error {
				e, err := t.publishAndReceive(pub{data: str(multiLineData)})
				if err != nil {
					return err
				}
				if e.Data != multiLineWant {
					detail := ""
					if !strings.Contains(e.Data, "\n") {
						detail = " (the lines were joined into one: each line must be its own data: line)"
					}
					return fmt.Errorf("multi-line data arrived as %q, want %q%s", e.Data, multiLineWant, detail)
				}
				return nil
			},
		},
		{
			group: "subscribe", name: "event-type",
			spec07: d07Subscriptions + ", " + sseFraming, spec08: d08Subscription + ", " + sseFraming,
			run: func(t *T) error {
				e, err := t.publishAndReceive(pub{data: str("typed"), typ: "conformance-type"})
				if err != nil {
					return err
				}
				if e.Type != "conformance-type" {
					return fmt.Errorf("the event arrived with event type %q, want %q", e.Type, "conformance-type")
				}
				return nil
			},
		},
		{
			group: "subscribe", name: "retry-field",
			spec07: d07Subscriptions + ", " + sseFraming, spec08: d08Subscription + ", " + sseFraming,
			run: func(t *T) error {
				e, err := t.publishAndReceive(pub{data: str("with retry"), retry: eventRetry})
				if err != nil {
					return err
				}
				if !e.HasRetry {
					return fmt.Errorf("the event arrived without a retry field, want retry: %s", eventRetry)
				}
				if fmt.Sprint(e.Retry) != eventRetry {
					return fmt.Errorf("the event arrived with retry: %d, want %s", e.Retry, eventRetry)
				}
				return nil
			},
		},
		{
			group: "subscribe", name: "missing-selector-is-400",
			spec07: d07Subscriptions, spec08: d08Subscription,
			run: func(t *T) error {
				return t.expectSubscribeStatus("a subscription without a selector", sub{rawQuery: "conformance=1"}, http.StatusBadRequest)
			},
		},
		{
			group: "subscribe", name: "reserved-match-parameter-is-400",
			spec08: d08Subscription,
			run: func(t *T) error {
				for _, name := range []string{"match_regexp", "Match", "matching"} {
					q := url.Values{name: {t.topic("t")}}
					if err := t.expectSubscribeStatus("a subscription with the parameter "+name, sub{rawQuery: q.Encode()}, http.StatusBadRequest); err != nil {
						return err
					}
				}
				return nil
			},
		},
		{
			group: "subscribe", name: "unrelated-parameter-ignored",
			spec08: d08Subscription,
			run: func(t *T) error {
				topic := t.topic("t")
				s, err := t.subscribe(sub{sels: []sel{exact(topic)}, query: url.Values{"foo": {"1"}}})
				if err != nil {
					return fmt.Errorf("a parameter outside the match namespace must be ignored: %w", err)
				}
				id, err := t.publishData(topic, "x")
				if err != nil {
					return err
				}
				_, _, err = s.waitFor(id, "the update")
				return err
			},
		},
		{
			group: "subscribe", name: "invalid-url-pattern-is-400",
			spec08: d08Matchers,
			run: func(t *T) error {
				return t.expectSubscribeStatus("a subscription with an invalid URL pattern", sub{sels: []sel{pattern(t.topic("(unclosed"))}}, http.StatusBadRequest)
			},
		},
		{
			group: "subscribe", name: "control-character-is-400",
			spec08: d08Subscription,
			run: func(t *T) error {
				return t.expectSubscribeStatus("a matcher with U+0001", sub{sels: []sel{exact(t.topic("a\x01b"))}}, http.StatusBadRequest)
			},
		},
		{
			group: "subscribe", name: "query-method",
			spec08: d08Subscription,
			run:    checkQueryMethod,
		},
	}
}

// checkSelector subscribes with s and checks that an update on match
// arrives and one on miss (published first) does not.
func (t *T) checkSelector(s sel, match, miss string) error {
	st, err := t.subscribe(sub{sels: []sel{s}})
	if err != nil {
		return err
	}
	missID, err := t.publishData(miss, "miss")
	if err != nil {
		return err
	}
	matchID, err := t.publishData(match, "match")
	if err != nil {
		return err
	}
	before, _, err := st.waitFor(matchID, fmt.Sprintf("the update on %s, for the selector %s", match, s.v))
	if err != nil {
		return err
	}
	for _, e := range before {
		if e.ID == missID {
			return fmt.Errorf("the selector %s received the update on %s, which it does not match", s.v, miss)
		}
	}
	return nil
}

// checkPrivateHidden checks that the subscriber s does not receive a
// private update on topic, and does receive the public one after it.
func (t *T) checkPrivateHidden(s sub, topic, who string) error {
	st, err := t.subscribe(s)
	if err != nil {
		return err
	}
	priv, err := t.publish(pub{topics: []string{topic}, data: str("secret"), private: str("on")})
	if err != nil {
		return err
	}
	public, err := t.publishData(topic, "public")
	if err != nil {
		return err
	}
	before, _, err := st.waitFor(public, "the public update published after a private one, for "+who)
	if err != nil {
		return err
	}
	for _, e := range before {
		if e.ID == priv {
			return fmt.Errorf("a private update reached %s", who)
		}
	}
	return nil
}

// publishAndReceive publishes p on a topic of its own, with a subscriber,
// and returns the event as received.
func (t *T) publishAndReceive(p pub) (evt, error) {
	topic := t.topic("t")
	p.topics = []string{topic}
	s, err := t.subscribe(sub{sels: []sel{exact(topic)}})
	if err != nil {
		return evt{}, err
	}
	id, err := t.publish(p)
	if err != nil {
		return evt{}, err
	}
	_, e, err := s.waitFor(id, "the update")
	return e, err
}

// expectSubscribeStatus subscribes with s and checks the status.
func (t *T) expectSubscribeStatus(what string, s sub, want ...int) error {
	if s.token == nil && len(s.sels) == 0 {
		tok, err := t.subToken(exact(t.topic("t")))
		if err != nil {
			return err
		}
		s.token = &tok
	}
	st, rp, err := t.open(s)
	if err != nil {
		return err
	}
	if st != nil {
		st.close()
		rp = &reply{status: http.StatusOK, header: st.header}
	}
	return expectStatus(what, rp, want...)
}

// checkQueryMethod: draft-08 hubs may accept the safe QUERY method with the
// parameters in a form body.
func checkQueryMethod(t *T) error {
	topic := t.topic("t")
	tok, err := t.subToken(exact(topic))
	if err != nil {
		return err
	}
	st, rp, err := t.open(sub{method: "QUERY", body: url.Values{"match": {topic}}.Encode(), token: &tok})
	if err != nil {
		return err
	}
	if rp != nil {
		switch rp.status {
		case http.StatusMethodNotAllowed, http.StatusNotImplemented, http.StatusBadRequest:
			return skipf("the hub does not accept QUERY subscriptions (optional): %s", rp)
		}
		return fmt.Errorf("a QUERY subscription got %s, want 200 text/event-stream", rp)
	}
	s := st
	id, err := t.publishData(topic, "x")
	if err != nil {
		return err
	}
	if _, _, err := s.waitFor(id, "the update, on a QUERY subscription"); err != nil {
		if errors.Is(err, errEnded) {
			return errors.New("the hub closed the QUERY subscription before the update arrived")
		}
		return err
	}
	return nil
}
