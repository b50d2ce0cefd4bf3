package hub

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
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

var (
	errNoToken       = &httpError{status: http.StatusUnauthorized, msg: "authorization required"}
	errMalformedAuth = &httpError{status: http.StatusBadRequest, msg: "malformed authorization", challenge: "invalid_request"}
	errCSRF          = &httpError{status: http.StatusBadRequest, msg: "cookie authorization needs an allowed Origin or Referer", challenge: "invalid_request"}
	errShuttingDown  = &httpError{status: http.StatusServiceUnavailable, msg: "the hub is shutting down"}
)

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
			params = append(params, `error="`+he.challenge+`"`)
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
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, he.msg)
}
