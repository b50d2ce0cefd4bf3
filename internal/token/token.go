// Package token mints, inspects and verifies the JWTs that Mercure uses: the
// draft-07 "legacy" tokens carrying a `mercure` claim, and the draft-08 RFC 9068
// access tokens (`typ: at+jwt`) carrying RFC 9396 `authorization_details`.
//
// The hub and the CLI share this package, so claims have one definition.
//
//   - Verifier (NewVerifier, Verify) is what a hub uses. The header `typ`
//     picks the rules (docs/protocol.md#authorization); the algorithm and the key
//     come only from configuration or a JWKS, never from the token; every
//     failure wraps ErrInvalid with a client-safe reason. Verified tokens are
//     cached, so a publisher reusing its token costs a map lookup per request
//     rather than a signature check, while expiry is still checked every time.
//   - JWKS (NewJWKS) keeps a remote key set fresh for a Verifier.
//   - Mint signs tokens in either format, for `mercurectl token mint` and for
//     commands that mint a short-lived token on the fly; Inspect decodes one
//     without verifying it, for `mercurectl token inspect`.
//   - ParseVerificationKey and ParseSigningKey turn the key material users
//     pass (an HMAC secret, PEM keys or certificates) into keys, with errors
//     that say what was expected.
//
// Signing and signature checks use github.com/golang-jwt/jwt/v5; claims are
// parsed here, strictly (exact member names, exact JSON types), because the
// authorization rules of the two protocol generations differ from what a
// generic JWT library validates.
package token

import (
	"encoding/json"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Format is the shape of a token.
type Format int

const (
	// FormatLegacy is a draft-07 token with a `mercure` claim
	// ({"publish": [...], "subscribe": [...], "payload": ...}).
	FormatLegacy Format = iota + 1
	// FormatAccessToken is a draft-08 RFC 9068 access token (header typ at+jwt)
	// with `authorization_details` entries of type DetailType.
	FormatAccessToken
)

// DetailType is the RFC 9396 authorization detail type that Mercure reads.
const DetailType = "https://mercure.rocks/authorization-detail"

// Selector is one topic selector granted by a token.
type Selector struct {
	// Match is the selector string ("*" matches every topic).
	Match string `json:"match"`
	// Type is "" for legacy selectors (draft-07 semantics: "*", an exact
	// string, or a URI template), or the draft-08 match type, "exact" or
	// "urlpattern" (match.TypeExact or match.TypeURLPattern).
	Type string `json:"match_type,omitempty"`
}

// Detail is one draft-08 Mercure authorization detail, as granted.
type Detail struct {
	Actions []string        `json:"actions"`
	Topics  []Selector      `json:"topics"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Claims is what a verified token grants, whatever its format.
type Claims struct {
	Format Format
	// Publish and Subscribe are the topic selectors granted for each action.
	Publish   []Selector
	Subscribe []Selector
	// Payload is the legacy `mercure.payload` (applies to every subscription).
	Payload json.RawMessage
	// SubscribeDetails are the draft-08 details that grant "subscribe", in token
	// order; the payload of a subscription is taken from the first whose Topics
	// match the subscription's matcher (docs/protocol.md#subscription-payload).
	SubscribeDetails []Detail
	// Expiry is the `exp` time; zero when the token has none (legacy only).
	Expiry time.Time
	// Subject, Issuer and ClientID are informational.
	Subject  string
	Issuer   string
	ClientID string
}

// Verifier verifies tokens presented to a hub. It is safe for concurrent use.
// Create one with NewVerifier; its methods are in verify.go.
type Verifier struct {
	cfg    VerifierConfig
	alg    string
	key    any // parsed cfg.Key; nil when only the JWKS supplies keys
	parser *jwt.Parser
	now    func() time.Time
	cache  *verifiedCache // nil when caching is off
}
