// Package bench is a load generator for any Mercure hub: it opens many
// subscriptions, publishes from many concurrent publishers, and measures
// publish and delivery throughput and delivery latency. `mercurectl bench`
// drives it; it speaks draft-07 (`topic=`) so that it works with every hub.
package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mercurectl/mercurectl/internal/sse"
)

// Options configures a run.
type Options struct {
	// HubURL is the hub's URL.
	HubURL string
	// PublisherToken and SubscriberToken authorise the two sides ("" for
	// anonymous subscribers).
	PublisherToken, SubscriberToken string
	// Subscribers is the number of subscriptions to open.
	Subscribers int
	// Topics is the number of distinct topics: subscriber i listens to topic
	// i % Topics, and publishers cycle through the topics. 1 makes every
	// update a broadcast to all subscribers.
	Topics int
	// Selector is how subscriber i selects topic i % Topics: SelectExact
	// (the default when ""), SelectTemplate or SelectURLPattern.
	Selector string
	// Publishers is the number of concurrent publishers.
	Publishers int
	// Duration is how long publishers run (after all subscribers are connected).
	Duration time.Duration
	// Updates, when > 0, stops publishing after that many updates instead.
	Updates int
	// PayloadSize pads each update's data to at least this many bytes.
	PayloadSize int
	// Drain is how long to wait for deliveries after publishing stops.
	Drain time.Duration
	// Hold keeps the subscriptions open this long once deliveries are done
	// (to measure a hub's memory per idle subscription).
	Hold time.Duration
	// Churn, when > 0, replaces publishing: for Duration, this many extra
	// subscriptions per second connect, wait for their stream to start and
	// disconnect (to check that a hub's resources return to their level).
	Churn int
	// Progress receives human-readable progress lines (may be nil).
	Progress io.Writer
	// Live, when set (a terminal), receives a status line rewritten in
	// place ("\r") every LiveInterval while publishing and draining:
	// publishes acknowledged and failed, deliveries received and expected.
	Live io.Writer
	// LiveInterval is the period of the Live line; 0 means 250ms.
	LiveInterval time.Duration
	// Dial, when set, dials connections (tests use it to pin addresses).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Result is what a run measured.
type Result struct {
	Subscribers int
	Published   uint64
	Failed      uint64
	Delivered   uint64
	// Expected is the number of deliveries the published updates call for.
	Expected uint64
	// PublishElapsed is how long publishing took.
	PublishElapsed time.Duration
	// DeliveryElapsed runs from the first publish to the last delivery.
	DeliveryElapsed time.Duration
	// Latency percentiles of delivery (publish start to receipt).
	P50, P99, Max time.Duration
	// Churned and ChurnFailed count the connect-disconnect cycles of a churn
	// run that worked and that failed (or could not start: too many in flight).
	Churned, ChurnFailed uint64
}

// PublishRate is acknowledged publishes per second.
func (r Result) PublishRate() float64 { return float64(r.Published) / r.PublishElapsed.Seconds() }

// DeliveryRate is updates delivered to subscribers per second.
func (r Result) DeliveryRate() float64 { return float64(r.Delivered) / r.DeliveryElapsed.Seconds() }

// ErrNotConnected is returned when subscriptions could not be opened.
var ErrNotConnected = errors.New("bench: subscriptions could not be opened")

func (o *Options) progressf(format string, a ...any) {
	if o.Progress != nil {
		_, _ = fmt.Fprintf(o.Progress, format+"\n", a...)
	}
}

// live rewrites the status line that status returns on o.Live until the
// returned stop is called (which clears it; calling it again does
// nothing). Without o.Live it does nothing.
func (o *Options) live(status func() string) (stop func()) {
	if o.Live == nil {
		return func() {}
	}
	every := o.LiveInterval
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				_, _ = fmt.Fprint(o.Live, "\r\x1b[K") // clear the line
				return
			case <-t.C:
				_, _ = fmt.Fprintf(o.Live, "\r\x1b[K%s", status())
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
		})
	}
}

// Selector kinds (Options.Selector).
const (
	// SelectExact subscribes to each topic by name (draft-07 "topic=").
	SelectExact = "exact"
	// SelectTemplate subscribes with one URI template per topic (draft-07
	// "topic=https://bench.mercure.test/sel/N/{x}"), updates going to
	// ".../sel/N/item".
	SelectTemplate = "template"
	// SelectURLPattern subscribes with one URL pattern per topic (draft-08
	// "match_urlpattern=https://bench.mercure.test/sel/N/:x"), which needs a
	// draft-08 access token.
	SelectURLPattern = "urlpattern"
)

// ErrSelector is returned for an unknown Options.Selector.
var ErrSelector = errors.New("bench: unknown selector kind")

// topic is the name of bench topic i.
func (o *Options) topic(i int) string {
	if o.Selector == SelectTemplate || o.Selector == SelectURLPattern {
		return "https://bench.mercure.test/sel/" + strconv.Itoa(i) + "/item"
	}
	return "https://bench.mercure.test/topics/" + strconv.Itoa(i)
}

// query is the subscription query that follows bench topic i.
func (o *Options) query(i int) string {
	n := strconv.Itoa(i)
	switch o.Selector {
	case SelectTemplate:
		return "topic=" + url.QueryEscape("https://bench.mercure.test/sel/"+n+"/{x}")
	case SelectURLPattern:
		return "match_urlpattern=" + url.QueryEscape("https://bench.mercure.test/sel/"+n+"/:x")
	default:
		return "topic=" + url.QueryEscape(o.topic(i))
	}
}

// Run performs one load run.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Topics <= 0 {
		o.Topics = max(o.Subscribers, 1)
	}
	if o.Publishers <= 0 {
		o.Publishers = 1
	}
	if o.Drain <= 0 {
		o.Drain = 5 * time.Second
	}
	switch o.Selector {
	case "":
		o.Selector = SelectExact
	case SelectExact, SelectTemplate, SelectURLPattern:
	default:
		return Result{}, fmt.Errorf("%w %q", ErrSelector, o.Selector)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	dial := o.Dial
	if dial == nil {
		dial = dialer.DialContext
	}
	subTransport := &http.Transport{DialContext: dial, MaxIdleConnsPerHost: -1, DisableCompression: true, ForceAttemptHTTP2: false}
	pubTransport := &http.Transport{DialContext: dial, MaxIdleConns: o.Publishers, MaxIdleConnsPerHost: o.Publishers, DisableCompression: true}
	defer subTransport.CloseIdleConnections()
	defer pubTransport.CloseIdleConnections()
	subClient := &http.Client{Transport: subTransport}
	pubClient := &http.Client{Transport: pubTransport}

	res := Result{Subscribers: o.Subscribers}
	subCtx, stopSubs := context.WithCancel(ctx)
	defer stopSubs()

	var delivered atomic.Uint64
	lat := newLatencies()
	var wg sync.WaitGroup
	defer wg.Wait()
	connected := make(chan error, o.Subscribers)
	// Open subscriptions with bounded concurrency, so that the hub's accept
	// queue is not flooded.
	sem := make(chan struct{}, 64)
	for i := range o.Subscribers {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			subscribe(subCtx, subClient, o, o.query(i%o.Topics), connected, sem, &delivered, lat)
		}()
	}
	for i := range o.Subscribers {
		select {
		case err := <-connected:
			if err != nil {
				return res, fmt.Errorf("%w: subscription %d: %w", ErrNotConnected, i, err)
			}
		case <-ctx.Done():
			return res, ctx.Err()
		}
		if (i+1)%5000 == 0 {
			o.progressf("bench: %d subscriptions open", i+1)
		}
	}
	if o.Churn > 0 {
		o.progressf("bench: %d subscriptions open; churning %d subscriptions per second for %v", o.Subscribers, o.Churn, o.Duration)
		res.Churned, res.ChurnFailed = churn(ctx, subClient, o)
		o.progressf("bench: churn done (%d cycles, %d failed)", res.Churned, res.ChurnFailed)
		o.hold(ctx)
		stopSubs()
		return res, nil
	}
	o.progressf("bench: %d subscriptions open; publishing with %d publishers", o.Subscribers, o.Publishers)

	perTopic := make([]uint64, o.Topics)
	for i := range o.Subscribers {
		perTopic[i%o.Topics]++
	}
	var published, failed, expected atomic.Uint64
	var next atomic.Int64
	pad := strings.Repeat("x", max(o.PayloadSize-20, 0))
	start := time.Now()
	// --duration stops publishers from starting new publishes; the ones in
	// flight at the deadline finish and are counted, because the hub
	// delivers what it accepted: cutting them would leave deliveries
	// without their publish in the counts.
	var deadline time.Time
	if o.Updates <= 0 {
		deadline = start.Add(o.Duration)
	}
	stopLive := o.live(func() string {
		return fmt.Sprintf("bench: published %d (%d failed), delivered %d of %d", published.Load(), failed.Load(), delivered.Load(), expected.Load())
	})
	defer stopLive()
	var pwg sync.WaitGroup
	for range o.Publishers {
		pwg.Go(func() {
			for ctx.Err() == nil && (deadline.IsZero() || time.Now().Before(deadline)) {
				n := next.Add(1) - 1
				if o.Updates > 0 && n >= int64(o.Updates) {
					return
				}
				ti := int(n % int64(o.Topics))
				data := strconv.FormatInt(time.Now().UnixNano(), 10) + " " + pad
				if err := publish(ctx, pubClient, o, o.topic(ti), data); err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				published.Add(1)
				expected.Add(perTopic[ti])
			}
		})
	}
	pwg.Wait()
	res.PublishElapsed = time.Since(start)
	res.Published, res.Failed, res.Expected = published.Load(), failed.Load(), expected.Load()
	o.progressf("bench: %d updates published (%d failed); waiting for deliveries", res.Published, res.Failed)

	// Wait until every expected delivery arrived or nothing moves for Drain.
	last, lastChange := delivered.Load(), time.Now()
	for delivered.Load() < res.Expected && time.Since(lastChange) < o.Drain && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
		if d := delivered.Load(); d != last {
			last, lastChange = d, time.Now()
		}
	}
	res.Delivered = delivered.Load()
	stopLive()
	o.progressf("bench: deliveries done (%d of %d)", res.Delivered, res.Expected)
	res.DeliveryElapsed = lat.lastAt().Sub(start)
	if res.DeliveryElapsed <= 0 {
		res.DeliveryElapsed = time.Since(start)
	}
	res.P50, res.P99, res.Max = lat.percentiles()
	o.hold(ctx)
	stopSubs()
	return res, nil
}

// hold keeps the subscriptions open for o.Hold.
func (o *Options) hold(ctx context.Context) {
	if o.Hold <= 0 {
		return
	}
	o.progressf("bench: holding %d idle subscriptions for %v", o.Subscribers, o.Hold)
	select {
	case <-time.After(o.Hold):
	case <-ctx.Done():
	}
}

// churn connects and disconnects o.Churn subscriptions per second for
// o.Duration, with at most churnInFlight at once.
func churn(ctx context.Context, c *http.Client, o Options) (ok, failed uint64) {
	const churnInFlight = 256
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	t := time.NewTicker(max(time.Second/time.Duration(o.Churn), time.Microsecond))
	defer t.Stop()
	sem := make(chan struct{}, churnInFlight)
	var okN, failN atomic.Uint64
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return okN.Load(), failN.Load()
		case <-t.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			failN.Add(1)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			// Not cut by the end of the run: a cycle that started finishes.
			cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer ccancel()
			if err := connectOnce(cctx, c, o, o.query(i%o.Topics)); err != nil {
				failN.Add(1)
			} else {
				okN.Add(1)
			}
		})
	}
}

// connectOnce opens a subscription, waits for its first bytes and closes it.
func connectOnce(ctx context.Context, c *http.Client, o Options, query string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.HubURL+"?"+query, nil)
	if err != nil {
		return err
	}
	if o.SubscriberToken != "" {
		req.Header.Set("Authorization", "Bearer "+o.SubscriberToken)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("hub answered %s", resp.Status)
	}
	_, err = resp.Body.Read(make([]byte, 64))
	return err
}

func subscribe(ctx context.Context, c *http.Client, o Options, query string, connected chan<- error, sem chan struct{}, delivered *atomic.Uint64, lat *latencies) {
	released := false
	release := func(err error) {
		if !released {
			released = true
			<-sem
			connected <- err
		}
	}
	defer release(errors.New("subscription ended before it was established"))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.HubURL+"?"+query, nil)
	if err != nil {
		release(err)
		return
	}
	req.Header.Set("Accept", "text/event-stream")
	if o.SubscriberToken != "" {
		req.Header.Set("Authorization", "Bearer "+o.SubscriberToken)
	}
	resp, err := c.Do(req)
	if err != nil {
		release(err)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		release(fmt.Errorf("hub answered %s", resp.Status))
		return
	}
	release(nil)
	r := sse.NewReader(bufio.NewReaderSize(resp.Body, 4096), sse.ReaderOptions{})
	for {
		ev, err := r.Next()
		if err != nil {
			return
		}
		now := time.Now()
		delivered.Add(1)
		if ts, _, ok := strings.Cut(ev.Data, " "); ok {
			if n, err := strconv.ParseInt(ts, 10, 64); err == nil {
				lat.add(now, now.Sub(time.Unix(0, n)))
			}
		}
	}
}

func publish(ctx context.Context, c *http.Client, o Options, t, data string) error {
	body := "topic=" + url.QueryEscape(t) + "&data=" + url.QueryEscape(data)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.HubURL, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+o.PublisherToken)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("hub answered %s", resp.Status)
	}
	return nil
}

// latencies keeps a bounded sample of delivery latencies.
type latencies struct {
	mu     sync.Mutex
	sample []time.Duration
	seen   uint64
	last   time.Time
}

const maxSample = 1 << 20

func newLatencies() *latencies { return &latencies{} }

func (l *latencies) add(at time.Time, d time.Duration) {
	l.mu.Lock()
	l.seen++
	if len(l.sample) < maxSample {
		l.sample = append(l.sample, d)
	} else {
		// Once full, overwrite in a scattered order (cheap and deterministic).
		l.sample[(l.seen*2654435761)%maxSample] = d
	}
	if at.After(l.last) {
		l.last = at
	}
	l.mu.Unlock()
}

func (l *latencies) lastAt() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

func (l *latencies) percentiles() (p50, p99, maxd time.Duration) {
	l.mu.Lock()
	s := slices.Clone(l.sample)
	l.mu.Unlock()
	if len(s) == 0 {
		return 0, 0, 0
	}
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*99/100], s[len(s)-1]
}
