package conformance

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Figures of the beyond cases.
const (
	// defaultLongReplay is how many updates the long-replay case publishes:
	// above the 1,000 events after which reference hubs were seen to cut a
	// replay.
	defaultLongReplay = 1500
	// defaultDeliveryBound is how soon a live update must arrive.
	defaultDeliveryBound = time.Second
	// deliveryProbes is how many updates the no-buffering case times.
	deliveryProbes = 3
	// restartTime is added to the restart case's timeout for the restart.
	restartTime = 30 * time.Second
	// heartbeatPeriods is how many heartbeat intervals the heartbeat case
	// watches.
	heartbeatPeriods = 2.5
)

func beyondCases() []*caseDef {
	return []*caseDef{
		// A cursor more than 10,000 updates deep is still found.
		{
			group: "beyond", name: "old-cursor-found",
			beyond: true, spec07: d07Reconcile, spec08: d08Reconcile,
			bulk: func(r *runner) int { return r.depth },
			run: func(t *T) error {
				return t.checkLongReplay(t.r.depth, false)
			},
		},
		// One reconnection replays more than 1,000 events.
		{
			group: "beyond", name: "replay-over-1000-events",
			beyond: true, spec07: d07Reconcile, spec08: d08Reconcile,
			bulk: func(r *runner) int { return r.longReplay() },
			run: func(t *T) error {
				return t.checkLongReplay(t.r.longReplay(), true)
			},
		},
		// A cursor still replays after the hub restarts.
		{
			group: "beyond", name: "cursor-survives-restart",
			beyond: true, spec07: d07Reconcile, spec08: d08Reconcile,
			needs: needRestart, exclusive: true,
			bulk: func(*runner) int { return int(restartTime / bulkPerUpdate) },
			run:  checkRestart,
		},
		// Keep-alive comments arrive within the hub's interval, through
		// every intermediary.
		{
			group: "beyond", name: "heartbeat-within-interval",
			beyond: true, spec07: d07Subscriptions, spec08: d08Subscription,
			needs: needHeartbeat,
			bulk:  func(r *runner) int { return int(time.Duration(3*float64(r.o.Heartbeat)) / bulkPerUpdate) },
			run:   checkHeartbeat,
		},
		// A live update is not held back: it arrives within 1 s.
		{
			group: "beyond", name: "no-buffering",
			beyond: true, spec07: d07Subscriptions, spec08: d08Subscription,
			run: checkNoBuffering,
		},
	}
}

// longReplay is how many updates the long-replay case publishes.
func (r *runner) longReplay() int {
	if r.o.longReplay > 0 {
		return r.o.longReplay
	}
	return defaultLongReplay
}

// deliveryBound is how soon a live update must arrive.
func (r *runner) deliveryBound() time.Duration {
	if r.o.deliveryBound > 0 {
		return r.o.deliveryBound
	}
	return defaultDeliveryBound
}

// checkLongReplay publishes n updates on a topic (the first and the last
// one by one, the others concurrently) and checks that a subscriber with
// the first one's id as its cursor gets every other one, the last one last.
// The order within the concurrent ones is the hub's. header sends the
// cursor as a reconnection does (Last-Event-ID), else as the query
// parameter of a first connection.
func (t *T) checkLongReplay(n int, header bool) error {
	topic := t.topic("t")
	first, err := t.publishData(topic, "oldest")
	if err != nil {
		return err
	}
	bulk, err := t.publishBulk(topic, n-2)
	if err != nil {
		return err
	}
	last, err := t.publishData(topic, "newest")
	if err != nil {
		return err
	}
	s := sub{sels: []sel{exact(topic)}}
	if header {
		s.headerCursor = &first
	} else {
		s.queryCursor = &first
	}
	st, err := t.subscribe(s)
	if err != nil {
		return err
	}
	cur, hasCursor := "", false
	if vs := st.header.Values(t.cursorHeader()); len(vs) > 0 {
		cur, hasCursor = vs[0], true
	}
	what := fmt.Sprintf("the replay after a cursor %d updates deep", n-1)
	evs, stop := st.collect(n-1, replayIdle, what)
	st.close()
	hint := ""
	if header {
		hint = "the Last-Event-ID request header was ignored"
	}
	replayErr := compareSet(what, bulk, last, eventIDs(evs), stop, hint)
	if replayErr == nil && (!hasCursor || cur == first) {
		return nil
	}

	// Something is off: does the hub still hold the cursor at all?
	held, why, err := t.holds(topic, first)
	if err != nil {
		return err
	}
	if !held {
		return skipf("the hub's history does not hold the update published %d updates ago (%s): it keeps fewer than %d updates; raise its history size or lower --history-depth", n-1, why, n)
	}
	if hasCursor && cur == "earliest" {
		return fmt.Errorf("the hub answered earliest for a cursor %d updates deep that its history still holds (a replay from earliest starts with it): it reported a real old cursor as lost", n-1)
	}
	if replayErr != nil {
		return replayErr
	}
	return fmt.Errorf("the %s response header is %q, want the cursor %q", t.cursorHeader(), cur, first)
}

// holds reports whether the hub still holds id, the first update published
// on topic: whether a replay from earliest starts with it.
func (t *T) holds(topic, id string) (bool, string, error) {
	st, err := t.subscribe(sub{sels: []sel{exact(topic)}, queryCursor: str("earliest")})
	if err != nil {
		return false, "", err
	}
	defer st.close()
	evs, stop := st.collect(1, replayIdle, "the first update replayed from earliest")
	if len(evs) == 0 {
		return false, "a replay from earliest sends nothing: " + stop, nil
	}
	if evs[0].ID != id {
		return false, fmt.Sprintf("a replay from earliest starts at %s", evs[0].ID), nil
	}
	return true, "", nil
}

// compareSet checks a replay whose order is known only for its last event.
func compareSet(what string, want []string, last string, got []string, stop, hint string) error {
	suffix := ""
	if stop != "" {
		suffix = " (" + stop + ")"
	}
	expected := make(map[string]bool, len(want)+1)
	for _, id := range want {
		expected[id] = true
	}
	expected[last] = true
	seen := make(map[string]bool, len(got))
	lastAt := -1
	for i, id := range got {
		switch {
		case seen[id]:
			return fmt.Errorf("%s: event #%d (%s) was delivered twice", what, i+1, id)
		case !expected[id]:
			return fmt.Errorf("%s: event #%d (%s) is not one of the %d expected", what, i+1, id, len(expected))
		case id == last:
			lastAt = i
		}
		seen[id] = true
	}
	if len(got) < len(expected) {
		if len(got) == 0 {
			if hint != "" {
				return fmt.Errorf("%s: no event came, want %d: %s?%s", what, len(expected), hint, suffix)
			}
			return fmt.Errorf("%s: no event came, want %d%s", what, len(expected), suffix)
		}
		return fmt.Errorf("%s: %d of %d events missing: the replay ended after %d%s", what, len(expected)-len(got), len(expected), len(got), suffix)
	}
	if lastAt != len(got)-1 {
		return fmt.Errorf("%s: the newest update came in position %d of %d", what, lastAt+1, len(expected))
	}
	return nil
}

// checkRestart: a cursor published before a restart still replays what
// came before and after it, in order.
func checkRestart(t *T) error {
	topic := t.topic("t")
	before, err := t.publishSeq(topic, 3)
	if err != nil {
		return err
	}
	if err := t.r.o.Restart(t.ctx); err != nil {
		return fmt.Errorf("--restart-cmd: %w", err)
	}
	if err := t.waitHub(); err != nil {
		return err
	}
	after, err := t.publishSeq(topic, 2)
	if err != nil {
		return err
	}
	if err := t.checkReplay(sub{sels: []sel{exact(topic)}, queryCursor: &before[0]}, append(before[1:], after...),
		"the replay after a cursor from before the restart", "the history was lost at the restart"); err != nil {
		return err
	}
	return t.checkReplay(sub{sels: []sel{exact(topic)}, queryCursor: &after[0]}, after[1:],
		"the replay after a cursor from after the restart", "")
}

// waitHub waits until the hub accepts subscriptions again.
func (t *T) waitHub() error {
	probe := sub{sels: []sel{exact(t.topic("probe"))}}
	var last string
	for {
		st, rp, err := t.open(probe)
		switch {
		case st != nil:
			st.close()
			return nil
		case rp != nil:
			last = rp.String()
		case err != nil:
			var we *waitError
			if errors.As(err, &we) {
				return fmt.Errorf("the hub did not come back after --restart-cmd: %w (last: %s)", err, last)
			}
			last = err.Error()
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-t.ctx.Done():
			return fmt.Errorf("the hub did not come back after --restart-cmd within %v (last: %s)", t.timeout, last)
		}
	}
}

// checkHeartbeat watches an idle subscription for heartbeatPeriods of the
// hub's interval: something (a comment line) must arrive in every interval,
// counted from the response headers.
func checkHeartbeat(t *T) error {
	d := t.r.o.Heartbeat
	grace := max(d/2, 750*time.Millisecond)
	st, err := t.subscribe(sub{sels: []sel{exact(t.topic("t"))}})
	if err != nil {
		return err
	}
	watch := time.Duration(heartbeatPeriods * float64(d))
	select {
	case <-time.After(watch):
	case <-t.ctx.Done():
		return t.waitErr("heartbeats")
	}
	times := append([]time.Time{st.opened}, st.commentTimes()...)
	times = append(times, time.Now())
	if len(times) == 2 {
		return fmt.Errorf("no keep-alive comment came in %v, want one every %v: the hub sends none, or something buffers the stream", watch.Round(time.Millisecond), d)
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap > d+grace {
			return fmt.Errorf("nothing came for %v on an idle stream, want a keep-alive every %v: the hub is late, or something buffers the stream", gap.Round(time.Millisecond), d)
		}
	}
	return nil
}

// checkNoBuffering times a few live updates from publish to arrival.
func checkNoBuffering(t *T) error {
	topic := t.topic("t")
	st, err := t.subscribe(sub{sels: []sel{exact(topic)}})
	if err != nil {
		return err
	}
	for i := range deliveryProbes {
		start := time.Now()
		rp, err := t.publishReply(pub{topics: []string{topic}, data: str(fmt.Sprintf("probe %d", i+1))})
		if err != nil {
			return err
		}
		if rp.status != http.StatusOK && (rp.status < 200 || rp.status > 299) {
			return fmt.Errorf("publishing: %s", rp)
		}
		_, e, err := st.waitFor(trimID(rp.body), "a live update")
		if err != nil {
			return err
		}
		if bound := t.r.deliveryBound(); e.at.Sub(start) > bound {
			return fmt.Errorf("a live update arrived %v after it was published, want within %v: something between the hub and this client buffers the stream", e.at.Sub(start).Round(10*time.Millisecond), bound)
		}
	}
	return nil
}

func trimID(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}
