package hub

// Tests of what a hostile client may try over HTTP: each one failed
// against the hub before its fix.

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// signRawClaims signs claims given as JSON text with the test key, so that
// they may hold a member twice.
func signRawClaims(tb testing.TB, header, claims string) string {
	tb.Helper()
	b64 := base64.RawURLEncoding
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims))
	sig, err := jwt.SigningMethodHS256.Sign(input, testKey)
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

func TestTokensWithDuplicateMembersAreRefused(t *testing.T) {
	t.Parallel()
	th := newTestHub(t, nil)
	for name, claims := range map[string]string{
		"legacy claim twice":    `{"mercure":{"publish":[]},"mercure":{"publish":["*"]}}`,
		"legacy member twice":   `{"mercure":{"publish":[],"publish":["*"]}}`,
		"access token topic":    `{"iss":"mercurectl","aud":"` + th.url + `","exp":4102444800,"authorization_details":[{"type":"https://mercure.rocks/authorization-detail","actions":["publish"],"topics":[{"match":"https://example.com/a","match":"*"}]}]}`,
		"access token audience": `{"iss":"mercurectl","aud":"https://elsewhere.example","aud":"` + th.url + `","exp":4102444800,"authorization_details":[{"type":"https://mercure.rocks/authorization-detail","actions":["publish"],"topics":[{"match":"*"}]}]}`,
	} {
		typ := "JWT"
		if name[:6] == "access" {
			typ = "at+jwt"
		}
		tok := signRawClaims(t, `{"alg":"HS256","typ":"`+typ+`"}`, claims)
		resp, body := th.publish(t, tok, url.Values{"topic": {"https://example.com/a"}, "data": {"x"}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: publish got %d %q, want 401", name, resp.StatusCode, body)
		}
	}
	if n := len(confStored(t, th)); n != 0 {
		t.Fatalf("%d updates stored, want none", n)
	}
}
