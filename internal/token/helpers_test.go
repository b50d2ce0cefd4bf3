package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The JWKS refresher is a goroutine: every test must stop the ones it starts.
	goleak.VerifyTestMain(m)
}

// t0 is the fixed "now" of most tests; claims in tables are written relative
// to it: exp 1700003600 is an hour later, 1699999999 a second earlier.
var t0 = time.Unix(1_700_000_000, 0)

const (
	secret   = "!ChangeThisMercureHubJWTSecretKey!"
	hubAud   = "https://hub.example/.well-known/mercure"
	issuer   = "https://issuer.example"
	future   = "1700003600"
	pastTime = "1699999999"
)

// testKeys are generated once per test binary (RSA generation is slow).
type testKeys struct {
	rsa     *rsa.PrivateKey
	rsa2    *rsa.PrivateKey
	ec256   *ecdsa.PrivateKey
	ec256b  *ecdsa.PrivateKey
	ec384   *ecdsa.PrivateKey
	ec521   *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	ed2     ed25519.PrivateKey
	rsaCert []byte // DER of a self-signed certificate for rsa
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func getKeys(tb testing.TB) *testKeys {
	tb.Helper()
	keysOnce.Do(func() {
		var err error
		must := func(e error) {
			if e != nil && err == nil {
				err = e
			}
		}
		keys.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		k2, e := rsa.GenerateKey(rand.Reader, 2048)
		must(e)
		keys.rsa2 = k2
		for _, p := range []struct {
			dst   **ecdsa.PrivateKey
			curve elliptic.Curve
		}{{&keys.ec256, elliptic.P256()}, {&keys.ec256b, elliptic.P256()}, {&keys.ec384, elliptic.P384()}, {&keys.ec521, elliptic.P521()}} {
			k, e := ecdsa.GenerateKey(p.curve, rand.Reader)
			must(e)
			*p.dst = k
		}
		_, keys.ed, e = ed25519.GenerateKey(rand.Reader)
		must(e)
		_, keys.ed2, e = ed25519.GenerateKey(rand.Reader)
		must(e)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "issuer.example"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
		}
		keys.rsaCert, e = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &keys.rsa.PublicKey, keys.rsa)
		must(e)
		if err != nil {
			panic(err)
		}
	})
	return &keys
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkixPEM(tb testing.TB, pub any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return pemBlock("PUBLIC KEY", der)
}

func pkcs8PEM(tb testing.TB, priv any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der)
}

// signRaw builds a compact JWS from a header object and a claims string,
// exactly as given, so that tests can produce any claim shape.
func signRaw(tb testing.TB, header map[string]any, claims string, key any) string {
	tb.Helper()
	hb, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	b64 := base64.RawURLEncoding
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString([]byte(claims))
	alg, _ := header["alg"].(string)
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		tb.Fatalf("unknown alg %q", alg)
	}
	sig, err := m.Sign(input, key)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return input + "." + b64.EncodeToString(sig)
}

// hs256 signs claims with the test secret; typ "" omits the header.
func hs256(tb testing.TB, typ, claims string) string {
	tb.Helper()
	h := map[string]any{"alg": "HS256"}
	if typ != "" {
		h["typ"] = typ
	}
	return signRaw(tb, h, claims, []byte(secret))
}

// clock is a settable, concurrency-safe test clock.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration)     { c.ns.Add(int64(d)) }
func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

func mustVerifier(tb testing.TB, cfg VerifierConfig) *Verifier {
	tb.Helper()
	v, err := NewVerifier(cfg)
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// decodePart base64url-decodes one part of a compact token into a map,
// independently of the package under test.
func decodePart(tb testing.TB, tok string, i int) map[string]any {
	tb.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(parts[i])
	if err != nil {
		tb.Fatalf("part %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("part %d: %v", i, err)
	}
	return m
}
