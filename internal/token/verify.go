package token

import "time"

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Alg is the one accepted signing algorithm (HS256 when empty); "none" is
	// never accepted.
	Alg string
	// Key is the key material: an HMAC secret, or a PEM public key
	// (a PEM private key or certificate is also accepted; its public key is used).
	Key []byte
	// JWKS, when set, supplies keys by `kid` instead of (or besides) Key.
	JWKS *JWKS
	// Issuers are the trusted issuers of access tokens; empty accepts any `iss`.
	Issuers []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CacheSize bounds the cache of verified tokens (0 = a default).
	CacheSize int
}

// JWKS is a JSON Web Key Set fetched from a URL and refreshed in the background.
type JWKS struct{}
