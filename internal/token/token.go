// Package token mints, inspects and verifies the JWTs that Mercure uses: the
// draft-07 "legacy" tokens carrying a `mercure` claim, and the draft-08 RFC 9068
// access tokens (`typ: at+jwt`) carrying RFC 9396 `authorization_details`.
//
// The hub and the CLI share this package, so claims have one definition.
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

// Match types of draft-08 topic grants and matchers.
const (
	MatchExact      = "exact"
	MatchURLPattern = "urlpattern"
)

// Selector is one topic selector granted by a token.
type Selector struct {
	// Match is the selector string ("*" matches every topic).
	Match string `json:"match"`
	// Type is "" for legacy selectors (draft-07 semantics: "*", an exact
	// string, or a URI template), or MatchExact / MatchURLPattern for draft-08.
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
	// SubscribeDetails are the draft-08 details that grant "subscribe", in
	// token order; the payload of a subscription is taken from the first whose
	// Topics match the subscription's matcher (PROTOCOL.md item 53).
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
