package conformance

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// bigBody is the size of the update that checks the body cap: four times
// the 1 MiB that hubs cap publish bodies at by default.
const bigBody = 4 << 20

func publishCases() []*caseDef {
	return []*caseDef{
		{
			group: "publish", name: "generated-id",
			spec07: d07Publication, spec08: d08Publication,
			run: checkGeneratedID,
		},
		{
			group: "publish", name: "status-200-text-plain",
			spec08: d08Publication,
			run:    checkPublishReply,
		},
		{
			group: "publish", name: "custom-id",
			spec07: d07Publication, spec08: d08Publication,
			run: checkCustomID,
		},
		{
			group: "publish", name: "missing-topic-is-400",
			spec07: d07Publication, spec08: d08Publication,
			run: func(t *T) error {
				tok, err := t.pubToken(t.topic("t"))
				if err != nil {
					return err
				}
				return t.expectPublishStatus("an update without a topic", pub{data: str("no topic"), token: &tok}, http.StatusBadRequest)
			},
		},
		{
			group: "publish", name: "unknown-fields-ignored",
			spec07: d07Publication, spec08: d08Publication,
			run: func(t *T) error {
				topic := t.topic("t")
				s, err := t.subscribe(sub{sels: []sel{exact(topic)}})
				if err != nil {
					return err
				}
				id, err := t.publish(pub{topics: []string{topic}, data: str("x"), extra: url.Values{"conformance_unknown": {"1"}, "foo": {"bar"}}})
				if err != nil {
					return fmt.Errorf("unknown fields must be ignored: %w", err)
				}
				_, _, err = s.waitFor(id, "the update with unknown fields")
				return err
			},
		},
		{
			group: "publish", name: "private-whatever-its-value",
			spec07: d07Publication, spec08: d08Publication,
			needs: needKey,
			run:   checkPrivateEmptyValue,
		},
		rejectCase("id-starting-with-hash-is-400", d07Publication, d08Publication, "an id starting with #",
			func(t *T) pub { return pub{topics: []string{t.topic("t")}, data: str("x"), id: "#conformance"} }),
		rejectCase("id-with-newline-is-400", d07Publication, d08Publication, "an id with a line feed",
			func(t *T) pub { return pub{topics: []string{t.topic("t")}, data: str("x"), id: "urn:conformance:a\nb"} }),
		rejectCase("id-earliest-is-400", "", d08Publication, "the reserved id earliest",
			func(t *T) pub { return pub{topics: []string{t.topic("t")}, data: str("x"), id: "earliest"} }),
		rejectCase("id-with-control-character-is-400", "", d08Publication, "an id with U+0001",
			func(t *T) pub {
				return pub{topics: []string{t.topic("t")}, data: str("x"), id: "urn:conformance:a\x01b"}
			}),
		rejectCase("type-with-newline-is-400", d07Publication, d08Publication, "a type with a line feed",
			func(t *T) pub { return pub{topics: []string{t.topic("t")}, data: str("x"), typ: "a\nb"} }),
		rejectCase("type-mercure-is-400", "", d08Publication, "the reserved type mercure",
			func(t *T) pub { return pub{topics: []string{t.topic("t")}, data: str("x"), typ: "mercure"} }),
		rejectCase("retry-not-digits-is-400", d07Publication, d08Publication, "retry=-5",
			func(t *T) pub { return pub{topics: []string{t.topic("t")}, data: str("x"), retry: "-5"} }),
		rejectCase("topic-star-is-400", "", d08Publication, "the topic *",
			func(*T) pub { return pub{topics: []string{"*"}, data: str("x")} }),
		rejectCase("topic-with-control-character-is-400", "", d08Publication, "a topic with U+0001",
			func(t *T) pub { return pub{topics: []string{t.topic("a\x01b")}, data: str("x")} }),
		rejectCase("data-not-utf8-is-400", "", d08Publication, "data that is not UTF-8",
			func(t *T) pub {
				return pub{topics: []string{t.topic("t")}, raw: "topic=" + url.QueryEscape(t.topic("t")) + "&data=%FF%FE"}
			}),
		{
			group: "publish", name: "reserved-topic-refused",
			spec07: d07Publication, spec08: d08Publication,
			run: checkReservedTopic,
		},
		{
			group: "publish", name: "oversized-body-is-413",
			spec08: d08Publication,
			run:    checkBodyCap,
		},
	}
}

// rejectCase is a publish the hub must refuse with 400.
func rejectCase(name, spec07, spec08, what string, p func(*T) pub) *caseDef {
	return &caseDef{
		group: "publish", name: name, spec07: spec07, spec08: spec08,
		run: func(t *T) error {
			return t.expectPublishStatus(what, p(t), http.StatusBadRequest)
		},
	}
}

// expectPublishStatus publishes p and checks the status.
func (t *T) expectPublishStatus(what string, p pub, want ...int) error {
	if p.token == nil {
		topics := p.topics
		if len(topics) == 0 {
			topics = []string{t.topic("t")}
		}
		tok, err := t.pubToken(topics...)
		if err != nil {
			return err
		}
		p.token = &tok
	}
	rp, err := t.publishReply(p)
	if err != nil {
		return err
	}
	return expectStatus("publishing "+what, rp, want...)
}

// expectStatus checks that rp has one of the statuses.
func expectStatus(what string, rp *reply, want ...int) error {
	if slices.Contains(want, rp.status) {
		return nil
	}
	ws := make([]string, len(want))
	for i, w := range want {
		ws[i] = strconv.Itoa(w)
	}
	return fmt.Errorf("%s: got %s, want %s", what, rp, strings.Join(ws, " or "))
}

func checkGeneratedID(t *T) error {
	topic := t.topic("t")
	s, err := t.subscribe(sub{sels: []sel{exact(topic)}})
	if err != nil {
		return err
	}
	id, err := t.publishData(topic, "generated")
	if err != nil {
		return err
	}
	if !isIRI(id) {
		return fmt.Errorf("the hub generated the id %q, which is neither an IRI nor a #fragment", id)
	}
	_, e, err := s.waitFor(id, "the update with the generated id "+id)
	if err != nil {
		return err
	}
	if e.Data != "generated" {
		return fmt.Errorf("the update arrived with data %q, want %q", e.Data, "generated")
	}
	return nil
}

// isIRI reports whether id is an absolute IRI or a fragment (draft-07 and
// draft-08 §Publication: a generated id is one or the other).
func isIRI(id string) bool {
	if strings.HasPrefix(id, "#") && len(id) > 1 {
		return true
	}
	u, err := url.Parse(id)
	return err == nil && u.Scheme != ""
}

func checkPublishReply(t *T) error {
	rp, err := t.publishReply(pub{topics: []string{t.topic("t")}, data: str("x")})
	if err != nil {
		return err
	}
	if rp.status != http.StatusOK {
		return fmt.Errorf("a publish got %s, want 200", rp)
	}
	mt, params, _ := mime.ParseMediaType(rp.header.Get("Content-Type"))
	if mt != "text/plain" {
		return fmt.Errorf("the publish reply's content type is %q, want text/plain; charset=utf-8", rp.header.Get("Content-Type"))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fmt.Errorf("the publish reply's charset is %q, want utf-8", cs)
	}
	if strings.TrimSpace(rp.body) == "" {
		return errors.New("the publish reply's body is empty, want the update's id")
	}
	return nil
}

func checkCustomID(t *T) error {
	topic := t.topic("t")
	s, err := t.subscribe(sub{sels: []sel{exact(topic)}})
	if err != nil {
		return err
	}
	want := "urn:conformance:" + newRunID()
	got, err := t.publish(pub{topics: []string{topic}, data: str("custom"), id: want})
	if err != nil {
		return err
	}
	if got != want {
		// Allowed: the hub MAY ignore the ids publishers ask for.
		if _, _, err := s.waitFor(got, "the update with the id the hub returned"); err != nil {
			return err
		}
		return skipf("the hub ignores the ids publishers ask for (allowed): it answered %q for %q", got, want)
	}
	_, _, err = s.waitFor(want, "the update with the custom id "+want)
	return err
}

// checkPrivateEmptyValue: `private` with an empty value makes the update
// private, whatever its value.
func checkPrivateEmptyValue(t *T) error {
	topic := t.topic("t")
	allowed, err := t.subscribe(sub{sels: []sel{exact(topic)}})
	if err != nil {
		return err
	}
	other, err := t.r.mint(t.gen, nil, []sel{exact(t.topic("other"))}, mintOpts{})
	if err != nil {
		return err
	}
	denied, err := t.subscribe(sub{sels: []sel{exact(topic)}, token: &other})
	if err != nil {
		return err
	}
	priv, err := t.publish(pub{topics: []string{topic}, data: str("private"), private: str("")})
	if err != nil {
		return err
	}
	public, err := t.publishData(topic, "public")
	if err != nil {
		return err
	}
	if _, _, err := allowed.waitFor(priv, "the private update, for an authorized subscriber"); err != nil {
		return err
	}
	before, _, err := denied.waitFor(public, "the public update, for a subscriber without the grant")
	if err != nil {
		return err
	}
	for _, e := range before {
		if e.ID == priv {
			return errors.New("an update published with an empty private field reached a subscriber without the grant: the field's presence alone makes it private")
		}
	}
	return nil
}

// checkReservedTopic: topics under the hub path are the hub's own
// (subscription events); publishers may not use them.
func checkReservedTopic(t *T) error {
	u := t.hubURL()
	u.Path = strings.TrimSuffix(u.Path, "/") + "/subscriptions/conformance/" + newRunID()
	u.RawQuery = ""
	topics := []string{u.String()}
	if t.is08() {
		// Resolved paths count, not raw strings: %6D is "m".
		v := t.hubURL()
		v.RawQuery = ""
		v.Path += "/conformance"
		v.RawPath = strings.Replace(v.EscapedPath(), "mercure", "%6Dercure", 1)
		if s := v.String(); strings.Contains(s, "%6Dercure") {
			topics = append(topics, s)
		}
	}
	for _, topic := range topics {
		tok, err := t.pubToken(topic)
		if err != nil {
			return err
		}
		rp, err := t.publishReply(pub{topics: []string{topic}, data: str("forged"), token: &tok})
		if err != nil {
			return err
		}
		if err := expectStatus("publishing to the reserved topic "+topic, rp, http.StatusBadRequest, http.StatusForbidden); err != nil {
			return err
		}
	}
	return nil
}

func checkBodyCap(t *T) error {
	rp, err := t.publishReply(pub{topics: []string{t.topic("t")}, data: str(strings.Repeat("x", bigBody))})
	if err != nil {
		return err
	}
	switch {
	case rp.status == http.StatusRequestEntityTooLarge:
		return nil
	case rp.status >= 200 && rp.status < 300:
		return skipf("the hub accepted a %d MiB update (capping the body is recommended, not required)", bigBody>>20)
	}
	return fmt.Errorf("publishing a %d MiB update: got %s, want 413 (or 200: the cap is the hub's choice)", bigBody>>20, rp)
}
