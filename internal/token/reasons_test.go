package token

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Every refusal says precisely why, in words an operator can act on, and
// never quotes the token or the key.
func TestRefusalReasonsAreSpecific(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	at := func(claims string) string { return hs256(t, "at+jwt", claims) }
	cases := []struct {
		name, token, audience, want string
		issuers                     []string
	}{
		{name: "expired minutes ago", token: hs256(t, "", `{"exp":1699999820,"mercure":{}}`),
			want: "invalid token: token expired 3m ago (exp 2023-11-14T22:10:20Z)"},
		{name: "expired seconds ago", token: hs256(t, "", `{"exp":1699999999,"mercure":{}}`),
			want: "invalid token: token expired 1s ago"},
		{name: "expired days ago", token: hs256(t, "", `{"exp":1699000000,"mercure":{}}`),
			want: "invalid token: token expired 12d ago"},
		{name: "not valid yet", token: hs256(t, "", `{"nbf":1700000300,"mercure":{}}`),
			want: "invalid token: token is not valid yet: its nbf is in 5m (2023-11-14T22:18:20Z)"},
		{name: "audience is another hub", audience: hubAud,
			token: at(`{"aud":"https://a.example/.well-known/mercure","exp":1700003600}`),
			want:  "invalid token: audience https://a.example/.well-known/mercure is not " + hubAud},
		{name: "audiences without this hub", audience: hubAud,
			token: at(`{"aud":["https://a.example","https://b.example"],"exp":1700003600}`),
			want:  "invalid token: audience [https://a.example, https://b.example] does not include " + hubAud},
		{name: "no audience", audience: hubAud, token: at(`{"exp":1700003600}`),
			want: "invalid token: token has no audience (aud); this hub is " + hubAud},
		{name: "untrusted issuer", issuers: []string{issuer, "https://other.example"},
			token: at(`{"iss":"https://evil.example","exp":1700003600}`),
			want:  `invalid token: token issuer https://evil.example is not trusted; trusted: https://issuer.example, https://other.example`},
		{name: "another algorithm", token: signRaw(t, map[string]any{"alg": "RS256"}, `{}`, k.rsa),
			want: `invalid token: unexpected signing algorithm "RS256": this hub accepts HS256 only`},
		{name: "not a JWT", token: "not-a-token",
			want: "invalid token: token is malformed: token contains an invalid number of segments"},
		{name: "bad base64", token: "e30.!!!.x",
			want: "invalid token: token is malformed: could not base64 decode claim"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := mustVerifier(t, VerifierConfig{Key: []byte(secret), Issuers: tc.issuers, Now: fixed(t0)})
			_, err := v.Verify(tc.token, tc.audience)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not match ErrInvalid", err)
			}
			if strings.Contains(err.Error(), secret) || (len(tc.token) > 20 && strings.Contains(err.Error(), tc.token[:20])) {
				t.Errorf("%v quotes the key or the token", err)
			}
		})
	}
}

// A signature that does not verify matches ErrSignature, so that the hub
// can name the key it tried.
func TestBadSignatureMatchesErrSignature(t *testing.T) {
	t.Parallel()
	v := mustVerifier(t, VerifierConfig{Key: []byte(secret), Now: fixed(t0)})
	tok := signRaw(t, map[string]any{"alg": "HS256"}, `{"mercure":{}}`, []byte("another secret"))
	_, err := v.Verify(tok, "")
	if !errors.Is(err, ErrSignature) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrSignature and ErrInvalid", err)
	}
	if _, err := v.Verify(hs256(t, "", `{"exp":1,"mercure":{}}`), ""); errors.Is(err, ErrSignature) {
		t.Fatalf("an expired token matches ErrSignature: %v", err)
	}
}

func TestSince(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "0s", 1400 * time.Millisecond: "1s", 59 * time.Second: "59s", 59*time.Second + 600*time.Millisecond: "1m",
		time.Minute: "1m", 2*time.Minute + 59*time.Second: "3m", 3*time.Minute + 20*time.Second: "3m",
		time.Hour: "1h", 47 * time.Hour: "47h", 48 * time.Hour: "2d", 400 * 24 * time.Hour: "400d",
	} {
		if got := Since(d); got != want {
			t.Errorf("Since(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestDescribeNamesTheKeyKind(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	for _, tc := range []struct {
		alg  string
		key  []byte
		want string
	}{
		{"HS256", []byte(secret), "HMAC secret (HS256)"},
		{"RS256", pkixPEM(t, &k.rsa.PublicKey), "RSA public key (RS256)"},
		{"ES256", pkixPEM(t, &k.ec256.PublicKey), "ECDSA public key (ES256)"},
		{"EdDSA", pkixPEM(t, k.ed.Public()), "Ed25519 public key (EdDSA)"},
	} {
		v := mustVerifier(t, VerifierConfig{Alg: tc.alg, Key: tc.key})
		if got := v.Describe(); got != tc.want || strings.Contains(got, secret) {
			t.Errorf("Describe() = %q, want %q", got, tc.want)
		}
	}
}
