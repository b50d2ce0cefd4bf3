package conformance

import (
	"fmt"
	"net/http"
	"strings"
)

// foreignOrigin is an origin no hub should allow with credentials.
const foreignOrigin = "https://not-allowed.conformance.invalid"

func corsCases() []*caseDef {
	spec07, spec08 := d07Subscriptions+", "+fetchCORS, d08Subscription+", "+fetchCORS
	return []*caseDef{
		{
			group: "cors", name: "preflight-subscribe",
			spec07: spec07, spec08: spec08, needs: needOrigin,
			run: func(t *T) error {
				return t.checkPreflight(http.MethodGet, "authorization", "last-event-id")
			},
		},
		{
			group: "cors", name: "preflight-publish",
			spec07: d07Publication + ", " + fetchCORS, spec08: d08Publication + ", " + fetchCORS, needs: needOrigin,
			run: func(t *T) error {
				return t.checkPreflight(http.MethodPost, "authorization")
			},
		},
		{
			group: "cors", name: "subscribe-allows-origin",
			spec07: spec07, spec08: spec08, needs: needOrigin,
			run: func(t *T) error {
				s, err := t.subscribe(sub{sels: []sel{exact(t.topic("t"))}, header: http.Header{"Origin": {t.r.o.Origin}}})
				if err != nil {
					return err
				}
				return t.checkAllowOrigin("a subscription", s.header)
			},
		},
		{
			group: "cors", name: "publish-allows-origin",
			spec07: d07Publication + ", " + fetchCORS, spec08: d08Publication + ", " + fetchCORS, needs: needOrigin,
			run: func(t *T) error {
				rp, err := t.publishReply(pub{topics: []string{t.topic("t")}, data: str("x"), origin: t.r.o.Origin})
				if err != nil {
					return err
				}
				if rp.status < 200 || rp.status > 299 {
					return fmt.Errorf("a publish with Origin %s got %s", t.r.o.Origin, rp)
				}
				return t.checkAllowOrigin("a publish", rp.header)
			},
		},
		{
			group: "cors", name: "credentials-never-with-any-origin",
			spec08: spec08, needs: needOrigin,
			run: func(t *T) error {
				for _, origin := range []string{t.r.o.Origin, foreignOrigin} {
					st, rp, err := t.open(sub{sels: []sel{exact(t.topic("t"))}, header: http.Header{"Origin": {origin}}})
					if err != nil {
						return err
					}
					h := http.Header(nil)
					if st != nil {
						h = st.header
						st.close()
					} else {
						h = rp.header
					}
					acao := h.Get("Access-Control-Allow-Origin")
					if !strings.EqualFold(h.Get("Access-Control-Allow-Credentials"), "true") {
						continue
					}
					if acao == "*" {
						return fmt.Errorf("with credentials allowed, Access-Control-Allow-Origin is *, which browsers refuse and the spec forbids")
					}
					if origin == foreignOrigin && acao == foreignOrigin {
						return fmt.Errorf("with credentials allowed, the hub echoed the arbitrary origin %s", foreignOrigin)
					}
				}
				return nil
			},
		},
	}
}

// checkAllowOrigin checks that h lets the run's origin read the reply.
func (t *T) checkAllowOrigin(what string, h http.Header) error {
	acao := h.Values("Access-Control-Allow-Origin")
	if len(acao) == 0 {
		return fmt.Errorf("%s from %s has no Access-Control-Allow-Origin header (the CORS headers are missing)", what, t.r.o.Origin)
	}
	if acao[0] != "*" && acao[0] != t.r.o.Origin {
		return fmt.Errorf("%s from %s has Access-Control-Allow-Origin %q", what, t.r.o.Origin, acao[0])
	}
	return nil
}

// checkPreflight sends a CORS preflight for method with the request headers.
func (t *T) checkPreflight(method string, headers ...string) error {
	req, err := t.request(http.MethodOptions, t.r.c.HubURL(), nil, "")
	if err != nil {
		return err
	}
	req.Header.Set("Origin", t.r.o.Origin)
	req.Header.Set("Access-Control-Request-Method", method)
	req.Header.Set("Access-Control-Request-Headers", strings.Join(headers, ","))
	rp, err := t.do(req)
	if err != nil {
		return err
	}
	what := "the preflight of a " + method
	if rp.status < 200 || rp.status > 299 {
		return fmt.Errorf("%s from %s got %s, want 2xx", what, t.r.o.Origin, rp)
	}
	if err := t.checkAllowOrigin(what, rp.header); err != nil {
		return err
	}
	wildcard := rp.header.Get("Access-Control-Allow-Credentials") != "true"
	if !listAllows(rp.header.Values("Access-Control-Allow-Methods"), method, wildcard) && method != http.MethodGet && method != http.MethodPost {
		return fmt.Errorf("%s: Access-Control-Allow-Methods %q does not allow %s", what, rp.header.Get("Access-Control-Allow-Methods"), method)
	}
	for _, h := range headers {
		if !listAllows(rp.header.Values("Access-Control-Allow-Headers"), h, wildcard) {
			return fmt.Errorf("%s: Access-Control-Allow-Headers %q does not allow %s", what, rp.header.Get("Access-Control-Allow-Headers"), h)
		}
	}
	return nil
}

// listAllows reports whether a CORS list header allows item
// (case-insensitively; "*" counts when wildcard).
func listAllows(values []string, item string, wildcard bool) bool {
	for _, v := range values {
		for x := range strings.SplitSeq(v, ",") {
			x = strings.TrimSpace(x)
			if strings.EqualFold(x, item) || (wildcard && x == "*") {
				return true
			}
		}
	}
	return false
}
