package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mercurectl/mercurectl/internal/client"
	"github.com/mercurectl/mercurectl/internal/match"
)

// maxReplyBody bounds the body read from a non-streaming reply.
const maxReplyBody = 64 << 10

// T is the context of one case in one generation.
type T struct {
	ctx     context.Context
	r       *runner
	gen     client.Protocol
	base    string // topics of this case live under it
	timeout time.Duration

	mu      sync.Mutex
	streams []*stream
}

func (r *runner) newT(ctx context.Context, in instance, timeout time.Duration) *T {
	g := "beyond"
	switch {
	case in.c.beyond:
	case in.gen == client.Protocol07:
		g = "07"
	case in.gen == client.Protocol08:
		g = "08"
	}
	return &T{
		ctx: ctx, r: r, gen: in.gen, timeout: timeout,
		base: r.prefix + g + "/" + in.c.group + "/" + in.c.name + "/",
	}
}

// cleanup closes every stream the case opened.
func (t *T) cleanup() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.streams {
		s.close()
	}
	t.streams = nil
}

// is08 reports whether the case speaks draft-08.
func (t *T) is08() bool { return t.gen == client.Protocol08 }

// topic returns a topic of this case.
func (t *T) topic(name string) string { return t.base + name }

// hubURL returns a copy of the hub URL.
func (t *T) hubURL() *url.URL {
	u, _ := url.Parse(t.r.c.HubURL()) // valid: client.New parsed it
	return u
}

// waitErr is the error of a wait cut by the case's context.
func (t *T) waitErr(what string) error {
	if errors.Is(t.ctx.Err(), context.DeadlineExceeded) {
		return &waitError{what: what, timeout: t.timeout}
	}
	return fmt.Errorf("waiting for %s: %w", what, t.ctx.Err())
}

// describe turns a case's error into its one-line detail.
func (t *T) describe(err error) string {
	var we *waitError
	if errors.As(err, &we) && we.timeout == 0 && we.idle == 0 {
		we.timeout = t.timeout
	}
	if errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &we) {
		return oneLine(fmt.Sprintf("timed out after %v: %v", t.timeout, err))
	}
	return oneLine(err.Error())
}

// reply is a hub's answer that is not a stream.
type reply struct {
	status int
	header http.Header
	body   string
}

func (rp *reply) String() string {
	s := fmt.Sprintf("%d %s", rp.status, http.StatusText(rp.status))
	if b := oneLine(strings.ToValidUTF8(rp.body, "\uFFFD")); b != "" {
		if len(b) > 200 {
			b = b[:200] + "…"
		}
		s += " [" + b + "]"
	}
	return s
}

// challenge returns the WWW-Authenticate header.
func (rp *reply) challenge() string { return rp.header.Get("WWW-Authenticate") }

// do sends req and reads the reply.
func (t *T) do(req *http.Request) (*reply, error) {
	return doWith(t.r.httpc, req)
}

func doWith(c *http.Client, req *http.Request) (*reply, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the reply: %w", req.Method, req.URL.Redacted(), err)
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: string(body)}, nil
}

// request builds a request to the hub URL u with an optional bearer token.
func (t *T) request(method, u string, body io.Reader, tok string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(t.ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "mercurectl-conformance")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, nil
}

// pub is an update to publish. Nil pointers leave the field out.
type pub struct {
	topics  []string
	data    *string
	private *string
	id      string
	typ     string
	retry   string
	extra   url.Values
	token   *string // nil: minted for the topics (or the ready token); "": none
	raw     string  // when set, the exact form body
	origin  string
}

func str(s string) *string { return &s }

// publishReply posts an update and returns the reply, whatever it is.
func (t *T) publishReply(p pub) (*reply, error) {
	return t.publishWith(t.r.httpc, p)
}

func (t *T) publishWith(c *http.Client, p pub) (*reply, error) {
	body := p.raw
	if body == "" {
		f := url.Values{}
		for _, tp := range p.topics {
			f.Add("topic", tp)
		}
		if p.data != nil {
			f.Set("data", *p.data)
		}
		if p.private != nil {
			f.Set("private", *p.private)
		}
		if p.id != "" {
			f.Set("id", p.id)
		}
		if p.typ != "" {
			f.Set("type", p.typ)
		}
		if p.retry != "" {
			f.Set("retry", p.retry)
		}
		for k, vs := range p.extra {
			for _, v := range vs {
				f.Add(k, v)
			}
		}
		body = f.Encode()
	}
	tok := ""
	if p.token != nil {
		tok = *p.token
	} else {
		var err error
		if tok, err = t.pubToken(p.topics...); err != nil {
			return nil, err
		}
	}
	req, err := t.request(http.MethodPost, t.r.c.HubURL(), strings.NewReader(body), tok)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p.origin != "" {
		req.Header.Set("Origin", p.origin)
	}
	return doWith(c, req)
}

// publish posts an update that must be accepted and returns its id.
func (t *T) publish(p pub) (string, error) {
	rp, err := t.publishReply(p)
	if err != nil {
		return "", err
	}
	if rp.status < 200 || rp.status > 299 {
		return "", fmt.Errorf("publishing to %s: the hub answered %s", strings.Join(p.topics, ", "), rp)
	}
	id := strings.TrimSpace(rp.body)
	if id == "" {
		return "", fmt.Errorf("publishing to %s: the hub answered %d with an empty body, want the update's id", strings.Join(p.topics, ", "), rp.status)
	}
	return id, nil
}

// publishData publishes data on topic and returns the id.
func (t *T) publishData(topic, data string) (string, error) {
	return t.publish(pub{topics: []string{topic}, data: str(data)})
}

// publishSeq publishes n updates on topic one after the other (so their
// order is known) and returns their ids in that order.
func (t *T) publishSeq(topic string, n int) ([]string, error) {
	ids := make([]string, 0, n)
	for i := range n {
		id, err := t.publishData(topic, fmt.Sprintf("update %d", i+1))
		if err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// publishBulk publishes n updates on topic concurrently, with one token and
// reused connections, and returns their ids (in no particular order).
func (t *T) publishBulk(topic string, n int) ([]string, error) {
	tok, err := t.pubToken(topic)
	if err != nil {
		return nil, err
	}
	ids := make([]string, n)
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	tt := &T{ctx: ctx, r: t.r, gen: t.gen, base: t.base, timeout: t.timeout}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		next     = make(chan int)
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	for range min(publishConcurrency, n) {
		wg.Go(func() {
			for i := range next {
				rp, err := tt.publishWith(t.r.bulk, pub{topics: []string{topic}, data: str(fmt.Sprintf("bulk %d", i+1)), token: &tok})
				switch {
				case err != nil && t.ctx.Err() != nil:
					fail(t.waitErr(fmt.Sprintf("%d publishes", n)))
				case err != nil:
					fail(err)
				case rp.status < 200 || rp.status > 299:
					fail(fmt.Errorf("publish %d of %d: the hub answered %s", i+1, n, rp))
				default:
					ids[i] = strings.TrimSpace(rp.body)
				}
			}
		})
	}
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := t.ctx.Err(); err != nil {
		return nil, t.waitErr(fmt.Sprintf("%d publishes", n))
	}
	return ids, nil
}

// pubToken returns a token that may publish on the topics.
func (t *T) pubToken(topics ...string) (string, error) {
	if t.r.signingKey == nil {
		return t.r.o.PublisherToken, nil
	}
	grants := make([]sel, len(topics))
	for i, tp := range topics {
		grants[i] = exact(tp)
	}
	return t.r.mint(t.gen, grants, nil, mintOpts{})
}

// subToken returns a token that may subscribe to the selectors.
func (t *T) subToken(sels ...sel) (string, error) {
	if t.r.signingKey == nil {
		return t.r.o.SubscriberToken, nil
	}
	return t.r.mint(t.gen, nil, sels, mintOpts{})
}

// sub describes a subscription request.
type sub struct {
	sels         []sel
	token        *string // nil: minted for the selectors (or the ready token); "": none
	queryCursor  *string
	headerCursor *string
	cookie       string // the cookie name that carries the token, instead of the header
	queryToken   bool   // draft-07: the token goes in the `authorization` query parameter
	method       string // "" is GET
	header       http.Header
	query        url.Values // added to the query
	rawQuery     string     // when set, the exact query
	body         string     // when set, a form body (for QUERY)
}

// subscribeURL returns the subscription URL of s.
func (t *T) subscribeURL(s sub, tok string) string {
	u := t.hubURL()
	if s.rawQuery != "" {
		u.RawQuery = s.rawQuery
		return u.String()
	}
	q := u.Query()
	for _, x := range s.sels {
		switch {
		case !t.is08():
			q.Add("topic", x.v)
		case x.typ == match.TypeURLPattern:
			q.Add("match_urlpattern", x.v)
		default:
			q.Add("match", x.v)
		}
	}
	if s.queryCursor != nil {
		q.Set(t.cursorParam(), *s.queryCursor)
	}
	if s.queryToken {
		q.Set("authorization", tok)
	}
	for k, vs := range s.query {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// open sends a subscription request. It returns a stream when the hub
// accepted it (200 text/event-stream, headers received), else the reply.
func (t *T) open(s sub) (*stream, *reply, error) {
	tok := ""
	if s.token != nil {
		tok = *s.token
	} else {
		var err error
		if tok, err = t.subToken(s.sels...); err != nil {
			return nil, nil, err
		}
	}
	ctx, cancel := context.WithCancel(t.ctx)
	method := s.method
	if method == "" {
		method = http.MethodGet
	}
	headerTok := tok
	if s.cookie != "" || s.queryToken {
		headerTok = ""
	}
	var body io.Reader
	if s.body != "" {
		body = strings.NewReader(s.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.subscribeURL(s, tok), body)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if s.body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if headerTok != "" {
		req.Header.Set("Authorization", "Bearer "+headerTok)
	}
	if s.cookie != "" && tok != "" {
		req.AddCookie(&http.Cookie{Name: s.cookie, Value: tok})
	}
	if s.headerCursor != nil {
		req.Header.Set("Last-Event-ID", *s.headerCursor)
	}
	for k, vs := range s.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := t.r.httpc.Do(req)
	if err != nil {
		cancel()
		if t.ctx.Err() != nil {
			return nil, nil, t.waitErr("the subscription's response headers")
		}
		return nil, nil, fmt.Errorf("subscribe: %w", err)
	}
	if !isEventStream(resp) || method == http.MethodHead {
		defer cancel()
		defer func() { _ = resp.Body.Close() }()
		var body []byte
		if method != http.MethodHead && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			body, _ = io.ReadAll(io.LimitReader(resp.Body, maxReplyBody))
		}
		return nil, &reply{status: resp.StatusCode, header: resp.Header, body: string(body)}, nil
	}
	st := newStream(t, resp, cancel)
	t.mu.Lock()
	t.streams = append(t.streams, st)
	t.mu.Unlock()
	return st, nil, nil
}

// subscribe opens a subscription that must be accepted.
func (t *T) subscribe(s sub) (*stream, error) {
	st, rp, err := t.open(s)
	if err != nil {
		return nil, err
	}
	if rp != nil {
		return nil, fmt.Errorf("subscribing to %s: the hub answered %s, want 200 text/event-stream", describeSels(s.sels), rp)
	}
	return st, nil
}

func describeSels(sels []sel) string {
	vs := make([]string, len(sels))
	for i, s := range sels {
		vs[i] = s.v
	}
	return strings.Join(vs, ", ")
}

// cursorParam is the query parameter of the first connection's cursor.
func (t *T) cursorParam() string {
	if t.is08() {
		return "last_event_id"
	}
	return "lastEventID"
}

// cursorHeader is the response header that carries the hub's cursor.
func (t *T) cursorHeader() string {
	if t.is08() {
		return "Mercure-Last-Event-ID"
	}
	return "Last-Event-ID"
}

// responseCursor returns the hub's response cursor header.
func (t *T) responseCursor(s *stream) (string, error) {
	vs := s.header.Values(t.cursorHeader())
	if len(vs) == 0 {
		return "", fmt.Errorf("no %s response header, want one whenever the request carries a cursor", t.cursorHeader())
	}
	return vs[0], nil
}
