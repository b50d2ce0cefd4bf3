// Package conformance checks a Mercure hub, any hub, against both protocol
// generations: draft-07 (the 0.x hubs) and draft-08 (the hubs from 1.0 on).
// It speaks to the hub over HTTP only, through the client library and the
// SSE reader, and never imports a hub implementation: what it knows of the
// protocol comes from the specifications.
//
// Each case checks one testable requirement and cites the section of the
// specification it comes from ("draft-08 §Reconciliation"). Cases named
// beyond/... check what the specifications imply without testing it (deep
// cursors, long replays, restarts, intermediaries that buffer).
//
// Every topic a run uses lives under a prefix unique to the run, so that a
// run neither disturbs a hub's real traffic nor sees another run's updates.
// Cases are independent, each with its own topics, tokens and timeout: a
// failing or hung case does not affect the others.
package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/mercurectl/mercurectl/internal/client"
)

// Defaults of Options.
const (
	// DefaultTopicPrefix is where the topics of a run live, followed by the
	// run id and a slash. The .invalid top-level domain (RFC 2606) cannot
	// collide with a real application's topics.
	DefaultTopicPrefix = "https://conformance.mercurectl.invalid/"
	// DefaultTimeout bounds one case: long enough for a slow hub behind a
	// proxy, short enough that a hung stream does not stall the run.
	DefaultTimeout = 10 * time.Second
	// DefaultHistoryDepth is how many updates the deep-cursor case
	// publishes: twice the 10,000-record window beyond which reference
	// hubs were seen to report cursors as lost.
	DefaultHistoryDepth = 20000
	// DefaultConcurrency is how many cases run at once.
	DefaultConcurrency = 8
	// publishConcurrency is how many publishes are in flight at once when
	// a case publishes many updates.
	publishConcurrency = 32
	// bulkPerUpdate is the time added to the timeout of a case for each
	// update it publishes in bulk.
	bulkPerUpdate = time.Millisecond
	// replayIdle is how long a replay may pause before it is taken as
	// ended, against hubs that do not mark its end.
	replayIdle = 3 * time.Second
	// hungGrace is how long the runner waits for a case past its timeout
	// before it reports it as hung and moves on.
	hungGrace = 5 * time.Second
)

// Errors returned by Run before any case runs. Match them with errors.Is.
var (
	// ErrUnreachable: the hub could not be reached at all (it wraps
	// client.ErrUnreachable).
	ErrUnreachable = client.ErrUnreachable
	// ErrRefused: the hub refused every token it was shown (401 or 403).
	ErrRefused = errors.New("the hub refused every token")
	// ErrInvalidOptions wraps a problem with the Options.
	ErrInvalidOptions = errors.New("invalid conformance options")
	// ErrNoGeneration: the hub speaks none of the generations asked for.
	ErrNoGeneration = errors.New("no protocol generation to check")
)

// Options configures a run.
type Options struct {
	// HubURL is the hub to check. Required.
	HubURL string
	// HTTPClient performs every request. Required. Bulk publishing uses a
	// copy whose *http.Transport, if it is one, keeps enough idle connections.
	HTTPClient *http.Client
	// Protocol restricts the run to one generation; ProtocolAuto checks
	// every generation the hub serves.
	Protocol client.Protocol

	// Key and Alg sign the tokens minted for each case (HMAC secret or PEM
	// private key; Alg defaults to HS256). Issuer and Audience are the iss
	// and aud of draft-08 access tokens (defaults: token.DefaultMintIdentity
	// and the resource the hub advertises).
	Key      []byte
	Alg      string
	Issuer   string
	Audience string
	// PublisherToken and SubscriberToken are ready tokens, used when Key is
	// empty; cases that need tokens with specific grants are then skipped.
	PublisherToken  string
	SubscriberToken string

	// TopicPrefix is where the run's topics live ("" means
	// DefaultTopicPrefix followed by a random run id and a slash).
	TopicPrefix string
	// Origin, when set, enables the cors cases with this browser origin,
	// which the hub is expected to allow.
	Origin string
	// Resource, when set, is a URL of the application that advertises the
	// hub with a Link header; the discovery cases check it.
	Resource string
	// Heartbeat, when positive, is the hub's keep-alive interval, which the
	// heartbeat case checks.
	Heartbeat time.Duration
	// HistoryDepth is how many updates the deep-cursor case publishes (0
	// means DefaultHistoryDepth).
	HistoryDepth int
	// Restart, when set, restarts the hub (and returns once the restart was
	// initiated or done); the restart case needs it.
	Restart func(ctx context.Context) error

	// Run, when set, selects the cases whose ID matches (see Case.ID).
	Run *regexp.Regexp
	// Timeout bounds each case (0 means DefaultTimeout).
	Timeout time.Duration
	// Concurrency is how many cases run at once (0 means DefaultConcurrency).
	Concurrency int
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// OnResult, when set, receives each result as soon as it and every case
	// listed before it are done, in the order of the list.
	OnResult func(Result)
	// OnStart, when set, is told what the run checks, once detection is done.
	OnStart func(Plan)

	// Scaled-down figures for this package's tests under the race
	// detector, which makes thousands of publishes and sub-second
	// deadlines meaningless on a shared machine; 0 means the default.
	longReplay    int
	deliveryBound time.Duration
}

// Status is the outcome of a case.
type Status string

// Statuses.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Result is the outcome of one case, as reported.
type Result struct {
	// Name is group/name, such as history/unknown-cursor-is-earliest.
	Name string `json:"name"`
	// Group is the part of Name before the slash.
	Group string `json:"group"`
	// Protocol is the generation the case ran in: draft-07 or draft-08
	// ("auto" in a list, for beyond cases, which run in the newest
	// generation the hub serves).
	Protocol string `json:"protocol"`
	// Spec cites what the case checks, such as "draft-08 §Reconciliation".
	Spec string `json:"spec"`
	// Status is pass, fail or skip ("" in a list).
	Status Status `json:"status,omitempty"`
	// Detail says what was expected and what came (fail), or why the case
	// did not run (skip).
	Detail string `json:"detail,omitempty"`
	// Duration is how long the case ran.
	Duration time.Duration `json:"-"`
}

// ID is what Options.Run matches: the name and the citation, as the text
// output prints them: "history/unknown-cursor-is-earliest (draft-08 §Reconciliation)".
func (r Result) ID() string { return r.Name + " (" + r.Spec + ")" }

// Summary counts the results of a run.
type Summary struct {
	Passed, Failed, Skipped int
	Duration                time.Duration
}

// Plan is what a run checks, known once the hub has been probed.
type Plan struct {
	// HubURL is the hub checked.
	HubURL string
	// Generations are the generations checked.
	Generations []client.Protocol
	// Skipped says, for each generation not checked, why.
	Skipped map[client.Protocol]string
	// TopicPrefix is where the run's topics live.
	TopicPrefix string
}

// List returns the cases a run with o would consider, in order, without
// contacting the hub. Beyond cases have Protocol "auto".
func List(o Options) []Result {
	var out []Result
	for _, inst := range instances(allCases(), generationsFor(o.Protocol), client.ProtocolAuto) {
		r := inst.result()
		if o.Run == nil || o.Run.MatchString(r.ID()) {
			out = append(out, r)
		}
	}
	return out
}

// generationsFor returns the generations a run may check.
func generationsFor(p client.Protocol) []client.Protocol {
	switch p {
	case client.Protocol07:
		return []client.Protocol{client.Protocol07}
	case client.Protocol08:
		return []client.Protocol{client.Protocol08}
	default:
		return []client.Protocol{client.Protocol07, client.Protocol08}
	}
}

// instance is one case in one generation.
type instance struct {
	c   *caseDef
	gen client.Protocol // ProtocolAuto: a beyond case not yet placed
}

func (in instance) result() Result {
	return Result{
		Name:     in.c.group + "/" + in.c.name,
		Group:    in.c.group,
		Protocol: in.gen.String(),
		Spec:     in.c.spec(in.gen),
	}
}

// instances expands cases over gens; beyond cases run once, in beyondGen.
func instances(cases []*caseDef, gens []client.Protocol, beyondGen client.Protocol) []instance {
	var out []instance
	for _, c := range cases {
		if c.beyond {
			out = append(out, instance{c: c, gen: beyondGen})
			continue
		}
		for _, g := range gens {
			if c.applies(g) {
				out = append(out, instance{c: c, gen: g})
			}
		}
	}
	return out
}

// Run checks the hub and returns the counts. Before any case runs, it
// returns an error wrapping ErrUnreachable when the hub cannot be reached,
// ErrRefused when the hub refuses every token, ErrNoGeneration when it
// speaks none of the generations asked for, and ErrInvalidOptions for bad
// options. Failing cases are not errors: they are counted in Summary.Failed.
func Run(ctx context.Context, o Options) (Summary, error) {
	start := time.Now()
	r, err := newRunner(o)
	if err != nil {
		return Summary{}, err
	}
	plan, err := r.prepare(ctx)
	if err != nil {
		return Summary{}, err
	}
	if o.OnStart != nil {
		o.OnStart(plan)
	}

	// Every case of the list, in list order: those of a generation the
	// hub does not serve are skipped with the reason; beyond cases run in
	// the newest generation checked.
	beyondGen := plan.Generations[len(plan.Generations)-1]
	var items []item
	for _, in := range instances(allCases(), generationsFor(o.Protocol), beyondGen) {
		res := in.result()
		if o.Run != nil && !o.Run.MatchString(res.ID()) {
			continue
		}
		it := item{inst: in}
		if why, ok := plan.Skipped[in.gen]; ok {
			res.Status, res.Detail = Skip, why
			it.preset = &res
		}
		items = append(items, it)
	}
	results := r.runAll(ctx, items)
	sum := Summary{Duration: time.Since(start)}
	for _, res := range results {
		switch res.Status {
		case Pass:
			sum.Passed++
		case Fail:
			sum.Failed++
		case Skip:
			sum.Skipped++
		}
	}
	return sum, ctx.Err()
}

// item is a case to run, or its result when it is known without running.
type item struct {
	inst   instance
	preset *Result
}

// runner is the state of one run.
type runner struct {
	o       Options
	c       *client.Client
	httpc   *http.Client
	bulk    *http.Client
	log     *slog.Logger
	prefix  string
	timeout time.Duration
	depth   int

	md         *client.Metadata // nil when the hub serves none
	anonymous  bool             // the hub accepts subscribers without a token
	subsAPI    map[client.Protocol]bool
	readyGen   client.Protocol // generation of the ready tokens (ProtocolAuto: any)
	signingKey any
}

func newRunner(o Options) (*runner, error) {
	if o.HTTPClient == nil {
		return nil, fmt.Errorf("%w: an HTTP client is required", ErrInvalidOptions)
	}
	if len(o.Key) == 0 && (o.PublisherToken == "" || o.SubscriberToken == "") {
		return nil, fmt.Errorf("%w: a signing key, or both a publisher and a subscriber token, are required", ErrInvalidOptions)
	}
	c, err := client.New(client.Options{HubURL: o.HubURL, HTTPClient: o.HTTPClient, Protocol: client.ProtocolAuto, Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	r := &runner{o: o, c: c, httpc: o.HTTPClient, log: o.Logger, subsAPI: map[client.Protocol]bool{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if o.Alg == "" {
		r.o.Alg = "HS256"
	}
	if len(o.Key) > 0 {
		if r.signingKey, err = parseSigningKey(r.o.Alg, o.Key); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
	} else {
		pg, sg := tokenGeneration(o.PublisherToken), tokenGeneration(o.SubscriberToken)
		if pg != sg {
			return nil, fmt.Errorf("%w: the publisher token is a %s token and the subscriber token a %s one", ErrInvalidOptions, pg, sg)
		}
		r.readyGen = pg
	}
	r.prefix = o.TopicPrefix
	if r.prefix == "" {
		r.prefix = DefaultTopicPrefix + newRunID() + "/"
	}
	r.timeout = o.Timeout
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	r.depth = o.HistoryDepth
	if r.depth <= 0 {
		r.depth = DefaultHistoryDepth
	}
	if r.depth < 3 {
		return nil, fmt.Errorf("%w: the history depth must be at least 3", ErrInvalidOptions)
	}
	r.bulk = bulkClient(o.HTTPClient)
	return r, nil
}

// newRunID returns a short id unique to this run: the time (readable in a
// hub's logs) and random bits (two runs started at once differ).
func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)
}

// bulkClient returns a client for many concurrent publishes: with an
// *http.Transport, a copy that keeps an idle connection per publisher, so
// that connections are reused rather than opened for each update.
func bulkClient(c *http.Client) *http.Client {
	t, ok := c.Transport.(*http.Transport)
	if c.Transport == nil {
		t, ok = http.DefaultTransport.(*http.Transport)
	}
	if !ok {
		return c
	}
	t = t.Clone()
	t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, publishConcurrency)
	cc := *c
	cc.Transport = t
	return &cc
}

// runAll runs the items with bounded concurrency and reports their
// results in list order. Exclusive cases run alone, after the others.
func (r *runner) runAll(ctx context.Context, items []item) []Result {
	conc := r.o.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	results := make([]Result, len(items))
	done := make([]chan struct{}, len(items))
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var exclusive []int
	for i, it := range items {
		done[i] = make(chan struct{})
		switch {
		case it.preset != nil:
			results[i] = *it.preset
			close(done[i])
		case it.inst.c.exclusive:
			exclusive = append(exclusive, i)
		default:
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				results[i] = r.runCase(ctx, it.inst)
				close(done[i])
			}()
		}
	}
	go func() {
		wg.Wait()
		for _, i := range exclusive {
			results[i] = r.runCase(ctx, items[i].inst)
			close(done[i])
		}
	}()
	for i := range items {
		<-done[i]
		if r.o.OnResult != nil {
			r.o.OnResult(results[i])
		}
	}
	return results
}

// runCase runs one case under its timeout, turning panics, hangs and
// errors into a result.
func (r *runner) runCase(ctx context.Context, in instance) (res Result) {
	res = in.result()
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	if ctx.Err() != nil {
		res.Status, res.Detail = Skip, "the run was interrupted"
		return res
	}
	if why := r.unmet(in); why != "" {
		res.Status, res.Detail = Skip, why
		return res
	}
	timeout := r.timeout + in.c.extraTime(r)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := r.newT(cctx, in, timeout)
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				r.log.Error("conformance case panicked", "case", in.result().ID(), "panic", p, "stack", string(debug.Stack()))
				done <- fmt.Errorf("the case panicked: %v", p)
			}
		}()
		done <- in.c.run(t)
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(timeout + hungGrace):
		err = fmt.Errorf("the case did not end within %v of its %v timeout", hungGrace, timeout)
	}
	t.cleanup()
	var skip *skipError
	switch {
	case err == nil:
		res.Status = Pass
	case errors.As(err, &skip):
		res.Status, res.Detail = Skip, skip.why
	case ctx.Err() != nil:
		res.Status, res.Detail = Skip, "the run was interrupted"
	default:
		res.Status, res.Detail = Fail, t.describe(err)
	}
	return res
}

// unmet returns why the case cannot run with these options and this hub,
// or "".
func (r *runner) unmet(in instance) string {
	c := in.c
	switch {
	case c.needs&needKey != 0 && r.signingKey == nil:
		return "needs --jwt-key, to mint tokens with specific grants (ready-made tokens grant what they grant)"
	case c.needs&needOrigin != 0 && r.o.Origin == "":
		return "needs --origin, a browser origin the hub allows"
	case c.needs&needResource != 0 && r.o.Resource == "":
		return "needs --resource, a URL of your application that advertises the hub"
	case c.needs&needHeartbeat != 0 && r.o.Heartbeat <= 0:
		return "needs --heartbeat, the hub's keep-alive interval"
	case c.needs&needRestart != 0 && r.o.Restart == nil:
		return "needs --restart-cmd, a command that restarts the hub"
	case c.needs&needSubscriptions != 0 && !r.subsAPI[in.gen]:
		return "the hub does not serve the subscriptions API (optional) to this token"
	case c.needs&needAnonymous != 0 && !r.anonymous:
		return "the hub does not accept anonymous subscribers (optional)"
	}
	return ""
}

// skipError is returned by a case that cannot decide, with the reason.
type skipError struct{ why string }

func (e *skipError) Error() string { return "skip: " + e.why }

// skipf returns a *skipError.
func skipf(format string, args ...any) error {
	return &skipError{why: fmt.Sprintf(format, args...)}
}

// oneLine keeps a detail on one line: the text output has one line per case.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)), " ")
}
