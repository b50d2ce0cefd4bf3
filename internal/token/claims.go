package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mercurectl/mercurectl/internal/match"
)

// Limits on what a token may grant. They bound the work a hub does per token
// and follow the reference hub, so that tokens it accepts are accepted here.
const (
	// MaxLegacySelectors caps each of `mercure.publish` and
	// `mercure.subscribe` (docs/protocol.md#legacy-tokens).
	MaxLegacySelectors = 1000
	// MaxDetails caps the Mercure authorization details of an access token
	// (docs/protocol.md#authorization-details).
	MaxDetails = 100
	// MaxDetailTopics caps the topics summed over all Mercure details of an
	// access token (docs/protocol.md#authorization-details).
	MaxDetailTopics = 100
)

// Actions that authorization details grant.
const (
	ActionPublish   = "publish"
	ActionSubscribe = "subscribe"
)

// rawClaims receives the claim set from the JWT parser. It keeps the top-level
// members by exact (case-sensitive) name; encoding/json's struct decoding
// would also match "EXP" or "Mercure", which a strict verifier must not.
type rawClaims struct {
	members map[string]json.RawMessage
	parsed  bool
}

// UnmarshalJSON implements json.Unmarshaler; the claim set must be an object.
func (c *rawClaims) UnmarshalJSON(b []byte) error {
	if kind(b) != '{' {
		return invalidError("claims are not a JSON object")
	}
	if err := checkUniqueMembers(b); err != nil {
		if errors.Is(err, errDuplicateMember) {
			return invalidError("claims have a duplicate member")
		}
		return err
	}
	if err := json.Unmarshal(b, &c.members); err != nil {
		return err
	}
	c.parsed = true
	return nil
}

// The jwt.Claims interface. Registered claims are validated by buildClaims
// instead (the parser runs with WithoutClaimsValidation), so that their types
// are checked strictly and the verifier's clock is used.
func (*rawClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (*rawClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (*rawClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (*rawClaims) GetIssuer() (string, error)                   { return "", nil }
func (*rawClaims) GetSubject() (string, error)                  { return "", nil }
func (*rawClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// claimSet is a parsed claim set, before time checks.
type claimSet struct {
	claims    Claims
	notBefore time.Time
}

// buildClaims applies the format's rules to a verified claim set. audience is
// the resource identifier an access token's `aud` must contain ("" skips it);
// issuers, when non-empty, are the trusted values of an access token's `iss`.
// Time claims are parsed here but checked by the caller.
func buildClaims(m map[string]json.RawMessage, format Format, audience string, issuers []string) (claimSet, error) {
	var cs claimSet
	c := &cs.claims
	c.Format = format

	var err error
	var hasIss, hasExp bool
	if c.Issuer, hasIss, err = optString(m, claimIssuer); err != nil {
		return cs, err
	}
	if c.Subject, _, err = optString(m, claimSubject); err != nil {
		return cs, err
	}
	if _, _, err = optString(m, claimJWTID); err != nil {
		return cs, err
	}
	if c.Expiry, hasExp, err = optTime(m, claimExpiry); err != nil {
		return cs, err
	}
	if cs.notBefore, _, err = optTime(m, claimNotBefore); err != nil {
		return cs, err
	}
	if _, _, err = optTime(m, claimIssuedAt); err != nil {
		return cs, err
	}
	aud, err := optAudience(m)
	if err != nil {
		return cs, err
	}

	if format == FormatLegacy {
		// docs/protocol.md#legacy-tokens. `aud` and `iss` are not checked for draft-07
		// tokens: the reference 0.x hub never did, and deployed issuers rely
		// on that.
		if err := parseLegacy(m[claimMercure], c); err != nil {
			return cs, err
		}
		// client_id is not a draft-07 claim: informational, read when usable.
		c.ClientID, _ = jsonString(m[claimClientID])
		return cs, nil
	}

	// docs/protocol.md#access-tokens: RFC 9068 access tokens.
	if !hasExp {
		return cs, invalidError("token has no expiry (exp is required)")
	}
	if len(issuers) > 0 {
		trusted := false
		for _, iss := range issuers {
			if hasIss && c.Issuer == iss {
				trusted = true
				break
			}
		}
		if !trusted {
			if !hasIss {
				return cs, invalidError("token has no issuer (iss); trusted: " + strings.Join(issuers, ", "))
			}
			iss := c.Issuer
			if strings.TrimSpace(iss) == "" || strings.ContainsAny(iss, " \"") {
				iss = strconv.Quote(iss)
			}
			return cs, invalidError("token issuer " + iss + " is not trusted; trusted: " + strings.Join(issuers, ", "))
		}
	}
	if audience != "" {
		found := false
		for _, a := range aud {
			if a == audience {
				found = true
				break
			}
		}
		switch {
		case found:
		case len(aud) == 0:
			return cs, invalidError("token has no audience (aud); this hub is " + audience)
		case len(aud) == 1:
			return cs, invalidError("audience " + aud[0] + " is not " + audience)
		default:
			return cs, invalidError("audience [" + strings.Join(aud, ", ") + "] does not include " + audience)
		}
	}
	if c.ClientID, _, err = optString(m, claimClientID); err != nil {
		return cs, err
	}
	if err := parseDetails(m[claimDetails], c); err != nil {
		return cs, err
	}
	return cs, nil
}

// parseLegacy reads the draft-07 `mercure` claim
// (docs/protocol.md#legacy-tokens). A missing or null claim grants nothing;
// null members count as absent, as in the reference hub, which decodes them
// into Go slices.
func parseLegacy(raw json.RawMessage, c *Claims) error {
	if raw == nil || kind(raw) == 'n' {
		return nil
	}
	if kind(raw) != '{' {
		return invalidError("mercure claim is not an object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return invalidError("mercure claim is malformed")
	}
	var err error
	if c.Publish, err = legacySelectors(m[mercurePublish], mercurePublish); err != nil {
		return err
	}
	if c.Subscribe, err = legacySelectors(m[mercureSubscribe], mercureSubscribe); err != nil {
		return err
	}
	if p := m[mercurePayload]; p != nil && kind(p) != 'n' {
		c.Payload = p
	}
	return nil
}

// legacySelectors reads `mercure.publish` or `mercure.subscribe`.
func legacySelectors(raw json.RawMessage, name string) ([]Selector, error) {
	if raw == nil || kind(raw) == 'n' {
		return nil, nil
	}
	var items []json.RawMessage
	if kind(raw) != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, invalidError("mercure." + name + " is not an array of strings")
	}
	if len(items) > MaxLegacySelectors {
		return nil, invalidError("mercure." + name + " has more than " + strconv.Itoa(MaxLegacySelectors) + " selectors")
	}
	sels := make([]Selector, 0, len(items))
	for _, it := range items {
		s, ok := jsonString(it)
		if !ok {
			return nil, invalidError("mercure." + name + " is not an array of strings")
		}
		sels = append(sels, Selector{Match: s})
	}
	return sels, nil
}

// parseDetails reads RFC 9396 `authorization_details` strictly
// (docs/protocol.md#authorization-details): any malformed Mercure detail
// rejects the whole token, so that a token never grants a subset of what its
// issuer meant.
func parseDetails(raw json.RawMessage, c *Claims) error {
	if raw == nil {
		return nil
	}
	var entries []json.RawMessage
	if kind(raw) != '[' || json.Unmarshal(raw, &entries) != nil {
		return invalidError("authorization_details is not an array")
	}
	details, topics := 0, 0
	for _, e := range entries {
		var m map[string]json.RawMessage
		if kind(e) != '{' || json.Unmarshal(e, &m) != nil {
			return invalidError("authorization detail is not an object")
		}
		typ, ok := jsonString(m[detailType])
		if !ok {
			return invalidError("authorization detail has no type")
		}
		if typ != DetailType {
			continue // RFC 9396: other types are for other resource servers.
		}
		details++
		if details > MaxDetails {
			return invalidError("too many authorization details")
		}
		d, err := parseDetail(m)
		if err != nil {
			return err
		}
		topics += len(d.Topics)
		if topics > MaxDetailTopics {
			return invalidError("too many topics in authorization details")
		}
		var pub, sub bool
		for _, a := range d.Actions {
			switch a {
			case ActionPublish:
				pub = true
			case ActionSubscribe:
				sub = true
			}
		}
		if pub {
			c.Publish = append(c.Publish, d.Topics...)
		}
		if sub {
			c.Subscribe = append(c.Subscribe, d.Topics...)
			c.SubscribeDetails = append(c.SubscribeDetails, d)
		}
	}
	return nil
}

// parseDetail reads one Mercure authorization detail.
func parseDetail(m map[string]json.RawMessage) (Detail, error) {
	var d Detail
	var actions, topics []json.RawMessage
	if raw := m[detailActions]; kind(raw) != '[' || json.Unmarshal(raw, &actions) != nil || len(actions) == 0 {
		return d, invalidError("authorization detail actions must be a non-empty array of strings")
	}
	d.Actions = make([]string, 0, len(actions))
	for _, a := range actions {
		s, ok := jsonString(a)
		if !ok {
			return d, invalidError("authorization detail actions must be a non-empty array of strings")
		}
		d.Actions = append(d.Actions, s)
	}
	if raw := m[detailTopics]; kind(raw) != '[' || json.Unmarshal(raw, &topics) != nil || len(topics) == 0 {
		return d, invalidError("authorization detail topics must be a non-empty array of objects")
	}
	if len(topics) > MaxDetailTopics {
		return d, invalidError("too many topics in authorization details")
	}
	d.Topics = make([]Selector, 0, len(topics))
	for _, t := range topics {
		var tm map[string]json.RawMessage
		if kind(t) != '{' || json.Unmarshal(t, &tm) != nil {
			return d, invalidError("authorization detail topics must be a non-empty array of objects")
		}
		sel, ok := jsonString(tm[topicMatch])
		if !ok || sel == "" {
			return d, invalidError("authorization detail topic has no match")
		}
		matchType := match.TypeExact
		if raw, present := tm[topicMatchType]; present {
			if matchType, ok = jsonString(raw); !ok || (matchType != match.TypeExact && matchType != match.TypeURLPattern) {
				return d, invalidError("authorization detail topic has an unknown match_type")
			}
		}
		d.Topics = append(d.Topics, Selector{Match: sel, Type: matchType})
	}
	if p, present := m[detailPayload]; present {
		if kind(p) != '{' {
			return d, invalidError("authorization detail payload is not an object")
		}
		d.Payload = p
	}
	return d, nil
}

// optString reads an optional string claim; null counts as absent.
func optString(m map[string]json.RawMessage, name string) (string, bool, error) {
	raw, ok := m[name]
	if !ok || kind(raw) == 'n' {
		return "", false, nil
	}
	s, ok := jsonString(raw)
	if !ok {
		return "", false, invalidError(name + " claim is not a string")
	}
	return s, true, nil
}

// optAudience reads `aud`, a string or an array of strings (RFC 7519 4.1.3).
func optAudience(m map[string]json.RawMessage) ([]string, error) {
	raw, ok := m[claimAudience]
	if !ok || kind(raw) == 'n' {
		return nil, nil
	}
	if s, ok := jsonString(raw); ok {
		return []string{s}, nil
	}
	var items []json.RawMessage
	if kind(raw) != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, invalidError("aud claim is not a string or an array of strings")
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := jsonString(it)
		if !ok {
			return nil, invalidError("aud claim is not a string or an array of strings")
		}
		out = append(out, s)
	}
	return out, nil
}

// Bounds of the times a NumericDate may express here (1970 and the year 9999),
// so that absurd values neither overflow nor wrap around. The lower bound is
// not year 1 on purpose: that is time.Time's zero, which means "no exp", and a
// hugely negative exp must still read as long expired.
const (
	minNumericDate = 0
	maxNumericDate = 253402300799
)

// optTime reads an optional NumericDate claim (RFC 7519 section 2: a JSON
// number of seconds, possibly fractional); null counts as absent.
func optTime(m map[string]json.RawMessage, name string) (time.Time, bool, error) {
	raw, ok := m[name]
	if !ok || kind(raw) == 'n' {
		return time.Time{}, false, nil
	}
	if k := kind(raw); k != '-' && (k < '0' || k > '9') {
		return time.Time{}, false, invalidError(name + " claim is not a number")
	}
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return time.Time{}, false, invalidError(name + " claim is not a number")
	}
	f = math.Max(minNumericDate, math.Min(maxNumericDate, f))
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

// kind returns the first byte of a JSON value ('{', '[', '"', 'n', 't', 'f',
// '-' or a digit), or 0 for an empty value.
func kind(raw []byte) byte {
	for _, b := range raw {
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b
	}
	return 0
}

// jsonString decodes a JSON string value.
func jsonString(raw json.RawMessage) (string, bool) {
	if kind(raw) != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}
