package token

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// JWK builders, written from RFC 7518 section 6 independently of the code
// under test.
func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "n": b64u(pub.N.Bytes()), "e": b64u(big.NewInt(int64(pub.E)).Bytes())}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	size := (pub.Curve.Params().BitSize + 7) / 8
	return map[string]any{"kty": "EC", "kid": kid, "crv": pub.Curve.Params().Name,
		"x": b64u(pub.X.FillBytes(make([]byte, size))), "y": b64u(pub.Y.FillBytes(make([]byte, size)))}
}

func okpJWK(kid string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64u(pub)}
}

func octJWK(kid string, secret []byte) map[string]any {
	return map[string]any{"kty": "oct", "kid": kid, "k": b64u(secret)}
}

func with(m map[string]any, kv ...string) map[string]any {
	out := make(map[string]any, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// jwksServer serves a JWK set that tests can replace, and counts requests.
type jwksServer struct {
	*httptest.Server
	doc    atomic.Pointer[[]byte]
	status atomic.Int32
	hits   atomic.Int32
}

func newJWKSServer(tb testing.TB, keys ...map[string]any) *jwksServer {
	tb.Helper()
	s := &jwksServer{}
	s.setKeys(tb, keys...)
	s.status.Store(http.StatusOK)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(int(s.status.Load()))
		_, _ = w.Write(*s.doc.Load())
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(tb testing.TB, keys ...map[string]any) {
	tb.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		tb.Fatal(err)
	}
	s.setDoc(b)
}

func (s *jwksServer) setDoc(b []byte) { s.doc.Store(&b) }

// syncBuffer is a log sink safe for the refresher goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startJWKS creates a JWKS whose refresher stops when the test ends.
func startJWKS(t *testing.T, srv *jwksServer, refresh time.Duration) (*JWKS, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logs := &syncBuffer{}
	j, err := NewJWKS(ctx, srv.URL, srv.Client(), refresh, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("NewJWKS: %v", err)
	}
	return j, logs
}

const legacyAll = `{"mercure":{"publish":["*"]}}`

func TestJWKSVerify(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	srv := newJWKSServer(t,
		rsaJWK("r", &k.rsa.PublicKey),
		with(rsaJWK("r384", &k.rsa2.PublicKey), "alg", "RS384"),
		with(ecJWK("e", &k.ec256.PublicKey), "use", "sig"),
		ecJWK("e384", &k.ec384.PublicKey),
		okpJWK("o", k.ed.Public().(ed25519.PublicKey)),
		octJWK("h", []byte(secret)),
		// Unusable keys are skipped, not fatal.
		with(ecJWK("enc", &k.ec256b.PublicKey), "use", "enc"),
		map[string]any{"kty": "EC", "kid": "bad", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
		map[string]any{"kty": "EC", "kid": "k256", "crv": "secp256k1", "x": "AAAA", "y": "AAAA"},
		map[string]any{"kty": "OKP", "kid": "x", "crv": "X25519", "x": b64u(make([]byte, 32))},
		map[string]any{"kty": "foo", "kid": "foo"},
		with(rsaJWK("mismatch", &k.rsa.PublicKey), "alg", "ES256"),
	)
	j, logs := startJWKS(t, srv, time.Hour)
	if n := j.Len(); n != 6 {
		t.Fatalf("usable keys = %d, want 6", n)
	}
	for _, kid := range []string{"enc", "bad", "k256", "foo", "mismatch"} {
		if !strings.Contains(logs.String(), `key \"`+kid+`\"`) && !strings.Contains(logs.String(), `key "`+kid+`"`) {
			t.Errorf("no warning for skipped key %q in %s", kid, logs.String())
		}
	}

	tests := []struct {
		name    string
		alg     string
		header  map[string]any
		key     any
		wantErr string
	}{
		{name: "RSA by kid", alg: "RS256", header: map[string]any{"kid": "r"}, key: k.rsa},
		{name: "RSA-PSS with an RSA JWK", alg: "PS256", header: map[string]any{"kid": "r"}, key: k.rsa},
		{name: "EC by kid", alg: "ES256", header: map[string]any{"kid": "e"}, key: k.ec256},
		{name: "EC P-384", alg: "ES384", header: map[string]any{"kid": "e384"}, key: k.ec384},
		{name: "Ed25519 by kid", alg: "EdDSA", header: map[string]any{"kid": "o"}, key: k.ed},
		{name: "oct by kid", alg: "HS256", header: map[string]any{"kid": "h"}, key: []byte(secret)},
		{name: "no kid tries every key for the alg", alg: "ES256", header: map[string]any{}, key: k.ec256},
		{name: "no kid, no key of that type", alg: "ES512", header: map[string]any{}, key: k.ec521, wantErr: "the JWKS has no ES512 key"},
		{name: "kid of a P-384 key for ES256", alg: "ES256", header: map[string]any{"kid": "e384"}, key: k.ec256, wantErr: "unknown key id"},
		{name: "kid of a key restricted to RS384", alg: "RS256", header: map[string]any{"kid": "r384"}, key: k.rsa2, wantErr: "unknown key id"},
		{name: "kid of an encryption key", alg: "ES256", header: map[string]any{"kid": "enc"}, key: k.ec256b, wantErr: "unknown key id"},
		{name: "right kid, wrong signer", alg: "RS256", header: map[string]any{"kid": "r"}, key: k.rsa2, wantErr: "signature is invalid"},
		{name: "oct key for an RS256 hub", alg: "RS256", header: map[string]any{"kid": "h", "alg": "HS256"}, key: []byte(secret), wantErr: "unexpected signing algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := mustVerifier(t, VerifierConfig{Alg: tt.alg, JWKS: j, Now: fixed(t0)})
			h := map[string]any{"alg": tt.alg}
			for k, val := range tt.header {
				h[k] = val
			}
			c, err := v.Verify(signRaw(t, h, legacyAll, tt.key), "")
			checkResult(t, "docs/protocol.md#access-tokens", c, err, tt.wantErr, nil)
		})
	}
}

func TestJWKSUnknownKidRefetch(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	srv := newJWKSServer(t, ecJWK("a", &k.ec256.PublicKey))
	j, _ := startJWKS(t, srv, time.Hour)
	clk := newClock(time.Now())
	j.now = clk.now
	v := mustVerifier(t, VerifierConfig{Alg: "ES256", JWKS: j, Now: fixed(t0)})
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("initial fetches = %d", n)
	}

	// The issuer rotates to key b; a token with kid b triggers one refetch.
	srv.setKeys(t, ecJWK("a", &k.ec256.PublicKey), ecJWK("b", &k.ec256b.PublicKey))
	tokB := signRaw(t, map[string]any{"alg": "ES256", "kid": "b"}, legacyAll, k.ec256b)
	if _, err := v.Verify(tokB, ""); err != nil {
		t.Fatalf("token with the new kid: %v", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}

	// Unknown kids within the next 30s cause no request.
	tokC := signRaw(t, map[string]any{"alg": "ES256", "kid": "c"}, legacyAll, k.ec256b)
	for range 5 {
		if _, err := v.Verify(tokC, ""); err == nil || !strings.Contains(err.Error(), "unknown key id") {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	clk.add(JWKSRefetchInterval - time.Second)
	if _, err := v.Verify(tokC, ""); err == nil {
		t.Fatal("unknown kid accepted")
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("fetches = %d, want still 2 (rate limit)", n)
	}
	// After the interval, one more refetch.
	clk.add(time.Second)
	if _, err := v.Verify(tokC, ""); err == nil {
		t.Fatal("unknown kid accepted")
	}
	if n := srv.hits.Load(); n != 3 {
		t.Fatalf("fetches = %d, want 3", n)
	}
}

func TestJWKSStaticKeyFallback(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	srv := newJWKSServer(t, ecJWK("a", &k.ec256.PublicKey))
	j, _ := startJWKS(t, srv, time.Hour)
	v := mustVerifier(t, VerifierConfig{Alg: "ES256", JWKS: j, Key: pkixPEM(t, &k.ec256b.PublicKey), Now: fixed(t0)})
	for name, tok := range map[string]string{
		"JWKS key by kid":          signRaw(t, map[string]any{"alg": "ES256", "kid": "a"}, legacyAll, k.ec256),
		"JWKS key without kid":     signRaw(t, map[string]any{"alg": "ES256"}, legacyAll, k.ec256),
		"static key without kid":   signRaw(t, map[string]any{"alg": "ES256"}, legacyAll, k.ec256b),
		"static key, unknown kid":  signRaw(t, map[string]any{"alg": "ES256", "kid": "z"}, legacyAll, k.ec256b),
		"static key under JWKS id": signRaw(t, map[string]any{"alg": "ES256", "kid": "a"}, legacyAll, k.ec256b),
	} {
		_, err := v.Verify(tok, "")
		if wantOK := name != "static key under JWKS id"; (err == nil) != wantOK {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestJWKSRefresh checks the background refresh: rotations are picked up,
// cached verifications of removed keys are dropped, and a failing endpoint
// keeps the last good set.
func TestJWKSRefresh(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	srv := newJWKSServer(t, ecJWK("a", &k.ec256.PublicKey))
	j, logs := startJWKS(t, srv, 5*time.Millisecond)
	v := mustVerifier(t, VerifierConfig{Alg: "ES256", JWKS: j, Now: fixed(t0)})
	tokA := signRaw(t, map[string]any{"alg": "ES256", "kid": "a"}, legacyAll, k.ec256)
	tokB := signRaw(t, map[string]any{"alg": "ES256", "kid": "b"}, legacyAll, k.ec256b)
	if _, err := v.Verify(tokA, ""); err != nil {
		t.Fatal(err)
	}

	// An unchanged document keeps the generation (and the cache).
	gen := j.generation()
	waitFor(t, func() bool { return srv.hits.Load() >= 4 })
	if j.generation() != gen {
		t.Fatal("generation changed although the document did not")
	}

	// Rotation: a removes, b added.
	srv.setKeys(t, ecJWK("b", &k.ec256b.PublicKey))
	waitFor(t, func() bool { return j.generation() != gen })
	if _, err := v.Verify(tokA, ""); err == nil {
		t.Fatal("token of a removed key still accepted (stale cache)")
	}
	if _, err := v.Verify(tokB, ""); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}

	// Failures keep the last good set and warn.
	srv.status.Store(http.StatusInternalServerError)
	hits := srv.hits.Load()
	waitFor(t, func() bool { return srv.hits.Load() >= hits+3 })
	srv.setDoc([]byte(`{"keys": "nope"}`))
	srv.status.Store(http.StatusOK)
	hits = srv.hits.Load()
	waitFor(t, func() bool { return srv.hits.Load() >= hits+3 })
	if _, err := v.Verify(tokB, ""); err != nil {
		t.Fatalf("after failed refreshes: %v", err)
	}
	if out := logs.String(); !strings.Contains(out, "JWKS refresh failed") || !strings.Contains(out, "500") {
		t.Errorf("no refresh warning logged: %s", out)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestNewJWKSErrors(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	big := `{"keys":[` + strings.Repeat(`{"kty":"oct","k":"AAAA"},`, 50000) + `{"kty":"oct","k":"AAAA"}]}`
	tests := []struct {
		name    string
		status  int
		doc     string
		wantErr string
	}{
		{name: "server error", status: http.StatusInternalServerError, doc: `{}`, wantErr: "unexpected status 500"},
		{name: "not found", status: http.StatusNotFound, doc: `{}`, wantErr: "unexpected status 404"},
		{name: "not JSON", status: http.StatusOK, doc: `<html>`, wantErr: "parse JWK set"},
		{name: "keys not an array", status: http.StatusOK, doc: `{"keys":{}}`, wantErr: "parse JWK set"},
		{name: "empty set", status: http.StatusOK, doc: `{"keys":[]}`, wantErr: "no usable"},
		{name: "only unusable keys", status: http.StatusOK, doc: `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`, wantErr: "no usable"},
		{name: "too large", status: http.StatusOK, doc: big, wantErr: "larger than"},
		{name: "valid", status: http.StatusOK, doc: mustJSON(t, map[string]any{"keys": []any{ecJWK("a", &k.ec256.PublicKey)}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newJWKSServer(t)
			srv.setDoc([]byte(tt.doc))
			srv.status.Store(int32(tt.status))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			j, err := NewJWKS(ctx, srv.URL, srv.Client(), time.Hour, nil)
			if tt.wantErr == "" {
				if err != nil || j.Len() != 1 {
					t.Fatalf("NewJWKS: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := NewJWKS(context.Background(), url, nil, time.Hour, nil)
		if err == nil || !strings.Contains(err.Error(), "fetch JWKS") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t, ecJWK("a", &k.ec256.PublicKey))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := NewJWKS(ctx, srv.URL, srv.Client(), time.Hour, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestParseJWKRejects covers malformed members of individual keys.
func TestParseJWKRejects(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	ec := ecJWK("e", &k.ec256.PublicKey)
	small := map[string]any{"kty": "RSA", "n": b64u(make([]byte, 128)), "e": "AQAB"}
	small["n"] = b64u(append([]byte{0x80}, make([]byte, 127)...))
	for name, jwk := range map[string]map[string]any{
		"point not on the curve":   with(ec, "y", b64u(make([]byte, 32))),
		"short coordinate":         with(ec, "x", b64u(make([]byte, 31))),
		"padded base64":            with(ec, "x", base64.URLEncoding.EncodeToString(make([]byte, 32))),
		"RSA exponent 1":           with(rsaJWK("r", &k.rsa.PublicKey), "e", "AQ"),
		"RSA even exponent":        with(rsaJWK("r", &k.rsa.PublicKey), "e", "AAI"),
		"RSA exponent too large":   with(rsaJWK("r", &k.rsa.PublicKey), "e", b64u([]byte{1, 0, 0, 0, 1})),
		"1024-bit RSA":             small,
		"short Ed25519":            {"kty": "OKP", "crv": "Ed25519", "x": b64u(make([]byte, 31))},
		"empty oct":                {"kty": "oct", "k": ""},
		"unsupported alg":          with(ec, "alg", "ES256K"),
		"alg none":                 with(octJWK("n", []byte("s")), "alg", "none"),
		"alg for another key type": with(ec, "alg", "EdDSA"),
	} {
		raw, _ := json.Marshal(jwk)
		if _, err := parseJWK(raw); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	raw, _ := json.Marshal(ec)
	if _, err := parseJWK(raw); err != nil {
		t.Errorf("valid EC key rejected: %v", err)
	}
}

// TestZeroJWKS checks that a JWKS not made by NewJWKS rejects tokens instead
// of panicking.
func TestZeroJWKS(t *testing.T) {
	t.Parallel()
	v := mustVerifier(t, VerifierConfig{JWKS: &JWKS{}, Now: fixed(t0)})
	for _, h := range []map[string]any{{"alg": "HS256"}, {"alg": "HS256", "kid": "a"}} {
		if _, err := v.Verify(signRaw(t, h, `{}`, []byte(secret)), ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("header %v: err = %v", h, err)
		}
	}
}
