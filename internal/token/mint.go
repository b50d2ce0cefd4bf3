package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/mercurectl/mercurectl/internal/match"
)

// DefaultMintIdentity is the default `iss`, `sub` and `client_id` of minted
// access tokens.
const DefaultMintIdentity = "mercurectl"

// MintOptions describes a token to mint.
type MintOptions struct {
	// Format is FormatLegacy (the default when 0) or FormatAccessToken.
	Format Format
	// Alg is the signing algorithm; HS256 when empty.
	Alg string
	// Key is the signing key material: an HMAC secret, or a PEM private key.
	Key []byte
	// KeyID, when set, becomes the header `kid` (for hubs that verify against
	// a JWKS).
	KeyID string
	// Publish and Subscribe are the topic selectors granted for each action.
	// In access tokens each selector's match_type is GuessMatchType's.
	Publish   []string
	Subscribe []string
	// MatchTypes, for access tokens, gives the match_type of selectors
	// whose type is known (match.TypeExact or match.TypeURLPattern), overriding
	// GuessMatchType for them.
	MatchTypes map[string]string
	// Payload is the subscriber payload: `mercure.payload` in a legacy token
	// (any JSON), the `payload` of the subscribe detail in an access token
	// (a JSON object). It is what `mercurectl token mint --payload` sets.
	Payload json.RawMessage
	// Extra is an optional JSON object of additional top-level claims, such
	// as `nbf` or claims meant for other consumers. It cannot replace a claim
	// that Mint writes itself; trying is an error rather than a silent
	// override, so a grant is never changed by accident.
	Extra json.RawMessage
	// TTL sets `exp` to now+TTL, rounded up to the second. 0 means no `exp`,
	// which only legacy tokens allow (RFC 9068 requires exp).
	TTL time.Duration
	// Issuer, Audience and Subject set `iss`, `aud` and `sub`; in a legacy
	// token each is written only when set. Access tokens require Audience and
	// default Issuer, Subject and ClientID to DefaultMintIdentity. ClientID
	// (`client_id`) is written in access tokens only.
	Issuer, Audience, Subject, ClientID string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Mint signs a token as o describes. The result verifies with a Verifier
// configured with the matching key; Mint refuses what such a Verifier would
// reject (an empty selector, too many selectors, a non-object access-token
// payload).
//
// A legacy token has header {"alg", "typ": "JWT"} and claims
// {"mercure": {"publish"?, "subscribe"?, "payload"?}, "iat", "exp"?, "iss"?,
// "aud"?, "sub"?}. An access token has header typ "at+jwt" and claims "iss",
// "aud", "sub", "client_id", "iat", "exp", "jti" (a random UUID) and
// "authorization_details": one entry of type DetailType for the publish
// topics and one for the subscribe topics (with the payload), each omitted
// when it would have no topics.
func Mint(o MintOptions) (string, error) {
	alg := o.Alg
	if alg == "" {
		alg = "HS256"
	}
	key, err := ParseSigningKey(alg, o.Key)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	method := jwt.GetSigningMethod(alg)
	if method == nil {
		return "", fmt.Errorf("mint token: unsupported algorithm %q", alg)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	t := now()
	if o.TTL < 0 {
		return "", errors.New("mint token: the TTL must not be negative")
	}
	for _, s := range append(append([]string(nil), o.Publish...), o.Subscribe...) {
		if s == "" {
			return "", errors.New("mint token: a topic selector is empty")
		}
	}
	if len(o.Payload) > 0 && !json.Valid(o.Payload) {
		return "", errors.New("mint token: the payload is not valid JSON")
	}

	header := map[string]any{"alg": alg, headerType: typLegacy}
	if o.KeyID != "" {
		header["kid"] = o.KeyID
	}
	claims := map[string]any{claimIssuedAt: t.Unix()}
	if o.TTL > 0 {
		exp := t.Add(o.TTL)
		secs := exp.Unix()
		if exp.Nanosecond() > 0 {
			secs++ // round up: the token lives at least TTL
		}
		claims[claimExpiry] = secs
	}

	switch o.Format {
	case 0, FormatLegacy:
		if len(o.Publish) > MaxLegacySelectors || len(o.Subscribe) > MaxLegacySelectors {
			return "", fmt.Errorf("mint token: at most %d selectors per action", MaxLegacySelectors)
		}
		mercure := map[string]any{}
		if len(o.Publish) > 0 {
			mercure[mercurePublish] = o.Publish
		}
		if len(o.Subscribe) > 0 {
			mercure[mercureSubscribe] = o.Subscribe
		}
		if len(o.Payload) > 0 {
			mercure[mercurePayload] = o.Payload
		}
		claims[claimMercure] = mercure
		setIf(claims, claimIssuer, o.Issuer)
		setIf(claims, claimAudience, o.Audience)
		setIf(claims, claimSubject, o.Subject)
	case FormatAccessToken:
		header[headerType] = typAccessToken
		if o.TTL == 0 {
			return "", errors.New("mint token: access tokens need a TTL (exp is required)")
		}
		if o.Audience == "" {
			return "", errors.New("mint token: access tokens need an audience")
		}
		if len(o.Publish)+len(o.Subscribe) > MaxDetailTopics {
			return "", fmt.Errorf("mint token: access tokens carry at most %d topics", MaxDetailTopics)
		}
		if len(o.Payload) > 0 && kind(o.Payload) != '{' {
			return "", errors.New("mint token: an access token's payload must be a JSON object")
		}
		claims[claimIssuer] = orDefault(o.Issuer, DefaultMintIdentity)
		claims[claimAudience] = o.Audience
		claims[claimSubject] = orDefault(o.Subject, DefaultMintIdentity)
		claims[claimClientID] = orDefault(o.ClientID, DefaultMintIdentity)
		claims[claimJWTID] = uuid.NewString()
		details := []any{}
		if len(o.Publish) > 0 {
			details = append(details, mintDetail(ActionPublish, o.Publish, o.MatchTypes, nil))
		}
		if len(o.Subscribe) > 0 {
			details = append(details, mintDetail(ActionSubscribe, o.Subscribe, o.MatchTypes, o.Payload))
		}
		claims[claimDetails] = details
	default:
		return "", fmt.Errorf("mint token: unknown format %d", o.Format)
	}

	if len(o.Extra) > 0 {
		var extra map[string]json.RawMessage
		if kind(o.Extra) != '{' || json.Unmarshal(o.Extra, &extra) != nil {
			return "", errors.New("mint token: extra claims must be a JSON object")
		}
		for name, v := range extra {
			if _, taken := claims[name]; taken {
				return "", fmt.Errorf("mint token: extra claim %q would replace a claim set by the token options", name)
			}
			claims[name] = v
		}
	}

	hb, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("mint token: encode header: %w", err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("mint token: encode claims: %w", err)
	}
	b64 := base64.RawURLEncoding
	signingInput := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	sig, err := method.Sign(signingInput, key)
	if err != nil {
		return "", fmt.Errorf("mint token: sign: %w", err)
	}
	return signingInput + "." + b64.EncodeToString(sig), nil
}

// mintDetail builds one Mercure authorization detail.
func mintDetail(action string, selectors []string, types map[string]string, payload json.RawMessage) map[string]any {
	topics := make([]map[string]string, 0, len(selectors))
	for _, s := range selectors {
		mt := types[s]
		if mt != match.TypeExact && mt != match.TypeURLPattern {
			mt = GuessMatchType(s)
		}
		topics = append(topics, map[string]string{topicMatch: s, topicMatchType: mt})
	}
	d := map[string]any{detailType: DetailType, detailActions: []string{action}, detailTopics: topics}
	if len(payload) > 0 {
		d[detailPayload] = payload
	}
	return d
}

func setIf(m map[string]any, name, value string) {
	if value != "" {
		m[name] = value
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// GuessMatchType returns the draft-08 match type a selector most likely
// means: match.TypeURLPattern when a path segment starts with ':' or '*'
// ("/books/:id", "https://example.com/*"), match.TypeExact otherwise,
// including for "*" alone (it matches every topic whatever the type,
// docs/protocol.md#matching-08) and for URI templates ("/books/{id}"), which
// draft-08 does not have.
func GuessMatchType(selector string) string {
	if selector == "*" {
		return match.TypeExact
	}
	for seg := range strings.SplitSeq(selector, "/") {
		if strings.HasPrefix(seg, ":") || strings.HasPrefix(seg, "*") {
			return match.TypeURLPattern
		}
	}
	return match.TypeExact
}

// ErrMalformed is returned by Inspect for a string that is not a JWS compact
// serialisation with JSON object header and claims.
var ErrMalformed = errors.New("malformed token")

// Inspect decodes a token without verifying it and returns its header and
// claims as they were encoded. Surrounding white space is ignored. A token
// that does not have three parts, whose parts are not base64url (unpadded,
// RFC 7515), or whose header or claims are not JSON objects, is an error
// wrapping ErrMalformed.
func Inspect(raw string) (header, claims json.RawMessage, err error) {
	parts := strings.Split(strings.TrimSpace(raw), ".")
	if len(parts) != 3 {
		return nil, nil, fmt.Errorf("%w: a token has 3 dot-separated parts, not %d", ErrMalformed, len(parts))
	}
	b64 := base64.RawURLEncoding.Strict()
	names := [...]string{"header", "claims", "signature"}
	var dec [3][]byte
	for i, p := range parts {
		if dec[i], err = b64.DecodeString(p); err != nil {
			return nil, nil, fmt.Errorf("%w: the %s is not base64url", ErrMalformed, names[i])
		}
	}
	for i := range 2 {
		if kind(dec[i]) != '{' || !json.Valid(dec[i]) {
			return nil, nil, fmt.Errorf("%w: the %s is not a JSON object", ErrMalformed, names[i])
		}
	}
	return dec[0], dec[1], nil
}

// FormatOf returns the format of raw, decoded without verification:
// FormatAccessToken when its header typ is at+jwt or application/at+jwt
// (RFC 9068 section 2.1, compared case-insensitively), FormatLegacy for any
// other token, and an error wrapping ErrMalformed when raw is not a token.
// Clients use it to speak the generation a ready token is meant for.
func FormatOf(raw string) (Format, error) {
	header, _, err := Inspect(raw)
	if err != nil {
		return 0, err
	}
	var h map[string]any
	if err := json.Unmarshal(header, &h); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return formatOf(h), nil
}
