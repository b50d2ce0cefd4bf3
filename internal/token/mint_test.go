package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mercurectl/mercurectl/internal/match"
)

// TestMintVerifyRoundTrip mints tokens in both formats with each key type and
// verifies them (docs/protocol.md#authorization).
func TestMintVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	keyPairs := []struct {
		alg       string
		sign, pub []byte
	}{
		{"HS256", []byte(secret), []byte(secret)},
		{"HS512", []byte(secret), []byte(secret)},
		{"RS256", pkcs8PEM(t, k.rsa), pkixPEM(t, &k.rsa.PublicKey)},
		{"PS256", pkcs8PEM(t, k.rsa), pemBlock("CERTIFICATE", k.rsaCert)},
		{"ES256", pkcs8PEM(t, k.ec256), pkixPEM(t, &k.ec256.PublicKey)},
		{"ES384", pkcs8PEM(t, k.ec384), pkixPEM(t, &k.ec384.PublicKey)},
		{"ES512", pkcs8PEM(t, k.ec521), pkcs8PEM(t, k.ec521)},
		{"EdDSA", pkcs8PEM(t, k.ed), pkixPEM(t, k.ed.Public())},
	}
	for _, kp := range keyPairs {
		for _, format := range []Format{FormatLegacy, FormatAccessToken} {
			t.Run(kp.alg+"/"+formatName(format), func(t *testing.T) {
				t.Parallel()
				tok, err := Mint(MintOptions{
					Format: format, Alg: kp.alg, Key: kp.sign,
					Publish:   []string{"https://example.com/books/1", "https://example.com/authors/:id"},
					Subscribe: []string{"*"},
					Payload:   json.RawMessage(`{"user": "alice"}`),
					TTL:       time.Hour, Audience: hubAud, Subject: "alice",
					Now: fixed(t0),
				})
				if err != nil {
					t.Fatal(err)
				}
				v := mustVerifier(t, VerifierConfig{Alg: kp.alg, Key: kp.pub, Issuers: []string{DefaultMintIdentity}, Now: fixed(t0.Add(59 * time.Minute))})
				c, err := v.Verify(tok, hubAud)
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				if c.Format != format || c.Subject != "alice" || !c.Expiry.Equal(t0.Add(time.Hour)) {
					t.Errorf("claims = %+v", c)
				}
				wantPub := []Selector{{Match: "https://example.com/books/1"}, {Match: "https://example.com/authors/:id"}}
				wantSub := []Selector{{Match: "*"}}
				if format == FormatAccessToken {
					wantPub[0].Type, wantPub[1].Type, wantSub[0].Type = match.TypeExact, match.TypeURLPattern, match.TypeExact
					if len(c.SubscribeDetails) != 1 || string(c.SubscribeDetails[0].Payload) != `{"user":"alice"}` || c.ClientID != DefaultMintIdentity {
						t.Errorf("details = %+v", c)
					}
				} else if string(c.Payload) != `{"user":"alice"}` {
					t.Errorf("payload = %s", c.Payload)
				}
				if !reflect.DeepEqual(c.Publish, wantPub) || !reflect.DeepEqual(c.Subscribe, wantSub) {
					t.Errorf("publish %+v subscribe %+v", c.Publish, c.Subscribe)
				}
				// docs/protocol.md#token-expiry: the same token is refused at exp.
				v2 := mustVerifier(t, VerifierConfig{Alg: kp.alg, Key: kp.pub, Now: fixed(t0.Add(time.Hour))})
				if _, err := v2.Verify(tok, hubAud); !errors.Is(err, ErrInvalid) {
					t.Errorf("verify at exp: %v", err)
				}
			})
		}
	}
}

func formatName(f Format) string {
	if f == FormatAccessToken {
		return "rfc9068"
	}
	return "legacy"
}

// TestMintLegacyShape checks a minted draft-07 token's exact JSON, decoded
// independently of the package.
func TestMintLegacyShape(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 250_000_000) // exp is rounded up
	tok, err := Mint(MintOptions{
		Key:       []byte(secret),
		Publish:   []string{"a", "https://e/{id}"},
		Subscribe: []string{"*"},
		Payload:   json.RawMessage(` {"n": [1, 2]} `),
		TTL:       90 * time.Minute,
		Now:       fixed(now),
	})
	if err != nil {
		t.Fatal(err)
	}
	header, claims := decodePart(t, tok, 0), decodePart(t, tok, 1)
	if want := map[string]any{"alg": "HS256", "typ": "JWT"}; !reflect.DeepEqual(header, want) {
		t.Errorf("header = %v, want %v", header, want)
	}
	want := map[string]any{
		"iat": 1700000000.0,
		"exp": 1700005401.0,
		"mercure": map[string]any{
			"publish":   []any{"a", "https://e/{id}"},
			"subscribe": []any{"*"},
			"payload":   map[string]any{"n": []any{1.0, 2.0}},
		},
	}
	if !reflect.DeepEqual(claims, want) {
		t.Errorf("claims = %v\nwant %v", claims, want)
	}

	// Optional members appear only when given; no TTL means no exp.
	tok, err = Mint(MintOptions{Key: []byte(secret), Subscribe: []string{"x"}, Issuer: "me", Audience: "you", Subject: "s", Now: fixed(t0)})
	if err != nil {
		t.Fatal(err)
	}
	claims = decodePart(t, tok, 1)
	want = map[string]any{"iat": 1700000000.0, "iss": "me", "aud": "you", "sub": "s", "mercure": map[string]any{"subscribe": []any{"x"}}}
	if !reflect.DeepEqual(claims, want) {
		t.Errorf("claims = %v\nwant %v", claims, want)
	}

	// No grants at all: an empty mercure object.
	tok, err = Mint(MintOptions{Key: []byte(secret), Now: fixed(t0)})
	if err != nil {
		t.Fatal(err)
	}
	if claims := decodePart(t, tok, 1); !reflect.DeepEqual(claims, map[string]any{"iat": 1700000000.0, "mercure": map[string]any{}}) {
		t.Errorf("claims = %v", claims)
	}
}

// TestMintAccessTokenShape checks a minted RFC 9068 token's exact JSON,
// decoded independently of the package (docs/cli.md#token-mint).
func TestMintAccessTokenShape(t *testing.T) {
	t.Parallel()
	tok, err := Mint(MintOptions{
		Format: FormatAccessToken, Key: []byte(secret), Alg: "HS384", KeyID: "k1",
		Publish:   []string{"https://e/books/:id"},
		Subscribe: []string{"*", "https://e/*", "urn:x:y"},
		Payload:   json.RawMessage(`{"user":"alice"}`),
		TTL:       time.Hour, Audience: hubAud,
		Now: fixed(t0),
	})
	if err != nil {
		t.Fatal(err)
	}
	header, claims := decodePart(t, tok, 0), decodePart(t, tok, 1)
	if want := map[string]any{"alg": "HS384", "typ": "at+jwt", "kid": "k1"}; !reflect.DeepEqual(header, want) {
		t.Errorf("header = %v, want %v", header, want)
	}
	jti, ok := claims["jti"].(string)
	if u, err := uuid.Parse(jti); !ok || err != nil || u.Version() != 4 {
		t.Errorf("jti = %v, want a random UUID", claims["jti"])
	}
	delete(claims, "jti")
	want := map[string]any{
		"iss": "mercurectl", "aud": hubAud, "sub": "mercurectl", "client_id": "mercurectl",
		"iat": 1700000000.0, "exp": 1700003600.0,
		"authorization_details": []any{
			map[string]any{
				"type": DetailType, "actions": []any{"publish"},
				"topics": []any{map[string]any{"match": "https://e/books/:id", "match_type": "urlpattern"}},
			},
			map[string]any{
				"type": DetailType, "actions": []any{"subscribe"},
				"topics": []any{
					map[string]any{"match": "*", "match_type": "exact"},
					map[string]any{"match": "https://e/*", "match_type": "urlpattern"},
					map[string]any{"match": "urn:x:y", "match_type": "exact"},
				},
				"payload": map[string]any{"user": "alice"},
			},
		},
	}
	if !reflect.DeepEqual(claims, want) {
		t.Errorf("claims = %v\nwant %v", claims, want)
	}

	// Entries without topics are omitted; explicit identities win.
	tok, err = Mint(MintOptions{Format: FormatAccessToken, Key: []byte(secret), Subscribe: []string{"s"}, TTL: time.Minute,
		Audience: "a", Issuer: "i", Subject: "u", ClientID: "c", Now: fixed(t0)})
	if err != nil {
		t.Fatal(err)
	}
	claims = decodePart(t, tok, 1)
	details := claims["authorization_details"].([]any)
	if len(details) != 1 || details[0].(map[string]any)["actions"].([]any)[0] != "subscribe" {
		t.Errorf("details = %v", details)
	}
	if _, has := details[0].(map[string]any)["payload"]; has {
		t.Error("payload written although none was given")
	}
	if claims["iss"] != "i" || claims["sub"] != "u" || claims["client_id"] != "c" || claims["aud"] != "a" {
		t.Errorf("claims = %v", claims)
	}
	if _, has := claims["mercure"]; has {
		t.Error("access token carries a mercure claim")
	}

	// Two tokens minted alike differ by jti.
	tok2, err := Mint(MintOptions{Format: FormatAccessToken, Key: []byte(secret), Subscribe: []string{"s"}, TTL: time.Minute,
		Audience: "a", Issuer: "i", Subject: "u", ClientID: "c", Now: fixed(t0)})
	if err != nil || tok2 == tok {
		t.Errorf("second token identical or failed: %v", err)
	}
}

func TestMintExtra(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	tok, err := Mint(MintOptions{Key: []byte(secret), Subscribe: []string{"*"}, Extra: json.RawMessage(`{"nbf":1700000100,"custom":{"a":1}}`), Now: fixed(t0)})
	if err != nil {
		t.Fatal(err)
	}
	if c := decodePart(t, tok, 1); c["nbf"] != 1700000100.0 || !reflect.DeepEqual(c["custom"], map[string]any{"a": 1.0}) {
		t.Errorf("claims = %v", c)
	}
	v := mustVerifier(t, VerifierConfig{Key: []byte(secret), Now: clk.now})
	if _, err := v.Verify(tok, ""); err == nil || !strings.Contains(err.Error(), "not valid yet") {
		t.Errorf("before nbf: %v", err)
	}
	clk.add(100 * time.Second)
	if _, err := v.Verify(tok, ""); err != nil {
		t.Errorf("at nbf: %v", err)
	}
}

func TestMintErrors(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	base := func(mod func(*MintOptions)) MintOptions {
		o := MintOptions{Format: FormatAccessToken, Key: []byte(secret), Subscribe: []string{"*"}, TTL: time.Hour, Audience: hubAud}
		mod(&o)
		return o
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = "t"
	}
	tests := []struct {
		name    string
		opts    MintOptions
		wantErr string
	}{
		{name: "access token without audience", opts: base(func(o *MintOptions) { o.Audience = "" }), wantErr: "audience"},
		{name: "access token without TTL", opts: base(func(o *MintOptions) { o.TTL = 0 }), wantErr: "exp is required"},
		{name: "negative TTL", opts: base(func(o *MintOptions) { o.Format = FormatLegacy; o.TTL = -time.Second }), wantErr: "negative"},
		{name: "empty selector", opts: base(func(o *MintOptions) { o.Publish = []string{""} }), wantErr: "empty"},
		{name: "invalid payload", opts: base(func(o *MintOptions) { o.Payload = json.RawMessage(`{`) }), wantErr: "not valid JSON"},
		{name: "access token payload not an object", opts: base(func(o *MintOptions) { o.Payload = json.RawMessage(`"x"`) }), wantErr: "JSON object"},
		{name: "101 access-token topics", opts: base(func(o *MintOptions) { o.Subscribe = many }), wantErr: "at most 100"},
		{name: "1001 legacy selectors", opts: base(func(o *MintOptions) { o.Format = FormatLegacy; o.Publish = slices.Repeat([]string{"t"}, 1001) }), wantErr: "at most 1000"},
		{name: "extra replaces a grant", opts: base(func(o *MintOptions) { o.Extra = json.RawMessage(`{"authorization_details":[]}`) }), wantErr: `"authorization_details"`},
		{name: "extra replaces exp", opts: base(func(o *MintOptions) { o.Extra = json.RawMessage(`{"exp":1}`) }), wantErr: `"exp"`},
		{name: "extra not an object", opts: base(func(o *MintOptions) { o.Extra = json.RawMessage(`[1]`) }), wantErr: "JSON object"},
		{name: "alg none", opts: base(func(o *MintOptions) { o.Alg = "none" }), wantErr: `"none"`},
		{name: "PEM key for HS256", opts: base(func(o *MintOptions) { o.Key = pkcs8PEM(t, k.ec256) }), wantErr: "shared secret"},
		{name: "public key for RS256", opts: base(func(o *MintOptions) { o.Alg = "RS256"; o.Key = pkixPEM(t, &k.rsa.PublicKey) }), wantErr: "private key"},
		{name: "unknown format", opts: base(func(o *MintOptions) { o.Format = 7 }), wantErr: "unknown format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok, err := Mint(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Mint = %q, %v; want error %q", tok, err, tt.wantErr)
			}
		})
	}
}

func TestGuessMatchType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		selector, want string
	}{
		{"*", match.TypeExact},
		{"https://example.com/books/1", match.TypeExact},
		{"/books/:id", match.TypeURLPattern},
		{"https://example.com/*", match.TypeURLPattern},
		{"https://example.com/books/*.json", match.TypeURLPattern},
		{":id", match.TypeURLPattern},
		{"https://example.com:8443/books", match.TypeExact},
		{"urn:isbn:123", match.TypeExact},
		{"https://example.com/books/{id}", match.TypeExact},
		{"https://example.com/a?x=:y", match.TypeExact},
		{"https://example.com/a:b/c", match.TypeExact},
		{"", match.TypeExact},
	}
	for _, tt := range tests {
		if got := GuessMatchType(tt.selector); got != tt.want {
			t.Errorf("GuessMatchType(%q) = %q, want %q", tt.selector, got, tt.want)
		}
	}
}

func TestInspect(t *testing.T) {
	t.Parallel()
	tok, err := Mint(MintOptions{Key: []byte(secret), Publish: []string{"a"}, Now: fixed(t0)})
	if err != nil {
		t.Fatal(err)
	}
	h, c, err := Inspect("  " + tok + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if string(h) != `{"alg":"HS256","typ":"JWT"}` || string(c) != `{"iat":1700000000,"mercure":{"publish":["a"]}}` {
		t.Errorf("header %s claims %s", h, c)
	}
	// Inspect does not verify: an expired token with a bad signature decodes.
	parts := strings.Split(hs256(t, "", `{"exp":1}`), ".")
	if _, c, err := Inspect(parts[0] + "." + parts[1] + ".AAAA"); err != nil || string(c) != `{"exp":1}` {
		t.Errorf("unsigned inspect: %s %v", c, err)
	}

	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	p := strings.Split(tok, ".")
	for _, bad := range []string{
		"",
		"abc",
		p[0] + "." + p[1],
		tok + ".x",
		"!." + p[1] + "." + p[2],
		p[0] + "." + p[1] + "=." + p[2],
		p[0] + "." + p[1] + "." + p[2] + "=",
		b64(`[1]`) + "." + p[1] + "." + p[2],
		p[0] + "." + b64(`"x"`) + "." + p[2],
		p[0] + "." + b64(`{"a":`) + "." + p[2],
		p[0] + "." + b64(`{} {}`) + "." + p[2],
		p[0] + "." + b64(`null`) + "." + p[2],
	} {
		if h, c, err := Inspect(bad); !errors.Is(err, ErrMalformed) || h != nil || c != nil {
			t.Errorf("Inspect(%q) = %s, %s, %v; want ErrMalformed", bad, h, c, err)
		}
	}
}
