package hub

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/mercurectl/mercurectl/internal/token"
)

// Token presentation (docs/protocol.md#token-presentation).
const (
	cookie07    = "mercureAuthorization"
	cookie08    = "__Secure-mercure_access_token"
	queryAuth07 = "authorization"
	// minHeaderLen is the shortest Authorization header that can hold
	// "Bearer " and a JWS (the reference 1.0 hub answers 400 below it).
	minHeaderLen = 7 + 41
)

// presented is a token as the request presented it.
type presented struct {
	raw    string
	cookie bool // taken from a cookie: CSRF checks apply to unsafe methods
}

// extractToken finds the request's token. The Authorization header wins and
// everything else is then ignored; draft-07 requests may also use the
// `authorization` query parameter (which beats the cookie); the cookie of
// the request's generation comes last (either one when g is unknown).
func extractToken(r *http.Request, g generation) (presented, error) {
	if hs := r.Header.Values("Authorization"); len(hs) > 0 {
		if len(hs) > 1 {
			return presented{}, errMalformedAuth("several Authorization headers")
		}
		scheme, raw, ok := strings.Cut(hs[0], " ")
		switch {
		case !ok || !strings.EqualFold(scheme, "Bearer"):
			return presented{}, errMalformedAuth(`want "Bearer <token>"`)
		case len(hs[0]) < minHeaderLen:
			return presented{}, errMalformedAuth("the token is too short to be a JWT")
		}
		return presented{raw: strings.TrimSpace(raw)}, nil
	}
	if g != gen08 {
		if raw := r.URL.Query().Get(queryAuth07); raw != "" {
			return presented{raw: raw}, nil
		}
	}
	names := []string{cookie08, cookie07}
	switch g {
	case gen07:
		names = names[1:]
	case gen08:
		names = names[:1]
	}
	for _, n := range names {
		if c, err := r.Cookie(n); err == nil && c.Value != "" {
			return presented{raw: c.Value, cookie: true}, nil
		}
	}
	return presented{}, nil
}

// verify checks a presented token with v for this request's audience.
func (h *Hub) verify(r *http.Request, v *token.Verifier, p presented) (*token.Claims, error) {
	if v == nil {
		return nil, errInvalidToken(errNoKey)
	}
	// The audience comes from the configuration only: derived from the
	// request's Host, it would be whatever the client says, and a token
	// minted for another hub sharing the key would pass.
	c, err := v.Verify(p.raw, h.cfg.ResourceIdentifier)
	if err != nil {
		return nil, h.tokenError(v, err)
	}
	if c.Format == token.FormatAccessToken && h.cfg.ResourceIdentifier == "" {
		return nil, errInvalidToken(errNoResourceIdentifier)
	}
	if h.cfg.Draft08Only && c.Format != token.FormatAccessToken {
		return nil, errInvalidToken(errors.New("this hub accepts only draft-08 access tokens (typ at+jwt)"))
	}
	return c, nil
}

// tokenGen is the generation whose token sources a request may use: with
// Draft08Only, never the draft-07 query parameter or cookie.
func (h *Hub) tokenGen(g generation) generation {
	if h.cfg.Draft08Only {
		return gen08
	}
	return g
}

type noKeyError struct{}

func (noKeyError) Error() string { return "this hub has no key for this kind of token" }

var errNoKey = noKeyError{}

// errNoResourceIdentifier refuses access tokens on a hub that cannot check
// their audience.
var errNoResourceIdentifier = errors.New("this hub has no resource identifier to check the aud of access tokens against")

// genOf is the reply generation of a verified token
// (docs/protocol.md#generations).
func genOf(c *token.Claims) generation {
	if c != nil && c.Format == token.FormatAccessToken {
		return gen08
	}
	return gen07
}

// requestScheme is the scheme the client used: https over TLS, else what
// a trusted proxy says in X-Forwarded-Proto, else http.
func (h *Hub) requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if p := h.forwardedProto(r); p != "" {
		return p
	}
	return "http"
}

// requestOrigin returns scheme://host of the request as the hub sees it.
func (h *Hub) requestOrigin(r *http.Request) string {
	return h.requestScheme(r) + "://" + r.Host
}

// resourceID is the metadata's `resource`: the configured resource
// identifier, else (on a hub that then refuses every access token) derived
// from the request.
func (h *Hub) resourceID(r *http.Request) string {
	if h.cfg.ResourceIdentifier != "" {
		return h.cfg.ResourceIdentifier
	}
	return h.requestOrigin(r) + Path
}

// hubURL is the absolute hub URL for this request, the base against which
// draft-08 relative topics and patterns resolve (docs/protocol.md#matching-08).
func (h *Hub) hubURL(r *http.Request) *url.URL {
	if h.cfg.ResourceIdentifier != "" {
		if u, err := url.Parse(h.cfg.ResourceIdentifier); err == nil && u.IsAbs() {
			return u
		}
	}
	return &url.URL{Scheme: h.requestScheme(r), Host: r.Host, Path: Path}
}

// metadataURL is the RFC 9728 metadata address for this request's hub.
func (h *Hub) metadataURL(r *http.Request) string {
	u := h.hubURL(r)
	return u.Scheme + "://" + u.Host + path.Join("/.well-known/oauth-protected-resource", u.Path)
}

// checkCSRF applies the publish-origin check to a request authorised by
// cookie (docs/protocol.md#csrf): Origin, else Referer, must be allowed, and a
// request with neither is refused.
func (h *Hub) checkCSRF(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		ref := r.Header.Get("Referer")
		if ref == "" {
			return errCSRF("the request has neither an Origin nor a Referer header")
		}
		u, err := url.Parse(ref)
		if err != nil || u.Host == "" {
			return errCSRF("the Referer header is not an absolute URL")
		}
		o = u.Scheme + "://" + u.Host
	}
	for _, allowed := range h.cfg.PublishOrigins {
		if originMatches(allowed, o) {
			return nil
		}
	}
	if len(h.cfg.PublishOrigins) == 0 {
		return errCSRF("origin " + o + " not in --publish-origin (none is set, so publishing with the cookie is off)")
	}
	return errCSRF("origin " + o + " not in --publish-origin")
}

// originMatches compares an origin against an allowed entry, which may be
// "*" or contain "*" wildcards such as "https://*.example.com".
func originMatches(pattern, origin string) bool {
	if pattern == "*" || pattern == origin {
		return true
	}
	if !strings.Contains(pattern, "*") {
		return false
	}
	return wildcardMatch(pattern, origin)
}

// wildcardMatch matches s against p where '*' matches any run of characters
// other than '/' (linear time, iterative backtracking on the last star).
func wildcardMatch(p, s string) bool {
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0 && s[mark] != '/':
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
