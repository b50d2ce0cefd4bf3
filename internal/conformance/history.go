package conformance

import (
	"errors"
	"fmt"
	"strings"
	"sync"
)

// seamUpdates is how many updates the replay-then-live case publishes while
// its subscriber connects.
const seamUpdates = 20

func historyCases() []*caseDef {
	return []*caseDef{
		cursorCase("query-cursor", func(t *T, ids []string) (sub, []string, string, string) {
			return sub{queryCursor: &ids[0]}, ids[1:],
				"the updates after the " + t.cursorParam() + " query parameter", "the " + t.cursorParam() + " query parameter was ignored"
		}),
		cursorCase("header-cursor", func(_ *T, ids []string) (sub, []string, string, string) {
			return sub{headerCursor: &ids[0]}, ids[1:],
				"the updates after the Last-Event-ID header", "the Last-Event-ID request header was ignored"
		}),
		cursorCase("header-beats-query", func(_ *T, ids []string) (sub, []string, string, string) {
			return sub{queryCursor: &ids[0], headerCursor: &ids[1]}, ids[2:],
				"the updates after the Last-Event-ID header (the query parameter names an earlier one)", "the Last-Event-ID request header was ignored"
		}),
		{
			group: "history", name: "response-cursor",
			spec07: d07Reconcile, spec08: d08Reconcile,
			run: func(t *T) error {
				ids, err := t.publishSeq(t.topic("t"), 2)
				if err != nil {
					return err
				}
				s, err := t.subscribe(sub{sels: []sel{exact(t.topic("t"))}, queryCursor: &ids[0]})
				if err != nil {
					return err
				}
				got, err := t.responseCursor(s)
				if err != nil {
					return err
				}
				if got != ids[0] {
					return fmt.Errorf("the %s response header is %q, want the cursor %q, which the hub holds", t.cursorHeader(), got, ids[0])
				}
				return nil
			},
		},
		{
			group: "history", name: "earliest",
			spec07: d07Reconcile, spec08: d08Reconcile,
			run: func(t *T) error {
				ids, err := t.publishSeq(t.topic("t"), 3)
				if err != nil {
					return err
				}
				s, err := t.subscribe(sub{sels: []sel{exact(t.topic("t"))}, queryCursor: str("earliest")})
				if err != nil {
					return err
				}
				got, err := t.responseCursor(s)
				if err != nil {
					return err
				}
				if got != "earliest" {
					return fmt.Errorf("the %s response header is %q for the cursor earliest, want earliest", t.cursorHeader(), got)
				}
				evs, stop := s.collect(len(ids), replayIdle, "the replay from earliest")
				if len(evs) == 0 {
					return skipf("the hub replays nothing for earliest (it may ignore the request): %s", stop)
				}
				return compareIDs("the replay from earliest", ids, eventIDs(evs), stop, "")
			},
		},
		{
			group: "history", name: "unknown-cursor-is-earliest",
			spec07: d07Reconcile, spec08: d08Reconcile,
			run: func(t *T) error {
				if _, err := t.publishData(t.topic("t"), "x"); err != nil {
					return err
				}
				unknown := "urn:conformance:unknown:" + newRunID()
				s, err := t.subscribe(sub{sels: []sel{exact(t.topic("t"))}, queryCursor: &unknown})
				if err != nil {
					return err
				}
				got, err := t.responseCursor(s)
				if err != nil {
					return err
				}
				if got != "earliest" {
					return fmt.Errorf("the %s response header is %q for a cursor the hub never saw, want earliest", t.cursorHeader(), got)
				}
				return nil
			},
		},
		{
			group: "history", name: "private-replay",
			spec07: d07Reconcile, spec08: d08Reconcile,
			needs: needKey,
			run:   checkPrivateReplay,
		},
		{
			group: "history", name: "replay-then-live",
			spec07: d07Reconcile, spec08: d08Reconcile,
			run: checkReplayThenLive,
		},
		{
			group: "history", name: "duplicate-id-earliest-entry",
			spec08: d08Reconcile,
			run:    checkDuplicateID,
		},
	}
}

// cursorCase publishes three updates on a topic, then checks the replay of
// a subscription to it with the cursors that how returns (with what the
// replay must be, and how to describe it).
func cursorCase(name string, how func(t *T, ids []string) (s sub, want []string, what, hint string)) *caseDef {
	return &caseDef{
		group: "history", name: name,
		spec07: d07Reconcile, spec08: d08Reconcile,
		run: func(t *T) error {
			ids, err := t.publishSeq(t.topic("t"), 3)
			if err != nil {
				return err
			}
			s, want, what, hint := how(t, ids)
			s.sels = []sel{exact(t.topic("t"))}
			return t.checkReplay(s, want, what, hint)
		},
	}
}

// checkReplay subscribes with s and checks that exactly want is replayed,
// in order. hint explains a replay of nothing.
func (t *T) checkReplay(s sub, want []string, what, hint string) error {
	st, err := t.subscribe(s)
	if err != nil {
		return err
	}
	evs, stop := st.collect(len(want), replayIdle, what)
	return compareIDs(what, want, eventIDs(evs), stop, hint)
}

func eventIDs(evs []evt) []string {
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}

// compareIDs explains how got differs from want: missing, duplicated,
// unexpected or reordered events. stop says why reading stopped early.
func compareIDs(what string, want, got []string, stop, hint string) error {
	if equal(want, got) {
		return nil
	}
	pos := make(map[string]int, len(want))
	for i, id := range want {
		pos[id] = i
	}
	seen := make(map[string]bool, len(got))
	for i, id := range got {
		if seen[id] {
			return fmt.Errorf("%s: event #%d (%s) was delivered twice", what, i+1, id)
		}
		seen[id] = true
		if _, ok := pos[id]; !ok {
			why := "the replay started at the wrong place?"
			if hint != "" {
				why = "the replay started at the wrong place: " + hint + "?"
			}
			return fmt.Errorf("%s: event #%d (%s) is not one of the %d expected (%s)", what, i+1, id, len(want), why)
		}
	}
	var missing []int
	for i, id := range want {
		if !seen[id] {
			missing = append(missing, i)
		}
	}
	suffix := ""
	if stop != "" {
		suffix = " (" + stop + ")"
	}
	switch {
	case len(got) == 0:
		msg := fmt.Sprintf("%s: no event came, want %d", what, len(want))
		if hint != "" {
			msg += ": " + hint + "?"
		}
		return errors.New(msg + suffix)
	case len(missing) > 0 && isPrefix(got, want):
		return fmt.Errorf("%s: %d of %d events missing: the replay ended after %d%s", what, len(missing), len(want), len(got), suffix)
	case len(missing) > 0:
		return fmt.Errorf("%s: %d of %d events missing, the first one #%d (%s)%s", what, len(missing), len(want), missing[0]+1, want[missing[0]], suffix)
	}
	for i, id := range got {
		if want[i] != id {
			return fmt.Errorf("%s: out of order: event #%d (%s) came in position %d", what, pos[id]+1, id, i+1)
		}
	}
	return fmt.Errorf("%s: got %v, want %v", what, got, want)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func isPrefix(p, s []string) bool { return len(p) <= len(s) && equal(p, s[:len(p)]) }

// checkPrivateReplay: replayed events are filtered by the subscriber's
// token as live ones are.
func checkPrivateReplay(t *T) error {
	topic := t.topic("t")
	cursor, err := t.publishData(topic, "cursor")
	if err != nil {
		return err
	}
	a, err := t.publishData(topic, "public a")
	if err != nil {
		return err
	}
	b, err := t.publish(pub{topics: []string{topic}, data: str("private b"), private: str("on")})
	if err != nil {
		return err
	}
	c, err := t.publishData(topic, "public c")
	if err != nil {
		return err
	}
	other, err := t.r.mint(t.gen, nil, []sel{exact(t.topic("other"))}, mintOpts{})
	if err != nil {
		return err
	}
	if err := t.checkReplay(sub{sels: []sel{exact(topic)}, queryCursor: &cursor, token: &other}, []string{a, c},
		"the replay for a subscriber without the grant (a private update must be left out)", ""); err != nil {
		if strings.Contains(err.Error(), b) {
			return fmt.Errorf("a private update was replayed to a subscriber whose token does not grant it: %w", err)
		}
		return err
	}
	return t.checkReplay(sub{sels: []sel{exact(topic)}, queryCursor: &cursor}, []string{a, b, c},
		"the replay for a subscriber with the grant (the private update included)", "")
}

// checkReplayThenLive: updates published while a subscriber connects with a
// cursor arrive once each, in order: the seam between replay and live
// delivery loses and duplicates nothing.
func checkReplayThenLive(t *T) error {
	topic := t.topic("t")
	ids, err := t.publishSeq(topic, 3)
	if err != nil {
		return err
	}
	var (
		wg     sync.WaitGroup
		seam   []string
		pubErr error
	)
	wg.Go(func() {
		seam, pubErr = t.publishSeq(topic, seamUpdates)
	})
	st, err := t.subscribe(sub{sels: []sel{exact(topic)}, queryCursor: &ids[0]})
	wg.Wait()
	if err != nil {
		return err
	}
	if pubErr != nil {
		return pubErr
	}
	want := append(ids[1:], seam...)
	evs, stop := st.collectLive(len(want), replayIdle, "the updates replayed, then delivered live")
	return compareIDs("the updates published while the subscriber connected", want, eventIDs(evs), stop, "")
}

// checkDuplicateID: a cursor that names several updates (publishers chose
// the same id) resumes after the first of them.
func checkDuplicateID(t *T) error {
	topic := t.topic("t")
	dup := "urn:conformance:duplicate:" + newRunID()
	got, err := t.publish(pub{topics: []string{topic}, data: str("first"), id: dup})
	if err != nil {
		return err
	}
	if got != dup {
		return skipf("the hub ignores the ids publishers ask for (allowed)")
	}
	a, err := t.publishData(topic, "a")
	if err != nil {
		return err
	}
	rp, err := t.publishReply(pub{topics: []string{topic}, data: str("second"), id: dup})
	if err != nil {
		return err
	}
	if rp.status < 200 || rp.status > 299 {
		return skipf("the hub refuses a duplicate id (%s)", rp)
	}
	b, err := t.publishData(topic, "b")
	if err != nil {
		return err
	}
	return t.checkReplay(sub{sels: []sel{exact(topic)}, queryCursor: &dup}, []string{a, dup, b},
		"the replay after an id two updates share (it must start after the first)", "")
}
