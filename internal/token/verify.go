package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalid is wrapped by every error Verify returns. The rest of the message
// says what was wrong in terms safe to show to the client ("token is
// expired"); it never contains key material or the token itself.
var ErrInvalid = errors.New("invalid token")

// invalidError is a verification failure. It matches ErrInvalid with
// errors.Is, and its message is "invalid token: <reason>".
type invalidError string

func (e invalidError) Error() string        { return ErrInvalid.Error() + ": " + string(e) }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

// ErrSignature is matched (besides ErrInvalid) by the error of a token whose
// signature does not verify with the verifier's keys, so that a hub can say
// which of its keys that was.
var ErrSignature = errors.New("signature is invalid")

// signatureError is a signature that does not verify.
type signatureError struct{}

func (signatureError) Error() string { return ErrInvalid.Error() + ": " + ErrSignature.Error() }
func (signatureError) Is(target error) bool {
	return target == ErrInvalid || target == ErrSignature
}

// DefaultCacheSize is the number of verified tokens a Verifier remembers when
// VerifierConfig.CacheSize is 0: enough for every publisher and subscriber of
// a busy hub, at a few hundred bytes each.
const DefaultCacheSize = 4096

// Size limits on tokens. Larger tokens are rejected outright (maxTokenSize)
// or verified every time instead of being cached (maxCachedTokenSize), which
// bounds the cache's memory at about DefaultCacheSize × 8 KiB.
const (
	maxTokenSize       = 64 << 10
	maxCachedTokenSize = 8 << 10
)

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Alg is the one accepted signing algorithm (HS256 when empty); "none" is
	// never accepted.
	Alg string
	// Key is the key material: an HMAC secret, or a PEM public key
	// (a PEM private key or certificate is also accepted; its public key is used).
	Key []byte
	// JWKS, when set, supplies keys by `kid` instead of (or besides) Key.
	// A token whose kid the set lacks (after one rate-limited refetch) falls
	// back to Key when there is one.
	JWKS *JWKS
	// Issuers are the trusted issuers of access tokens; empty accepts any `iss`.
	Issuers []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CacheSize bounds the cache of verified tokens (0 = DefaultCacheSize;
	// negative disables the cache).
	CacheSize int
}

// NewVerifier checks cfg and returns a Verifier: the algorithm must be
// supported (never "none"), and Key or JWKS must be set; Key must be a valid
// key for the algorithm.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	alg := cfg.Alg
	if alg == "" {
		alg = "HS256"
	}
	if _, err := lookupAlg(alg); err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	if len(cfg.Key) == 0 && cfg.JWKS == nil {
		return nil, errors.New("token verifier: a key or a JWKS URL is required")
	}
	v := &Verifier{alg: alg, now: cfg.Now}
	if len(cfg.Key) > 0 {
		key, err := ParseVerificationKey(alg, cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("token verifier: %w", err)
		}
		v.key = key
	}
	cfg.Alg = alg
	cfg.Key = nil // parsed into v.key; do not keep a second copy of a secret
	cfg.Issuers = slices.Clone(cfg.Issuers)
	v.cfg = cfg
	if v.now == nil {
		v.now = time.Now
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{alg}), // the algorithm never comes from the token
		jwt.WithoutClaimsValidation(),       // buildClaims validates, strictly and with v.now
		jwt.WithStrictDecoding(),            // one encoding per token: no malleable signatures
	)
	switch {
	case cfg.CacheSize == 0:
		v.cache = newVerifiedCache(DefaultCacheSize)
	case cfg.CacheSize > 0:
		v.cache = newVerifiedCache(cfg.CacheSize)
	}
	return v, nil
}

// Now is the time by the verifier's clock (VerifierConfig.Now), on which it
// judges exp and nbf. A hub turns a token's exp into the lifetime left with
// it, so that it closes a stream when the verifier would refuse the token,
// whatever clock the hub itself runs on.
func (v *Verifier) Now() time.Time { return v.now() }

// Verify checks raw and returns what it grants. Every failure wraps
// ErrInvalid.
//
// The header `typ` selects the rules: `at+jwt` or `application/at+jwt` (any
// case) means an RFC 9068 access token (docs/protocol.md#access-tokens and
// #authorization-details), anything else a draft-07 token with a `mercure`
// claim (docs/protocol.md#legacy-tokens). For both, the signature must be
// made with the configured algorithm and key (or a JWKS key); `jwk`, `jku`
// and `x5u` headers are never used, and a `crit` header is refused since no
// extension is understood. `exp` and `nbf` are enforced when present, with no
// leeway. For access tokens, `exp` is required, `iss` must be one of the
// configured issuers (when any), and `aud` must contain audience (when it is
// not ""); legacy tokens ignore `aud` and `iss`.
//
// Verified tokens are cached by (raw, audience), so verifying the same token
// again costs a map lookup; expiry and not-before are still checked against
// the clock on every call. The returned Claims is a fresh copy, but its
// slices are shared with the cache and must not be modified.
func (v *Verifier) Verify(raw string, audience string) (*Claims, error) {
	if v == nil {
		return nil, invalidError("no verification key is configured")
	}
	now := v.now()
	var gen uint64
	if v.cfg.JWKS != nil {
		gen = v.cfg.JWKS.generation()
	}
	key := cacheKey{raw: raw, audience: audience}
	if v.cache != nil {
		if e, ok := v.cache.get(key); ok && e.gen == gen {
			if err := checkTimes(e.claims.Expiry, e.notBefore, now); err != nil {
				v.cache.remove(key)
				return nil, err
			}
			c := *e.claims
			return &c, nil
		}
	}

	if len(raw) > maxTokenSize {
		return nil, invalidError("token is too large")
	}
	var rc rawClaims
	st := verifyState{v: v}
	tok, err := v.parser.ParseWithClaims(raw, &rc, st.keyFunc)
	if err != nil {
		return nil, v.mapError(tok, err)
	}
	if !rc.parsed {
		return nil, invalidError("claims are not a JSON object")
	}
	cs, err := buildClaims(rc.members, formatOf(tok.Header), audience, v.cfg.Issuers)
	if err != nil {
		return nil, err
	}
	if err := checkTimes(cs.claims.Expiry, cs.notBefore, now); err != nil {
		return nil, err
	}
	if v.cache != nil && len(raw) <= maxCachedTokenSize {
		shared := cs.claims
		v.cache.put(key, cacheEntry{claims: &shared, notBefore: cs.notBefore, gen: gen})
	}
	return &cs.claims, nil
}

// formatOf decides the rules from the header `typ`
// (docs/protocol.md#access-tokens).
func formatOf(header map[string]any) Format {
	typ, _ := header[headerType].(string)
	if strings.EqualFold(typ, typAccessToken) || strings.EqualFold(typ, typAccessTokenMIME) {
		return FormatAccessToken
	}
	return FormatLegacy
}

// checkTimes enforces exp and nbf (zero = absent) without leeway: a token is
// valid from nbf inclusive to exp exclusive (RFC 7519 sections 4.1.4, 4.1.5).
// The error says how far off the clock is, which tells an expired token
// from a clock that is skewed.
func checkTimes(exp, nbf, now time.Time) error {
	if !exp.IsZero() && !now.Before(exp) {
		return invalidError("token expired " + Since(now.Sub(exp)) + " ago (exp " + exp.UTC().Format(time.RFC3339) + ")")
	}
	if !nbf.IsZero() && now.Before(nbf) {
		return invalidError("token is not valid yet: its nbf is in " + Since(nbf.Sub(now)) + " (" + nbf.UTC().Format(time.RFC3339) + ")")
	}
	return nil
}

// Since writes a duration the way people say it, rounded to the largest
// unit that matters: "45s", "3m", "5h", "12d".
func Since(d time.Duration) string {
	unit, name := 24*time.Hour, "d"
	switch {
	case d < time.Minute-time.Second/2:
		unit, name = time.Second, "s"
	case d < time.Hour-time.Minute/2:
		unit, name = time.Minute, "m"
	case d < 48*time.Hour-time.Hour/2:
		unit, name = time.Hour, "h"
	}
	return strconv.Itoa(int(d.Round(unit)/unit)) + name
}

// mapError turns a parser error into a client-safe invalidError.
func (v *Verifier) mapError(tok *jwt.Token, err error) error {
	var ie invalidError
	switch {
	case errors.As(err, &ie):
		return ie
	case errors.Is(err, jwt.ErrTokenMalformed):
		// The parser's detail ("could not base64 decode header", "token
		// contains an invalid number of segments") never quotes the token.
		msg := err.Error()
		if !strings.HasPrefix(msg, "token is malformed") || len(msg) > 200 {
			msg = "token is malformed"
		}
		return invalidError(msg)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if tok != nil && tok.Method != nil && tok.Method.Alg() != v.alg {
			return v.algError(tok)
		}
		return signatureError{}
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return v.algError(tok)
	default:
		return invalidError("token is malformed")
	}
}

// algError refuses a token signed with another algorithm than the one
// configured, naming both.
func (v *Verifier) algError(tok *jwt.Token) error {
	alg := "no alg"
	if tok != nil {
		if a, ok := tok.Header["alg"].(string); ok {
			if len(a) > 16 {
				a = a[:16] + "…"
			}
			alg = strconv.Quote(a)
		}
	}
	return invalidError("unexpected signing algorithm " + alg + ": this hub accepts " + v.alg + " only")
}

// verifyState carries one verification through the parser's key callback.
type verifyState struct {
	v *Verifier
}

// keyFunc picks the verification key(s) for a parsed, unverified token.
func (s *verifyState) keyFunc(t *jwt.Token) (any, error) {
	v := s.v
	if t.Method == nil || t.Method.Alg() != v.alg { // also enforced by WithValidMethods
		return nil, v.algError(t)
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, invalidError("unsupported critical header parameter")
	}
	// A header with two "alg" or "kid" members reads differently to
	// different parsers, as duplicate claims do.
	if seg, _, _ := strings.Cut(t.Raw, "."); seg != "" {
		if hb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "=")); err == nil {
			if err := checkUniqueMembers(hb); err != nil {
				return nil, invalidError("header has a duplicate member")
			}
		}
	}
	var kid string
	if k, ok := t.Header["kid"]; ok {
		if kid, ok = k.(string); !ok {
			return nil, invalidError("kid header is not a string")
		}
	}
	j := v.cfg.JWKS
	if j == nil {
		return v.key, nil // NewVerifier ensures a key when there is no JWKS
	}
	if kid == "" {
		// No kid: try the configured key, then every JWKS key for the alg.
		var keys []any
		if v.key != nil {
			keys = append(keys, v.key)
		}
		keys = append(keys, j.all(v.alg)...)
		if len(keys) == 0 {
			return nil, invalidError("the token has no kid, and the JWKS has no " + v.alg + " key")
		}
		return verificationKeys(keys), nil
	}
	keys := j.lookup(v.alg, kid)
	if len(keys) == 0 && j.refetchFor(v.alg, kid) {
		keys = j.lookup(v.alg, kid)
	}
	if len(keys) > 0 {
		return verificationKeys(keys), nil
	}
	if v.key != nil {
		return v.key, nil // a kid the JWKS does not know may name the configured key
	}
	if len(kid) > 64 {
		kid = kid[:64] + "…"
	}
	return nil, invalidError("unknown key id " + strconv.Quote(kid) + ": the JWKS has no " + v.alg + " key with it")
}

// verificationKeys returns one key as is, several as a jwt.VerificationKeySet.
func verificationKeys(keys []any) any {
	if len(keys) == 1 {
		return keys[0]
	}
	set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = k
	}
	return set
}

// cacheKey identifies one verification: the same token checked against
// another audience is another result.
type cacheKey struct {
	raw, audience string
}

// cacheEntry is a verified token's result.
type cacheEntry struct {
	claims    *Claims
	notBefore time.Time
	gen       uint64 // JWKS generation when verified; a key rotation invalidates
}

// verifiedCache is a bounded map of verified tokens. When full, it evicts an
// arbitrary entry (Go randomises map iteration), which is enough: a hot token
// evicted by chance costs one signature check.
type verifiedCache struct {
	mu  sync.RWMutex
	max int
	m   map[cacheKey]cacheEntry
}

func newVerifiedCache(size int) *verifiedCache {
	return &verifiedCache{max: size, m: make(map[cacheKey]cacheEntry, min(size, 1024))}
}

func (c *verifiedCache) get(k cacheKey) (cacheEntry, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	return e, ok
}

func (c *verifiedCache) put(k cacheKey, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok {
		for len(c.m) >= c.max {
			for victim := range c.m {
				delete(c.m, victim)
				break
			}
		}
	}
	c.m[k] = e
}

func (c *verifiedCache) remove(k cacheKey) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

func (c *verifiedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Describe says what the verifier checks signatures with, for start-up
// logs: "HMAC (HS256)", "RSA key (RS256)", "JWKS https://idp/keys (RS256)",
// or both a key and a JWKS. It never includes key material.
func (v *Verifier) Describe() string {
	if v == nil {
		return "none"
	}
	var parts []string
	if v.key != nil {
		parts = append(parts, keyKind(v.key))
	}
	if j := v.cfg.JWKS; j != nil {
		parts = append(parts, "JWKS "+j.url)
	}
	return strings.Join(parts, " + ") + " (" + v.alg + ")"
}

// keyKind names the kind of a parsed verification key.
func keyKind(key any) string {
	switch key.(type) {
	case []byte:
		return "HMAC secret"
	case *rsa.PublicKey:
		return "RSA public key"
	case *ecdsa.PublicKey:
		return "ECDSA public key"
	case ed25519.PublicKey:
		return "Ed25519 public key"
	}
	return "key"
}
