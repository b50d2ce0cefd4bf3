package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/match"
)

// correctlySigned checks, without the package or the jwt library, that raw is
// an HS256 JWS over its first two parts made with the test secret.
func correctlySigned(raw string) bool {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return false
	}
	b64 := base64.RawURLEncoding.Strict()
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return false
	}
	var h map[string]any
	if json.Unmarshal(hb, &h) != nil || h["alg"] != "HS256" {
		return false
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	return hmac.Equal(sig, mac.Sum(nil))
}

// FuzzVerify feeds arbitrary strings, seeded with valid tokens of both
// formats, to a Verifier: it must never panic, every error must wrap
// ErrInvalid, nothing that is not correctly signed may be accepted, and the
// cache must not change any outcome (docs/protocol.md#access-tokens).
func FuzzVerify(f *testing.F) {
	seeds := []string{
		hs256(f, "", `{"mercure":{"publish":["*"],"subscribe":["a"],"payload":{"x":1}}}`),
		hs256(f, "JWT", `{"exp":1700003600,"mercure":{"subscribe":["https://e/{id}"]}}`),
		hs256(f, "at+jwt", accessClaims(`[{`+dt+`,"actions":["publish","subscribe"],"topics":[{"match":"a"},{"match":"/b/:id","match_type":"urlpattern"}],"payload":{"u":1}}]`)),
		hs256(f, "application/at+jwt", `{"aud":"`+hubAud+`","exp":1700003600}`),
		signRawNone(`{"alg":"none"}`, `{"mercure":{"publish":["*"]}}`),
		"", ".", "..", "a.b.c", "eyJ.eyJ.", strings.Repeat("A", 100),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	cached := mustVerifier(f, VerifierConfig{Key: []byte(secret), Now: fixed(t0), CacheSize: 64})
	uncached := mustVerifier(f, VerifierConfig{Key: []byte(secret), Now: fixed(t0), CacheSize: -1})
	f.Fuzz(func(t *testing.T, raw string) {
		c1, err1 := cached.Verify(raw, hubAud)
		c2, err2 := cached.Verify(raw, hubAud) // a possible cache hit
		c3, err3 := uncached.Verify(raw, hubAud)
		for _, err := range []error{err1, err2, err3} {
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
		}
		if (err1 == nil) != (err2 == nil) || (err1 == nil) != (err3 == nil) {
			t.Fatalf("outcomes differ: %v / %v / %v", err1, err2, err3)
		}
		if err1 != nil {
			return
		}
		if !correctlySigned(raw) {
			t.Fatalf("accepted a token that is not correctly signed: %q", raw)
		}
		if c1 == nil || c2 == nil || c3 == nil || c1.Format != c3.Format || len(c1.Publish) != len(c3.Publish) || len(c2.Subscribe) != len(c3.Subscribe) {
			t.Fatalf("claims differ: %+v / %+v / %+v", c1, c2, c3)
		}
	})
}

// FuzzVerifyClaims signs arbitrary claim sets correctly, so that the fuzzer
// explores the claim rules (docs/protocol.md#authorization) rather than the
// signature check. Whatever is accepted must respect the rules.
func FuzzVerifyClaims(f *testing.F) {
	f.Add("at+jwt", accessClaims(`[{`+dt+`,"actions":["publish","subscribe"],"topics":[{"match":"a"},{"match":"/b/:id","match_type":"urlpattern"}],"payload":{"u":1}}]`))
	f.Add("at+jwt", accessClaims(`[{"type":"x"},{`+dt+`,"actions":["read"],"topics":[{"match":"a","match_type":"exact"}]}]`))
	f.Add("JWT", `{"exp":1700003600,"nbf":1600000000,"mercure":{"publish":["*"],"subscribe":["a"],"payload":"p"}}`)
	f.Add("", `{"mercure":null,"aud":["a","b"],"iss":"i","sub":"s"}`)
	v := mustVerifier(f, VerifierConfig{Key: []byte(secret), Issuers: []string{issuer}, Now: fixed(t0)})
	f.Fuzz(func(t *testing.T, typ, claims string) {
		h := map[string]any{"alg": "HS256"}
		if typ != "" {
			h["typ"] = typ
		}
		c, err := v.Verify(signRaw(t, h, claims, []byte(secret)), hubAud)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if !c.Expiry.IsZero() && !t0.Before(c.Expiry) {
			t.Fatalf("accepted an expired token: %v", c.Expiry)
		}
		if c.Format == FormatLegacy {
			if len(c.Publish) > MaxLegacySelectors || len(c.Subscribe) > MaxLegacySelectors || c.SubscribeDetails != nil {
				t.Fatalf("legacy claims break the rules: %+v", c)
			}
			for _, s := range append(append([]Selector(nil), c.Publish...), c.Subscribe...) {
				if s.Type != "" {
					t.Fatalf("legacy selector with a type: %+v", s)
				}
			}
			return
		}
		if c.Format != FormatAccessToken || c.Expiry.IsZero() || c.Issuer != issuer || c.Payload != nil {
			t.Fatalf("access token breaks the rules: %+v", c)
		}
		if len(c.Publish) > MaxDetailTopics || len(c.Subscribe) > MaxDetailTopics || len(c.SubscribeDetails) > MaxDetails {
			t.Fatalf("caps exceeded: %+v", c)
		}
		for _, s := range append(append([]Selector(nil), c.Publish...), c.Subscribe...) {
			if s.Match == "" || (s.Type != match.TypeExact && s.Type != match.TypeURLPattern) {
				t.Fatalf("bad selector accepted: %+v", s)
			}
		}
		for _, d := range c.SubscribeDetails {
			if len(d.Actions) == 0 || len(d.Topics) == 0 || (d.Payload != nil && kind(d.Payload) != '{') {
				t.Fatalf("bad detail accepted: %+v", d)
			}
		}
	})
}

// FuzzInspect checks that Inspect never panics and that what it accepts is
// three canonical base64url parts whose first two are JSON objects.
func FuzzInspect(f *testing.F) {
	tok, err := Mint(MintOptions{Key: []byte(secret), Publish: []string{"*"}, TTL: time.Hour, Now: fixed(t0)})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{tok, " " + tok + "\n", "", "a.b.c", "e30.e30.", "e30.e30", "W10.e30.", "e30.bnVsbA."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		h, c, err := Inspect(raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || h != nil || c != nil {
				t.Fatalf("Inspect = %q, %q, %v", h, c, err)
			}
			return
		}
		parts := strings.Split(strings.TrimSpace(raw), ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %d parts", len(parts))
		}
		b64 := base64.RawURLEncoding
		if b64.EncodeToString(h) != parts[0] || b64.EncodeToString(c) != parts[1] {
			t.Fatal("decoded parts do not re-encode to the input")
		}
		for _, part := range [][]byte{h, c} {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(part, &m); err != nil {
				t.Fatalf("accepted a part that is not a JSON object: %q", part)
			}
		}
	})
}
