package conformance

import (
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mercurectl/mercurectl/internal/conformance/faultproxy"
)

// faultExpectations says, for each fault, which cases must fail (by
// "protocol name") and what their detail must say: the fault, in words.
var faultExpectations = map[faultproxy.Fault]struct {
	fail   []string
	detail string
}{
	faultproxy.DropCursorHeader: {
		fail:   both("history/response-cursor", "history/earliest", "history/unknown-cursor-is-earliest"),
		detail: `no (Mercure-)?Last-Event-ID response header`,
	},
	faultproxy.Unauthorized403: {
		fail: append(both("auth/publish-not-granted-is-403", "auth/publish-alternate-not-granted-is-403"),
			"draft-07 publish/reserved-topic-refused", "draft-08 subscriptions/api-needs-a-grant"),
		detail: `got 401 .*want (400 or )?403`,
	},
	faultproxy.DropReplayed: {
		fail: append(both("history/query-cursor", "history/header-cursor", "history/earliest", "history/private-replay", "history/replay-then-live"),
			"draft-08 history/duplicate-id-earliest-entry", "draft-08 beyond/old-cursor-found", "draft-08 beyond/replay-over-1000-events"),
		detail: `events missing`,
	},
	faultproxy.ReorderReplayed: {
		fail: append(both("history/query-cursor", "history/header-cursor", "history/earliest", "history/private-replay", "history/replay-then-live"),
			"draft-08 history/duplicate-id-earliest-entry"),
		detail: `out of order`,
	},
	faultproxy.CapReplay: {
		fail:   []string{"draft-08 beyond/old-cursor-found", "draft-08 beyond/replay-over-1000-events"},
		detail: `replay ended after ` + strconv.Itoa(scale.threshold) + `\b`,
	},
	faultproxy.JoinData: {
		fail:   both("subscribe/multi-line-data"),
		detail: `lines were joined`,
	},
	faultproxy.DropRetry: {
		fail:   both("subscribe/retry-field"),
		detail: `without a retry field`,
	},
	faultproxy.Buffer: {
		fail:   []string{"draft-08 beyond/heartbeat-within-interval", "draft-08 beyond/no-buffering"},
		detail: `buffers the stream`,
	},
	faultproxy.DropCORS: {
		fail:   both("cors/preflight-subscribe", "cors/preflight-publish", "cors/subscribe-allows-origin", "cors/publish-allows-origin"),
		detail: `no Access-Control-Allow-Origin header`,
	},
	faultproxy.IgnoreLastEventID: {
		fail:   append(both("history/header-cursor", "history/header-beats-query"), "draft-08 beyond/replay-over-1000-events"),
		detail: `Last-Event-ID request header was ignored`,
	},
	faultproxy.OldCursorEarliest: {
		fail:   []string{"draft-08 beyond/old-cursor-found", "draft-08 beyond/replay-over-1000-events"},
		detail: `answered earliest for a cursor \d+ updates deep that its history still holds`,
	},
}

// both names a case in both generations.
func both(names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, "draft-07 "+n, "draft-08 "+n)
	}
	return out
}

// Each fault, injected between the conformance run and our hub, makes the
// cases that check what it breaks fail, with a detail that names it, and
// only those: the others keep passing.
func TestFaultsFailTheMatchingCases(t *testing.T) {
	t.Parallel()
	baseline, _ := runResults(t, runOptions(startHub(t, hubOptions{}).url))
	if len(faultExpectations) != len(faultproxy.Faults()) {
		t.Fatalf("%d faults, %d expectations", len(faultproxy.Faults()), len(faultExpectations))
	}
	// A few runs at a time: the timing cases (no buffering, heartbeats)
	// need a machine that is not saturated by the runs themselves.
	sem := make(chan struct{}, 3)
	for _, fault := range faultproxy.Faults() {
		want := faultExpectations[fault]
		t.Run(string(fault), func(t *testing.T) {
			t.Parallel()
			sem <- struct{}{}
			defer func() { <-sem }()
			h := startHub(t, hubOptions{})
			p, err := faultproxy.New(h.srv.URL, fault)
			if err != nil {
				t.Fatal(err)
			}
			p.OldAfter, p.ReplayCap, p.BufferDelay = scale.threshold, scale.threshold, scale.buffer
			srv := httptest.NewServer(p)
			t.Cleanup(srv.Close)
			res, _ := runResults(t, runOptions(srv.URL+"/.well-known/mercure"))
			detail := regexp.MustCompile(want.detail)
			var failed []string
			for id, r := range res {
				if r.Status == Fail {
					failed = append(failed, id)
				}
			}
			slices.Sort(failed)
			for _, id := range want.fail {
				r, ok := res[id]
				switch {
				case !ok:
					t.Errorf("%s did not run", id)
				case r.Status != Fail:
					t.Errorf("%s: %s, want fail", id, r.Status)
				case !detail.MatchString(r.Detail):
					t.Errorf("%s failed with %q, which does not match %q", id, r.Detail, want.detail)
				}
			}
			for id, r := range res {
				if slices.Contains(want.fail, id) {
					continue
				}
				if b := baseline[id]; r.Status != b.Status {
					t.Errorf("%s: %s (%s), want %s as without the fault", id, r.Status, r.Detail, b.Status)
				}
			}
			if t.Failed() {
				t.Logf("failed: %s", strings.Join(failed, ", "))
			}
		})
	}
}
