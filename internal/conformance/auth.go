package conformance

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/mercurectl/mercurectl/internal/client"
)

// expiringTTL is the lifetime of the token of the expiry case.
const expiringTTL = 2 * time.Second

// expiryGrace is how late after exp a hub may still close a stream: the
// granularity of exp (whole seconds) and the clocks of two machines.
const expiryGrace = 1500 * time.Millisecond

// Cookie names of draft-07 (draft-08 hubs advertise theirs in metadata).
const cookie07 = "mercureAuthorization"

func authCases() []*caseDef {
	return []*caseDef{
		{
			group: "auth", name: "publish-without-token-is-401",
			spec07: d07Authorization, spec08: d08Errors,
			run: func(t *T) error {
				rp, err := t.publishReply(pub{topics: []string{t.topic("t")}, data: str("x"), token: str("")})
				if err != nil {
					return err
				}
				if err := expectStatus("publishing without a token", rp, http.StatusUnauthorized); err != nil {
					return err
				}
				return t.checkChallenge(rp, "")
			},
		},
		{
			group: "auth", name: "publish-invalid-token-is-401",
			spec07: d07Authorization, spec08: d08Errors,
			run: func(t *T) error {
				tok, err := t.pubToken(t.topic("t"))
				if err != nil {
					return err
				}
				rp, err := t.publishReply(pub{topics: []string{t.topic("t")}, data: str("x"), token: str(tamper(tok))})
				if err != nil {
					return err
				}
				if err := expectStatus("publishing with a token whose signature is wrong", rp, http.StatusUnauthorized); err != nil {
					return err
				}
				return t.checkChallenge(rp, "invalid_token")
			},
		},
		{
			group: "auth", name: "publish-not-granted-is-403",
			spec07: d07Authorization, spec08: d08Errors,
			needs: needKey,
			run: func(t *T) error {
				topic := t.topic("t")
				tok, err := t.r.mint(t.gen, []sel{exact(t.topic("granted"))}, nil, mintOpts{})
				if err != nil {
					return err
				}
				return t.checkForbiddenPublish(pub{topics: []string{topic}, data: str("x"), token: &tok}, topic, "a valid token that does not grant the topic")
			},
		},
		{
			group: "auth", name: "publish-alternate-not-granted-is-403",
			spec07: d07Authorization, spec08: d08Errors,
			needs: needKey,
			run: func(t *T) error {
				topic := t.topic("t")
				tok, err := t.r.mint(t.gen, []sel{exact(topic)}, nil, mintOpts{})
				if err != nil {
					return err
				}
				return t.checkForbiddenPublish(pub{topics: []string{topic, t.topic("alternate")}, data: str("x"), token: &tok}, topic, "a token that grants the canonical topic but not the alternate")
			},
		},
		{
			group: "auth", name: "subscribe-without-token",
			spec07: d07Authorization, spec08: d08Errors,
			run: func(t *T) error {
				st, rp, err := t.open(sub{sels: []sel{exact(t.topic("t"))}, token: str("")})
				if err != nil {
					return err
				}
				if st != nil {
					st.close()
					return skipf("the hub accepts anonymous subscribers (allowed)")
				}
				if err := expectStatus("subscribing without a token to a hub that refuses anonymous subscribers", rp, http.StatusUnauthorized); err != nil {
					return err
				}
				return t.checkChallenge(rp, "")
			},
		},
		{
			group: "auth", name: "subscribe-invalid-token-is-401",
			spec07: d07Authorization, spec08: d08Errors,
			run: func(t *T) error {
				topic := t.topic("t")
				tok, err := t.subToken(exact(topic))
				if err != nil {
					return err
				}
				st, rp, err := t.open(sub{sels: []sel{exact(topic)}, token: str(tamper(tok))})
				if err != nil {
					return err
				}
				if st != nil {
					st.close()
					return errors.New("a subscription with a token whose signature is wrong was accepted, want 401 (a bad token is never taken as anonymous)")
				}
				if err := expectStatus("subscribing with a token whose signature is wrong", rp, http.StatusUnauthorized); err != nil {
					return err
				}
				return t.checkChallenge(rp, "invalid_token")
			},
		},
		{
			group: "auth", name: "cookie",
			spec07: d07Authorization, spec08: d08Authorization,
			run: func(t *T) error {
				name, err := t.cookieName()
				if err != nil {
					return err
				}
				return t.checkPrivateVia(sub{cookie: name}, "the token in the "+name+" cookie")
			},
		},
		{
			group: "auth", name: "authorization-query-parameter",
			spec07: d07Authorization,
			run: func(t *T) error {
				return t.checkPrivateVia(sub{queryToken: true}, "the token in the authorization query parameter")
			},
		},
		{
			group: "auth", name: "header-beats-cookie-and-query",
			spec07: d07Authorization, spec08: d08Authorization,
			run: checkHeaderPrecedence,
		},
		{
			group: "auth", name: "expiry-closes-stream",
			spec07: d07Authorization, spec08: d08Authorization,
			needs: needKey,
			run:   checkExpiry,
		},
		{
			group: "auth", name: "expired-token-is-401",
			spec07: d07Authorization, spec08: d08Validation,
			needs: needKey,
			run: func(t *T) error {
				return t.checkCrafted("an expired token", func(h, c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() })
			},
		},
		{
			group: "auth", name: "alg-none-is-401",
			spec07: d07Authorization + ", RFC 8725 §3.1", spec08: d08Validation,
			needs: needKey,
			run: func(t *T) error {
				return t.checkCrafted("an unsigned token (alg none)", func(h, _ map[string]any) { h["alg"] = "none" })
			},
		},
		{
			group: "auth", name: "typ-at-jwt-required",
			spec08: d08Validation + ", RFC 9068 §4",
			needs:  needKey,
			run: func(t *T) error {
				// Subscribing only: a hub that serves both generations takes a
				// publish with a typ JWT token as a draft-07 one, which a token
				// without a mercure claim may not make (403 is right there).
				return t.checkCrafted("an access token with typ JWT", func(h, _ map[string]any) { h["typ"] = "JWT" }, client.ActionSubscribe)
			},
		},
		{
			group: "auth", name: "exp-required",
			spec08: d08Validation,
			needs:  needKey,
			run: func(t *T) error {
				return t.checkCrafted("an access token without exp", func(_, c map[string]any) { delete(c, "exp") })
			},
		},
		{
			group: "auth", name: "nbf-enforced",
			spec08: d08Validation,
			needs:  needKey,
			run: func(t *T) error {
				return t.checkCrafted("an access token not valid before an hour from now", func(_, c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() })
			},
		},
		{
			group: "auth", name: "audience-checked",
			spec08: d08Validation,
			needs:  needKey,
			run: func(t *T) error {
				return t.checkCrafted("an access token for another audience", func(_, c map[string]any) { c["aud"] = "https://another-hub.conformance.invalid/.well-known/mercure" })
			},
		},
		{
			group: "auth", name: "untrusted-issuer-is-401",
			spec08: d08Validation,
			needs:  needKey,
			run: func(t *T) error {
				if t.r.md == nil || len(t.r.md.AuthorizationServers) == 0 {
					return skipf("the hub advertises no authorization server, so it may accept any issuer")
				}
				return t.checkCrafted("an access token from an issuer the hub does not advertise", func(_, c map[string]any) { c["iss"] = "https://untrusted.conformance.invalid" })
			},
		},
		{
			group: "auth", name: "malformed-details-is-401",
			spec08: d08Details,
			needs:  needKey,
			run: func(t *T) error {
				return t.checkCrafted("an access token whose topics are bare strings", func(_, c map[string]any) {
					d := c["authorization_details"].([]any)[0].(map[string]any)
					var bare []string
					for _, x := range d["topics"].([]map[string]string) {
						bare = append(bare, x["match"])
					}
					d["topics"] = bare
				})
			},
		},
		{
			group: "auth", name: "two-authorization-headers-is-400",
			spec08: d08Errors + ", RFC 6750 §2",
			run: func(t *T) error {
				topic := t.topic("t")
				tok, err := t.subToken(exact(topic))
				if err != nil {
					return err
				}
				st, rp, err := t.open(sub{sels: []sel{exact(topic)}, token: str(""), header: http.Header{"Authorization": {"Bearer " + tok, "Bearer " + tok}}})
				if err != nil {
					return err
				}
				if st != nil {
					st.close()
					rp = &reply{status: http.StatusOK, header: st.header}
				}
				if err := expectStatus("subscribing with two Authorization headers", rp, http.StatusBadRequest); err != nil {
					return err
				}
				return t.checkChallenge(rp, "invalid_request")
			},
		},
		{
			group: "auth", name: "cookie-publish-needs-origin",
			spec07: d07Authorization, spec08: d08Authorization,
			run: func(t *T) error {
				name, err := t.cookieName()
				if err != nil {
					return err
				}
				topic := t.topic("t")
				tok, err := t.pubToken(topic)
				if err != nil {
					return err
				}
				req, err := t.request(http.MethodPost, t.r.c.HubURL(), strings.NewReader(url.Values{"topic": {topic}, "data": {"csrf"}}.Encode()), "")
				if err != nil {
					return err
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.AddCookie(&http.Cookie{Name: name, Value: tok})
				rp, err := t.do(req)
				if err != nil {
					return err
				}
				if rp.status >= 200 && rp.status < 300 {
					return fmt.Errorf("a publish authorized by the %s cookie, without Origin or Referer, was accepted (%s): hubs must mitigate CSRF", name, rp)
				}
				return nil
			},
		},
	}
}

// checkChallenge checks a draft-08 error's WWW-Authenticate challenge
// (RFC 6750 §3): a Bearer challenge, with error=code, or without any error
// when code is "".
func (t *T) checkChallenge(rp *reply, code string) error {
	if !t.is08() {
		return nil
	}
	ch := rp.challenge()
	if !strings.HasPrefix(strings.ToLower(ch), "bearer") {
		return fmt.Errorf("the %d reply has WWW-Authenticate %q, want a Bearer challenge", rp.status, ch)
	}
	got := ""
	if m := challengeError.FindStringSubmatch(ch); m != nil {
		got = m[1]
	}
	switch {
	case code == "" && got != "":
		return fmt.Errorf("the challenge %q has error=%q, want none (no token was presented)", ch, got)
	case code != "" && got != code:
		return fmt.Errorf("the challenge %q has error=%q, want %q", ch, got, code)
	}
	return nil
}

var challengeError = regexp.MustCompile(`(?i)\berror\s*=\s*"?([a-z_]+)"?`)

// checkForbiddenPublish checks that p is refused with 403 and reaches no
// subscriber of topic.
func (t *T) checkForbiddenPublish(p pub, topic, what string) error {
	s, err := t.subscribe(sub{sels: []sel{exact(topic)}})
	if err != nil {
		return err
	}
	rp, err := t.publishReply(p)
	if err != nil {
		return err
	}
	if err := expectStatus("publishing with "+what, rp, http.StatusForbidden); err != nil {
		return err
	}
	if err := t.checkChallenge(rp, "insufficient_scope"); err != nil {
		return err
	}
	sentinel, err := t.publishData(topic, "after the refused one")
	if err != nil {
		return err
	}
	before, _, err := s.waitFor(sentinel, "the update published after the refused one")
	if err != nil {
		return err
	}
	if len(before) > 0 {
		return fmt.Errorf("the refused update reached a subscriber (id %q)", before[0].ID)
	}
	return nil
}

// cookieName is the authorization cookie of the generation.
func (t *T) cookieName() (string, error) {
	if !t.is08() {
		return cookie07, nil
	}
	if t.r.md == nil || t.r.md.MercureCookie == "" {
		return "", skipf("the hub's metadata names no mercure_cookie")
	}
	return t.r.md.MercureCookie, nil
}

// checkPrivateVia subscribes presenting the token as s says and checks
// that a private update arrives (so the token was read).
func (t *T) checkPrivateVia(s sub, what string) error {
	topic := t.topic("t")
	s.sels = []sel{exact(topic)}
	st, rp, err := t.open(s)
	if err != nil {
		return err
	}
	if rp != nil {
		return fmt.Errorf("subscribing with %s got %s, want 200", what, rp)
	}
	id, err := t.publish(pub{topics: []string{topic}, data: str("secret"), private: str("on")})
	if err != nil {
		return err
	}
	if _, _, err := st.waitFor(id, "a private update, for a subscriber authorized by "+what); err != nil {
		return err
	}
	return nil
}

// checkHeaderPrecedence presents a valid token in the header and invalid
// ones by the other means: the header's must be used, the others ignored.
func checkHeaderPrecedence(t *T) error {
	topic := t.topic("t")
	tok, err := t.subToken(exact(topic))
	if err != nil {
		return err
	}
	bad := tamper(tok)
	s := sub{sels: []sel{exact(topic)}, token: &tok}
	name, err := t.cookieName()
	var skip *skipError
	switch {
	case errors.As(err, &skip):
	case err != nil:
		return err
	default:
		s.header = http.Header{"Cookie": {(&http.Cookie{Name: name, Value: bad}).String()}}
	}
	if !t.is08() {
		s.query = url.Values{"authorization": {bad}}
	}
	st, rp, err := t.open(s)
	if err != nil {
		return err
	}
	if rp != nil {
		return fmt.Errorf("a valid token in the Authorization header, with invalid ones elsewhere, got %s: the header must win and the others be ignored", rp)
	}
	id, err := t.publish(pub{topics: []string{topic}, data: str("secret"), private: str("on")})
	if err != nil {
		return err
	}
	_, _, err = st.waitFor(id, "a private update, for a subscriber authorized by its header")
	return err
}

// checkExpiry: the hub closes a subscription no later than its token's exp,
// and then refuses the token.
func checkExpiry(t *T) error {
	topic := t.topic("t")
	tok, err := t.r.mint(t.gen, nil, []sel{exact(topic)}, mintOpts{ttl: expiringTTL})
	if err != nil {
		return err
	}
	exp, ok := tokenExpiry(tok)
	if !ok {
		return errors.New("the minted token has no exp")
	}
	s, err := t.subscribe(sub{sels: []sel{exact(topic)}, token: &tok})
	if err != nil {
		return err
	}
	ended, err := s.waitEnd("the hub to close the stream at the token's expiry")
	if err != nil {
		return err
	}
	if late := ended.Sub(exp); late > expiryGrace {
		return fmt.Errorf("the hub closed the stream %v after the token expired, want no later than its exp", late.Round(10*time.Millisecond))
	}
	// Wait until the token is certainly expired for the hub too.
	if d := time.Until(exp.Add(time.Second)); d > 0 {
		select {
		case <-time.After(d):
		case <-t.ctx.Done():
			return t.waitErr("the token's expiry")
		}
	}
	st, rp, err := t.open(sub{sels: []sel{exact(topic)}, token: &tok})
	if err != nil {
		return err
	}
	if st != nil {
		st.close()
		return errors.New("reconnecting with the expired token was accepted, want 401")
	}
	if err := expectStatus("reconnecting with the expired token", rp, http.StatusUnauthorized); err != nil {
		return err
	}
	return t.checkChallenge(rp, "invalid_token")
}

// checkCrafted builds a valid token for the generation, lets change break
// one thing, and checks that the hub refuses it for the actions (publish
// and subscribe when none is given) with 401 invalid_token.
func (t *T) checkCrafted(what string, change func(header, claims map[string]any), actions ...string) error {
	topic := t.topic("t")
	if len(actions) == 0 {
		actions = []string{client.ActionPublish, client.ActionSubscribe}
	}
	for _, action := range actions {
		header := map[string]any{"alg": t.r.o.Alg, "typ": "JWT"}
		var claims map[string]any
		if t.is08() {
			header["typ"] = "at+jwt"
			var err error
			if claims, err = t.r.accessClaims(action, topic); err != nil {
				return err
			}
		} else {
			claims = legacyClaims(action, topic)
		}
		change(header, claims)
		tok, err := t.r.craft(header, claims)
		if err != nil {
			return err
		}
		var rp *reply
		if action == client.ActionPublish {
			if rp, err = t.publishReply(pub{topics: []string{topic}, data: str("x"), token: &tok}); err != nil {
				return err
			}
		} else {
			st, r2, err := t.open(sub{sels: []sel{exact(topic)}, token: &tok})
			if err != nil {
				return err
			}
			if st != nil {
				st.close()
				return fmt.Errorf("subscribing with %s was accepted, want 401", what)
			}
			rp = r2
		}
		if err := expectStatus(action+" with "+what, rp, http.StatusUnauthorized); err != nil {
			return err
		}
		if err := t.checkChallenge(rp, "invalid_token"); err != nil {
			return err
		}
	}
	return nil
}
