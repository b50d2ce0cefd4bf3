package hub

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mercurectl/mercurectl/internal/token"
)

// generation is the protocol generation a request speaks, which decides the
// shape of the reply (docs/protocol.md#generations).
type generation uint8

const (
	// genUnknown: a request with neither a token nor generation-specific
	// parameters; errors take the draft-08 format.
	genUnknown generation = iota
	gen07
	gen08
)

// httpError is an error with the status and client-safe message to send.
// challenge, when set, is the RFC 6750 error code for WWW-Authenticate
// ("" with status 401 gives a bare challenge on draft-08 replies).
type httpError struct {
	status    int
	msg       string
	challenge string
}

func (e *httpError) Error() string { return e.msg }

func errBadRequest(format string, a ...any) *httpError {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, a...)}
}

// Refusals. Each says what was missing or wrong, so that the client's
// developer and the operator (who reads the same words in the log) can fix
// it without guessing; none quotes a token or a key.
var (
	errNoToken = &httpError{status: http.StatusUnauthorized,
		msg: "authorization required: no token (send it in an Authorization: Bearer header)"}
	errNoTokenAnonymousOff = &httpError{status: http.StatusUnauthorized,
		msg: "authorization required: no token, and this hub does not accept anonymous subscribers"}
	errNoPublisherKey = &httpError{status: http.StatusUnauthorized,
		msg: "invalid token: this hub has no publisher key, so nobody can publish", challenge: "invalid_token"}
	errNoSubscriberKey = &httpError{status: http.StatusUnauthorized,
		msg: "invalid token: this hub has no subscriber key, so it accepts anonymous subscribers only", challenge: "invalid_token"}
	errShuttingDown = &httpError{status: http.StatusServiceUnavailable, msg: "the hub is shutting down"}
)

// errMalformedAuth refuses an Authorization header that is not one
// "Bearer <token>".
func errMalformedAuth(why string) *httpError {
	return &httpError{status: http.StatusBadRequest, msg: "malformed Authorization header: " + why, challenge: "invalid_request"}
}

// errCSRF refuses a cookie-authorised publish from an origin that is not
// allowed (docs/protocol.md#csrf).
func errCSRF(why string) *httpError {
	return &httpError{status: http.StatusBadRequest, msg: "cookie authorization refused: " + why, challenge: "invalid_request"}
}

func errInvalidToken(err error) *httpError {
	return &httpError{status: http.StatusUnauthorized, msg: "invalid token: " + safeReason(err), challenge: "invalid_token"}
}

func errForbidden(msg string) *httpError {
	return &httpError{status: http.StatusForbidden, msg: msg, challenge: "insufficient_scope"}
}

// safeReason keeps the message of a token verification error (written to
// be client-safe) and strips the sentinel prefix.
func safeReason(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "invalid token: ")
	return s
}

// tokenError is the refusal of a token that v did not accept. A signature
// that does not verify names the key it was checked with: the publisher
// key, the subscriber key, or the key when both are the same.
func (h *Hub) tokenError(v *token.Verifier, err error) *httpError {
	if errors.Is(err, token.ErrSignature) {
		key := "the key"
		switch {
		case h.cfg.PublisherVerifier == h.cfg.SubscriberVerifier:
		case v == h.cfg.PublisherVerifier:
			key = "the publisher key"
		case v == h.cfg.SubscriberVerifier:
			key = "the subscriber key"
		}
		return errInvalidToken(errors.New("signature does not verify with " + key))
	}
	return errInvalidToken(err)
}

// maxDescription caps the error_description of a challenge.
const maxDescription = 300

// description turns a reason into an RFC 6750 error_description, whose
// characters are limited to printable ASCII without '"' and '\' (section
// 3): a double quote becomes a single one and the others '?', so that a
// topic or claim quoted in the reason can never break the header.
func description(msg string) string {
	var b strings.Builder
	for _, r := range msg {
		if b.Len() >= maxDescription {
			b.WriteString("...")
			break
		}
		switch {
		case r == '"':
			b.WriteByte('\'')
		case r == '\\' || r < 0x20 || r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// writeError sends err as a plain-text reply in the shape of generation g.
// Draft-07 and the reference 0.x hub send plain statuses without WWW-Authenticate; CSRF and
// malformed-auth failures are 401 there (docs/protocol.md#csrf and
// #error-replies).
func (h *Hub) writeError(w http.ResponseWriter, r *http.Request, g generation, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		h.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		he = &httpError{status: http.StatusInternalServerError, msg: "internal error"}
	}
	status := he.status
	if g == gen07 {
		if he.challenge == "invalid_request" {
			status = http.StatusUnauthorized
		}
	} else if status == http.StatusUnauthorized || he.challenge != "" {
		var params []string
		if he.challenge != "" {
			params = append(params, `error="`+he.challenge+`"`, `error_description="`+description(he.msg)+`"`)
		}
		// A hub without keys serves no metadata: never point at it.
		if h.servesMetadata() {
			params = append(params, `resource_metadata="`+h.metadataURL(r)+`"`)
		}
		ch := "Bearer"
		if len(params) > 0 {
			ch += " " + strings.Join(params, ", ")
		}
		w.Header().Set("WWW-Authenticate", ch)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if rec := recordOf(w); rec != nil {
		if g != genUnknown {
			rec.gen = g
		}
		rec.reason = he.msg
	}
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, he.msg)
}
