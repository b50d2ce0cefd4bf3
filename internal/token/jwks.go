package token

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// JWKS defaults.
const (
	// DefaultJWKSRefresh is how often a JWKS is refetched when NewJWKS is
	// given no interval: often enough to pick up a rotation within minutes,
	// rarely enough to be invisible to the identity provider.
	DefaultJWKSRefresh = 5 * time.Minute
	// JWKSRefetchInterval is the minimum time between two refetches caused by
	// tokens carrying an unknown `kid`, so that forged kids cannot turn the
	// hub into a request amplifier against the identity provider.
	JWKSRefetchInterval = 30 * time.Second
	// jwksFetchTimeout bounds one fetch when the client has no timeout.
	jwksFetchTimeout = 10 * time.Second
	// maxJWKSSize caps the JWKS document; real ones are a few KiB.
	maxJWKSSize = 1 << 20
)

// JWKS is a JSON Web Key Set (RFC 7517) fetched from a URL and refreshed in
// the background. It is safe for concurrent use. Keys are looked up by `kid`;
// each key serves only the algorithms its type allows (RSA for RS*/PS*, EC on
// the matching curve for ES*, OKP Ed25519 for EdDSA, oct for HS*), and only
// the algorithm of its `alg` member when it has one. Keys whose `use` is not
// "sig" are ignored.
type JWKS struct {
	url    string
	client *http.Client
	logger *slog.Logger
	ctx    context.Context
	now    func() time.Time

	set atomic.Pointer[keySet]

	fetchMu      sync.Mutex // serialises fetches; guards the fields below
	lastOnDemand time.Time  // last refetch caused by an unknown kid
	lastBody     []byte     // last document fetched successfully
}

// keySet is one fetched generation of keys. It is never modified once
// published.
type keySet struct {
	gen   uint64
	byKID map[string][]jwk
	all   []jwk
}

// jwk is one usable key.
type jwk struct {
	kid    string
	alg    string // the JWK's own alg member, or ""
	family keyFamily
	curve  elliptic.Curve
	key    any // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte
}

// NewJWKS fetches the key set at url and keeps it fresh: the first fetch is
// synchronous and its failure is returned; afterwards the set is refetched
// every refresh (DefaultJWKSRefresh when refresh <= 0) until ctx is done. A
// failed refresh keeps the last good set and logs a warning. client nil means
// a client with a 10s timeout; logger nil discards logs.
func NewJWKS(ctx context.Context, url string, client *http.Client, refresh time.Duration, logger *slog.Logger) (*JWKS, error) {
	if client == nil {
		client = &http.Client{Timeout: jwksFetchTimeout}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if refresh <= 0 {
		refresh = DefaultJWKSRefresh
	}
	j := &JWKS{url: url, client: client, logger: logger, ctx: ctx, now: time.Now}
	if err := j.fetch(); err != nil {
		return nil, err
	}
	go j.refreshLoop(refresh)
	return j, nil
}

// refreshLoop refetches the set every interval until the context is done.
func (j *JWKS) refreshLoop(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-j.ctx.Done():
			return
		case <-t.C:
			if err := j.fetch(); err != nil && j.ctx.Err() == nil {
				j.logger.Warn("JWKS refresh failed; keeping the previous keys", "url", j.url, "error", err)
			}
		}
	}
}

// emptySet stands in for the set of a JWKS not made by NewJWKS.
var emptySet = &keySet{}

// current returns the current key set, never nil.
func (j *JWKS) current() *keySet {
	if s := j.set.Load(); s != nil {
		return s
	}
	return emptySet
}

// generation identifies the current key set; it changes whenever the set's
// content does, which invalidates the Verifier's cache of verified tokens.
func (j *JWKS) generation() uint64 {
	return j.current().gen
}

// lookup returns the keys with this kid that can verify alg.
func (j *JWKS) lookup(alg, kid string) []any {
	return usable(j.current().byKID[kid], alg)
}

// all returns every key that can verify alg (for tokens without a kid).
func (j *JWKS) all(alg string) []any {
	return usable(j.current().all, alg)
}

// Len reports how many usable keys the current set holds.
func (j *JWKS) Len() int {
	return len(j.current().all)
}

// usable filters keys by algorithm.
func usable(keys []jwk, alg string) []any {
	info, ok := algs[alg]
	if !ok {
		return nil
	}
	var out []any
	for _, k := range keys {
		if k.family != info.family || (k.alg != "" && k.alg != alg) || (info.curve != nil && k.curve != info.curve) {
			continue
		}
		out = append(out, k.key)
	}
	return out
}

// refetchFor refetches the set because a token carries an unknown kid, at most
// once per JWKSRefetchInterval; it reports whether a usable key with that kid
// is now known.
func (j *JWKS) refetchFor(alg, kid string) bool {
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	if len(j.lookup(alg, kid)) > 0 { // another request refetched meanwhile
		return true
	}
	if j.ctx == nil || j.ctx.Err() != nil { // not made by NewJWKS, or stopped
		return false
	}
	now := j.now()
	if !j.lastOnDemand.IsZero() && now.Sub(j.lastOnDemand) < JWKSRefetchInterval {
		return false
	}
	j.lastOnDemand = now
	if err := j.fetchLocked(); err != nil {
		j.logger.Warn("JWKS refetch for an unknown key id failed", "url", j.url, "error", err)
		return false
	}
	return len(j.lookup(alg, kid)) > 0
}

// fetch downloads and installs the set.
func (j *JWKS) fetch() error {
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	return j.fetchLocked()
}

func (j *JWKS) fetchLocked() error {
	ctx, cancel := context.WithTimeout(j.ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return fmt.Errorf("fetch JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch JWKS: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch JWKS %s: unexpected status %s", j.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return fmt.Errorf("fetch JWKS %s: %w", j.url, err)
	}
	if len(body) > maxJWKSSize {
		return fmt.Errorf("fetch JWKS %s: document larger than %d bytes", j.url, maxJWKSSize)
	}
	if old := j.set.Load(); old != nil && bytes.Equal(body, j.lastBody) {
		return nil // unchanged: keep the generation, and the verified-token cache
	}
	set, err := parseJWKS(body, j.logger)
	if err != nil {
		return fmt.Errorf("fetch JWKS %s: %w", j.url, err)
	}
	if old := j.set.Load(); old != nil {
		set.gen = old.gen + 1
	}
	j.set.Store(set)
	j.lastBody = body
	return nil
}

// parseJWKS parses a JWK Set document. Keys that cannot be used (unknown type
// or curve, not for signatures, malformed) are skipped with a warning; a set
// without any usable key is an error.
func parseJWKS(body []byte, logger *slog.Logger) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("parse JWK set: %w", err)
	}
	set := &keySet{byKID: make(map[string][]jwk)}
	for i, raw := range doc.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			logger.Warn("skipping unusable JWK", "index", i, "error", err)
			continue
		}
		set.all = append(set.all, k)
		if k.kid != "" {
			set.byKID[k.kid] = append(set.byKID[k.kid], k)
		}
	}
	if len(set.all) == 0 {
		return nil, errors.New("JWK set has no usable signature verification key")
	}
	return set, nil
}

// jwkJSON holds the members of a JWK (RFC 7517, RFC 7518 section 6, RFC 8037).
type jwkJSON struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	K   string `json:"k"`
}

// parseJWK turns one JWK into a verification key.
func parseJWK(raw json.RawMessage) (jwk, error) {
	var j jwkJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return jwk{}, fmt.Errorf("parse JWK: %w", err)
	}
	k := jwk{kid: j.Kid, alg: j.Alg}
	if j.Use != "" && j.Use != "sig" {
		return jwk{}, fmt.Errorf("key %q is for %q, not signatures", j.Kid, j.Use)
	}
	if j.Alg != "" {
		if _, ok := algs[j.Alg]; !ok {
			return jwk{}, fmt.Errorf("key %q has unsupported alg %q", j.Kid, j.Alg)
		}
	}
	b64 := base64.RawURLEncoding
	switch j.Kty {
	case "RSA":
		n, err1 := b64.DecodeString(j.N)
		e, err2 := b64.DecodeString(j.E)
		if err := errors.Join(err1, err2); err != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return jwk{}, fmt.Errorf("key %q: malformed RSA modulus or exponent", j.Kid)
		}
		exp := new(big.Int).SetBytes(e).Int64()
		if exp < 3 || exp > math.MaxInt32 || exp%2 == 0 {
			return jwk{}, fmt.Errorf("key %q: invalid RSA exponent", j.Kid)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp)}
		if pub.N.BitLen() < MinRSABits {
			return jwk{}, fmt.Errorf("key %q: RSA key has %d bits, fewer than %d", j.Kid, pub.N.BitLen(), MinRSABits)
		}
		k.family, k.key = familyRSA, pub
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return jwk{}, fmt.Errorf("key %q: unsupported EC curve %q", j.Kid, j.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err1 := b64.DecodeString(j.X)
		y, err2 := b64.DecodeString(j.Y)
		if errors.Join(err1, err2) != nil || len(x) != size || len(y) != size {
			return jwk{}, fmt.Errorf("key %q: malformed EC coordinates", j.Kid)
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return jwk{}, fmt.Errorf("key %q: %w", j.Kid, err)
		}
		k.family, k.curve, k.key = familyEC, curve, pub
	case "OKP":
		if j.Crv != "Ed25519" {
			return jwk{}, fmt.Errorf("key %q: unsupported OKP curve %q", j.Kid, j.Crv)
		}
		x, err := b64.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return jwk{}, fmt.Errorf("key %q: malformed Ed25519 key", j.Kid)
		}
		k.family, k.key = familyEd25519, ed25519.PublicKey(x)
	case "oct":
		secret, err := b64.DecodeString(j.K)
		if err != nil || len(secret) == 0 {
			return jwk{}, fmt.Errorf("key %q: malformed symmetric key", j.Kid)
		}
		k.family, k.key = familyHMAC, secret
	default:
		return jwk{}, fmt.Errorf("key %q: unsupported key type %q", j.Kid, j.Kty)
	}
	if j.Alg != "" && algs[j.Alg].family != k.family {
		return jwk{}, fmt.Errorf("key %q: alg %s does not fit key type %s", j.Kid, j.Alg, j.Kty)
	}
	return k, nil
}
