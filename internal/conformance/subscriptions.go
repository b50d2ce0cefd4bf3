package conformance

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// subscriptionsPath marks a path relative to the hub's subscriptions API;
// subscriptionsURL resolves it.
const subscriptionsPath = ""

func subscriptionsCases() []*caseDef {
	return []*caseDef{
		{
			group: "subscriptions", name: "events-on-connect-and-disconnect",
			spec07: d07SubEvents, spec08: d08SubEvents,
			needs: needSubscriptions,
			run:   checkSubscriptionEvents,
		},
		{
			group: "subscriptions", name: "events-are-private",
			spec07: d07SubEvents, spec08: d08SubEvents,
			needs: needSubscriptions | needKey,
			run:   checkSubscriptionEventsPrivate,
		},
		{
			group: "subscriptions", name: "api-collection",
			spec07: d07SubAPI, spec08: d08SubAPI,
			needs: needSubscriptions,
			run:   checkSubscriptionsCollection,
		},
		{
			group: "subscriptions", name: "api-single-and-unknown",
			spec07: d07SubAPI, spec08: d08SubAPI,
			needs: needSubscriptions,
			run:   checkSubscriptionSingle,
		},
		{
			group: "subscriptions", name: "api-needs-a-grant",
			spec07: d07SubAPI, spec08: d08SubAPI + ", " + d08Errors,
			needs: needSubscriptions | needKey,
			run: func(t *T) error {
				tok, err := t.r.mint(t.gen, nil, []sel{exact(t.topic("other"))}, mintOpts{})
				if err != nil {
					return err
				}
				rp, err := t.subscriptionsGet(subscriptionsPath, &tok)
				if err != nil {
					return err
				}
				want := []int{http.StatusForbidden}
				if !t.is08() {
					want = append(want, http.StatusUnauthorized) // draft-07 names no status
				}
				if err := expectStatus("the subscriptions API with a token that does not grant it", rp, want...); err != nil {
					return err
				}
				return t.checkChallenge(rp, "insufficient_scope")
			},
		},
	}
}

// subscriptionsBase is the path of the subscriptions API.
func (t *T) subscriptionsBase() string {
	return strings.TrimSuffix(t.hubURL().Path, "/") + "/subscriptions"
}

// subscriptionsGet GETs the API at the path below subscriptionsBase (a
// relative path such as "/exact/..."; "" for the collection) with tok, or a
// token granting exactly that path when tok is nil.
func (t *T) subscriptionsGet(rel string, tok *string) (*reply, error) {
	u := t.hubURL()
	u.RawQuery = ""
	u.Path = t.subscriptionsBase() + rel
	u.RawPath = ""
	if strings.Contains(rel, "%") {
		u.RawPath = t.subscriptionsBase() + rel
		p, err := url.PathUnescape(u.RawPath)
		if err != nil {
			return nil, err
		}
		u.Path = p
	}
	token := ""
	if tok != nil {
		token = *tok
	} else {
		var err error
		// The API authorises the request's path, taken as a topic.
		if token, err = t.subToken(exact(u.EscapedPath())); err != nil {
			return nil, err
		}
	}
	req, err := t.request(http.MethodGet, u.String(), nil, token)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/ld+json")
	return t.do(req)
}

// subscriptionEventsSelector selects every subscription event of the hub.
func (t *T) subscriptionEventsSelector() sel {
	if t.is08() {
		return pattern(t.subscriptionsBase() + "/*")
	}
	return tmpl(t.subscriptionsBase() + "{/topic}{/subscriber}")
}

// subscriptionDoc is a subscription as events and the API describe it, in
// either generation (draft-08 revisions spell the match type two ways).
type subscriptionDoc struct {
	Context    string          `json:"@context"`
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Topic      string          `json:"topic"`
	MatchType  string          `json:"match_type"`
	MatchType2 string          `json:"matchType"`
	Match      string          `json:"match"`
	Subscriber string          `json:"subscriber"`
	Active     *bool           `json:"active"`
	Payload    json.RawMessage `json:"payload"`
}

// selector is the subscribed selector the document describes.
func (d *subscriptionDoc) selector(is08 bool) string {
	if is08 {
		return d.Match
	}
	return d.Topic
}

// check verifies the document's shape for generation 08 or 07.
func (d *subscriptionDoc) check(is08 bool) error {
	var problems []string
	if !strings.EqualFold(d.Type, "subscription") {
		problems = append(problems, fmt.Sprintf("type is %q, want Subscription", d.Type))
	}
	if d.ID == "" {
		problems = append(problems, "no id")
	}
	if d.Subscriber == "" {
		problems = append(problems, "no subscriber")
	}
	if d.Active == nil {
		problems = append(problems, "no active")
	}
	if is08 && d.MatchType == "" && d.MatchType2 == "" {
		problems = append(problems, "no match_type")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// waitSubscriptionEvent reads s until the event of the subscription to
// topic with the given active state.
func (t *T) waitSubscriptionEvent(s *stream, topic string, active bool) (evt, *subscriptionDoc, error) {
	what := fmt.Sprintf("the subscription event (active: %v) of a subscription to %s", active, topic)
	for {
		e, err := s.next(0, what, false)
		if err != nil {
			return evt{}, nil, err
		}
		var d subscriptionDoc
		if json.Unmarshal([]byte(e.Data), &d) != nil || d.selector(t.is08()) != topic {
			continue
		}
		if d.Active != nil && *d.Active == active {
			return e, &d, nil
		}
	}
}

func checkSubscriptionEvents(t *T) error {
	topic := t.topic("t")
	watcher, err := t.subscribe(sub{sels: []sel{t.subscriptionEventsSelector()}})
	if err != nil {
		return err
	}
	subscriber, err := t.subscribe(sub{sels: []sel{exact(topic)}})
	if err != nil {
		return err
	}
	e, d, err := t.waitSubscriptionEvent(watcher, topic, true)
	if err != nil {
		return err
	}
	if err := d.check(t.is08()); err != nil {
		return fmt.Errorf("the subscription event %s: %w", e.Data, err)
	}
	if t.is08() && e.Type != "mercure" {
		return fmt.Errorf("the subscription event has SSE type %q, want mercure", e.Type)
	}
	if !t.is08() && d.Context == "" {
		return fmt.Errorf("the subscription event has no @context (JSON-LD)")
	}
	if !strings.HasPrefix(d.ID, t.subscriptionsBase()+"/") && !strings.Contains(d.ID, t.subscriptionsBase()+"/") {
		return fmt.Errorf("the subscription event's id %q is not under %s/", d.ID, t.subscriptionsBase())
	}
	subscriber.close()
	_, d2, err := t.waitSubscriptionEvent(watcher, topic, false)
	if err != nil {
		return err
	}
	if d2.ID != d.ID {
		return fmt.Errorf("the active: false event has id %q, want %q as in the active: true one", d2.ID, d.ID)
	}
	return nil
}

// checkSubscriptionEventsPrivate: subscription events are private.
func checkSubscriptionEventsPrivate(t *T) error {
	topic, public := t.topic("t"), t.topic("public")
	other, err := t.r.mint(t.gen, nil, []sel{exact(public)}, mintOpts{})
	if err != nil {
		return err
	}
	denied, err := t.subscribe(sub{sels: []sel{t.subscriptionEventsSelector(), exact(public)}, token: &other})
	if err != nil {
		return err
	}
	watcher, err := t.subscribe(sub{sels: []sel{t.subscriptionEventsSelector()}})
	if err != nil {
		return err
	}
	if _, err := t.subscribe(sub{sels: []sel{exact(topic)}}); err != nil {
		return err
	}
	if _, _, err := t.waitSubscriptionEvent(watcher, topic, true); err != nil {
		return err
	}
	sentinel, err := t.publishData(public, "after the subscription event")
	if err != nil {
		return err
	}
	before, _, err := denied.waitFor(sentinel, "a public update published after the subscription event")
	if err != nil {
		return err
	}
	for _, e := range before {
		var d subscriptionDoc
		if json.Unmarshal([]byte(e.Data), &d) == nil && d.selector(t.is08()) == topic {
			return errors.New("a subscription event reached a subscriber whose token does not grant it: they must be private")
		}
	}
	return nil
}

// collectionDoc is the subscriptions API's collection.
type collectionDoc struct {
	Context       string            `json:"@context"`
	ID            string            `json:"id"`
	Type          string            `json:"type"`
	LastEventID   *string           `json:"lastEventID"`
	Subscriptions []subscriptionDoc `json:"subscriptions"`
}

func checkSubscriptionsCollection(t *T) error {
	topic := t.topic("t")
	if _, err := t.subscribe(sub{sels: []sel{exact(topic)}}); err != nil {
		return err
	}
	rp, err := t.subscriptionsGet(subscriptionsPath, nil)
	if err != nil {
		return err
	}
	if rp.status != http.StatusOK {
		return fmt.Errorf("GET %s got %s, want 200", t.subscriptionsBase(), rp)
	}
	wantType := "application/ld+json"
	if t.is08() {
		wantType = "application/json"
	}
	if mt, _, _ := mime.ParseMediaType(rp.header.Get("Content-Type")); mt != wantType {
		return fmt.Errorf("the collection's content type is %q, want %s", rp.header.Get("Content-Type"), wantType)
	}
	var doc collectionDoc
	if err := json.Unmarshal([]byte(rp.body), &doc); err != nil {
		return fmt.Errorf("the collection is not JSON: %w", err)
	}
	if !strings.EqualFold(doc.Type, "subscriptions") {
		return fmt.Errorf("the collection's type is %q, want Subscriptions", doc.Type)
	}
	if doc.ID == "" {
		return errors.New("the collection has no id")
	}
	if t.is08() {
		if _, ok := linkCursorOf(rp.header.Values("Link")); !ok {
			return fmt.Errorf("the collection has no Link rel=\"mercure\" with last-event-id (it has %q)", rp.header.Values("Link"))
		}
	} else {
		if doc.LastEventID == nil {
			return errors.New("the collection has no lastEventID")
		}
		if doc.Context == "" {
			return errors.New("the collection has no @context (JSON-LD)")
		}
	}
	for _, d := range doc.Subscriptions {
		if d.selector(t.is08()) == topic {
			return d.check(t.is08())
		}
	}
	return fmt.Errorf("the collection does not list the open subscription to %s", topic)
}

// linkCursorOf finds last-event-id on a rel="mercure" link.
func linkCursorOf(values []string) (string, bool) {
	for _, l := range parseLinks(values) {
		if c, ok := l.params["last-event-id"]; ok && l.hasRel("mercure") {
			return c, true
		}
	}
	return "", false
}

func checkSubscriptionSingle(t *T) error {
	topic := t.topic("t")
	watcher, err := t.subscribe(sub{sels: []sel{t.subscriptionEventsSelector()}})
	if err != nil {
		return err
	}
	if _, err := t.subscribe(sub{sels: []sel{exact(topic)}}); err != nil {
		return err
	}
	_, d, err := t.waitSubscriptionEvent(watcher, topic, true)
	if err != nil {
		return err
	}
	rel, ok := strings.CutPrefix(d.ID, t.subscriptionsBase())
	if !ok {
		if u, err := url.Parse(d.ID); err == nil {
			rel, ok = strings.CutPrefix(u.EscapedPath(), t.subscriptionsBase())
		}
		if !ok {
			return fmt.Errorf("the subscription's id %q is not under %s", d.ID, t.subscriptionsBase())
		}
	}
	rp, err := t.subscriptionsGet(rel, nil)
	if err != nil {
		return err
	}
	if rp.status != http.StatusOK {
		return fmt.Errorf("GET %s got %s, want 200", d.ID, rp)
	}
	var one subscriptionDoc
	if err := json.Unmarshal([]byte(rp.body), &one); err != nil {
		return fmt.Errorf("GET %s: not JSON: %w", d.ID, err)
	}
	if one.ID != d.ID || one.selector(t.is08()) != topic {
		return fmt.Errorf("GET %s answered the subscription %q to %q", d.ID, one.ID, one.selector(t.is08()))
	}
	unknown := rel[:strings.LastIndexByte(rel, '/')+1] + strings.ReplaceAll(url.QueryEscape("urn:uuid:00000000-0000-4000-8000-000000000000"), "+", "%20")
	rp, err = t.subscriptionsGet(unknown, nil)
	if err != nil {
		return err
	}
	return expectStatus("GET of an unknown subscription", rp, http.StatusNotFound)
}
