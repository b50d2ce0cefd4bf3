package conformance

import (
	"sync"
	"time"

	"github.com/mercurectl/mercurectl/internal/client"
)

// needs are what a case requires of the options or the hub.
type needs uint

const (
	needKey           needs = 1 << iota // a signing key (tokens with specific grants)
	needOrigin                          // Options.Origin
	needResource                        // Options.Resource
	needHeartbeat                       // Options.Heartbeat
	needRestart                         // Options.Restart
	needSubscriptions                   // the hub serves the subscriptions API
	needAnonymous                       // the hub accepts subscribers without a token
)

// caseDef is one testable requirement.
type caseDef struct {
	group, name string
	// spec07 and spec08 cite what the case checks in each generation; ""
	// means the requirement does not exist there (the case does not run).
	spec07, spec08 string
	// beyond cases check what the specifications imply but do not test;
	// they run once, in the newest generation checked, and cite the
	// section they build on.
	beyond bool
	needs  needs
	// exclusive cases run alone, after the others (a hub restart).
	exclusive bool
	// bulk is how many updates the case publishes in bulk; its timeout
	// grows with it.
	bulk func(r *runner) int
	run  func(t *T) error
}

// Citations. Sections are named as in the drafts (draft-dunglas-mercure-07
// and its draft-08 successor), so that they survive renumbering.
const (
	d07Discovery     = "draft-07 §Discovery"
	d07Subscriptions = "draft-07 §Subscriptions"
	d07Publication   = "draft-07 §Publication"
	d07Authorization = "draft-07 §Authorization"
	d07Reconcile     = "draft-07 §Reconciliation"
	d07SubEvents     = "draft-07 §Subscription Events"
	d07SubAPI        = "draft-07 §Subscription API"

	d08Discovery     = "draft-08 §Discovery, RFC 9728 §3"
	d08Subscription  = "draft-08 §Subscription"
	d08Matchers      = "draft-08 §Matcher Types"
	d08Publication   = "draft-08 §Publication"
	d08Authorization = "draft-08 §Authorization"
	d08Errors        = "draft-08 §Error Responses, RFC 6750 §3"
	d08Validation    = "draft-08 §Token Validation"
	d08Details       = "draft-08 §Authorization Details"
	d08Reconcile     = "draft-08 §Reconciliation"
	d08SubEvents     = "draft-08 §Subscription Events"
	d08SubAPI        = "draft-08 §Subscription API"

	sseFraming = "HTML §Server-sent events"
	fetchCORS  = "Fetch §CORS protocol"
)

// spec returns the citation of the case in generation g.
func (c *caseDef) spec(g client.Protocol) string {
	switch {
	case c.beyond && g == client.Protocol07:
		return "beyond the spec: " + c.spec07
	case c.beyond && g == client.Protocol08:
		return "beyond the spec: " + c.spec08
	case c.beyond:
		return "beyond the spec: " + c.spec07 + ", " + c.spec08
	case g == client.Protocol07:
		return c.spec07
	default:
		return c.spec08
	}
}

// applies reports whether the case exists in generation g.
func (c *caseDef) applies(g client.Protocol) bool {
	if g == client.Protocol07 {
		return c.spec07 != ""
	}
	return c.spec08 != ""
}

// extraTime is added to the run's per-case timeout for cases that publish
// many updates.
func (c *caseDef) extraTime(r *runner) time.Duration {
	if c.bulk == nil {
		return 0
	}
	return time.Duration(c.bulk(r)) * bulkPerUpdate
}

var allCases = sync.OnceValue(func() []*caseDef {
	var cs []*caseDef
	for _, group := range [][]*caseDef{
		discoveryCases(),
		publishCases(),
		subscribeCases(),
		authCases(),
		historyCases(),
		corsCases(),
		subscriptionsCases(),
		beyondCases(),
	} {
		cs = append(cs, group...)
	}
	return cs
})
