package conformance

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mercurectl/mercurectl/internal/client"
	"github.com/mercurectl/mercurectl/internal/match"
	"github.com/mercurectl/mercurectl/internal/token"
)

// caseTokenTTL is the lifetime of the tokens minted for a case: longer than
// any case, short enough not to matter if one leaks into a log.
const caseTokenTTL = 10 * time.Minute

// sel is a topic selector or a grant: its value and match type (exact,
// urlpattern or template; draft-07 ignores the type, the hub decides).
type sel struct{ v, typ string }

func exact(v string) sel   { return sel{v, match.TypeExact} }
func pattern(v string) sel { return sel{v, match.TypeURLPattern} }
func tmpl(v string) sel    { return sel{v, "template"} }

// mintOpts tunes a minted token.
type mintOpts struct {
	ttl      time.Duration // 0: caseTokenTTL
	payload  json.RawMessage
	audience string // "": the run's audience
}

// mint signs a token for generation g that grants publish on pub and
// subscribe on sub: a legacy `mercure`-claim token for draft-07, an RFC 9068
// access token for draft-08.
func (r *runner) mint(g client.Protocol, pub, sub []sel, o mintOpts) (string, error) {
	if r.signingKey == nil {
		return "", errors.New("no signing key")
	}
	mo := token.MintOptions{Alg: r.o.Alg, Key: r.o.Key, TTL: o.ttl, Payload: o.payload, MatchTypes: map[string]string{}}
	if mo.TTL == 0 {
		mo.TTL = caseTokenTTL
	}
	for _, s := range pub {
		mo.Publish = append(mo.Publish, s.v)
		mo.MatchTypes[s.v] = s.typ
	}
	for _, s := range sub {
		mo.Subscribe = append(mo.Subscribe, s.v)
		mo.MatchTypes[s.v] = s.typ
	}
	if g == client.Protocol08 {
		mo.Format = token.FormatAccessToken
		mo.Issuer = r.o.Issuer
		mo.Audience = o.audience
		if mo.Audience == "" {
			aud, err := r.audience()
			if err != nil {
				return "", err
			}
			mo.Audience = aud
		}
	}
	return token.Mint(mo)
}

// audience is the aud of draft-08 tokens: --audience, else the resource the
// hub advertises.
func (r *runner) audience() (string, error) {
	switch {
	case r.o.Audience != "":
		return r.o.Audience, nil
	case r.md != nil:
		return r.md.Resource, nil
	}
	return "", errors.New("a draft-08 token needs an audience and the hub advertises no resource: pass --audience")
}

// craft signs a token with exactly this header and these claims, for the
// cases that check what a hub refuses. alg "none" gives an unsigned token.
func (r *runner) craft(header, claims map[string]any) (string, error) {
	hb, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	b64 := base64.RawURLEncoding
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	alg, _ := header["alg"].(string)
	if alg == "none" {
		return input + ".", nil
	}
	m := jwt.GetSigningMethod(alg)
	if m == nil || r.signingKey == nil {
		return "", fmt.Errorf("cannot sign with %q", alg)
	}
	sig, err := m.Sign(input, r.signingKey)
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// accessClaims returns the claims of a valid draft-08 access token granting
// action on the exact topics, for crafted variants to break one thing.
func (r *runner) accessClaims(action string, topics ...string) (map[string]any, error) {
	aud, err := r.audience()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var ts []map[string]string
	for _, t := range topics {
		ts = append(ts, map[string]string{"match": t, "match_type": match.TypeExact})
	}
	iss := r.o.Issuer
	if iss == "" {
		iss = token.DefaultMintIdentity
	}
	return map[string]any{
		"iss": iss, "aud": aud, "sub": token.DefaultMintIdentity, "client_id": token.DefaultMintIdentity,
		"iat": now.Unix(), "exp": now.Add(caseTokenTTL).Unix(), "jti": newRunID(),
		"authorization_details": []any{map[string]any{
			"type": token.DetailType, "actions": []string{action}, "topics": ts,
		}},
	}, nil
}

// legacyClaims returns the claims of a valid draft-07 token granting action
// on the selectors.
func legacyClaims(action string, selectors ...string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iat": now.Unix(), "exp": now.Add(caseTokenTTL).Unix(),
		"mercure": map[string]any{action: selectors},
	}
}

// tamper returns tok with a broken signature: a token no hub may accept,
// whatever its key.
func tamper(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 || i == len(tok)-1 {
		return tok + "x"
	}
	sig := []byte(tok[i+1:])
	// Change the first character of the signature, keeping it base64url.
	if sig[0] == 'A' {
		sig[0] = 'B'
	} else {
		sig[0] = 'A'
	}
	return tok[:i+1] + string(sig)
}

// tokenExpiry returns the exp of a token, read without verification.
func tokenExpiry(tok string) (time.Time, bool) {
	_, claims, err := token.Inspect(tok)
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(claims, &c) != nil || c.Exp == nil {
		return time.Time{}, false
	}
	return time.Unix(int64(*c.Exp), 0), true
}

// tokenGeneration returns the generation a ready token is for: draft-08 for
// an RFC 9068 access token (header typ at+jwt), draft-07 for any other.
func tokenGeneration(tok string) client.Protocol {
	if f, err := token.FormatOf(tok); err == nil && f == token.FormatAccessToken {
		return client.Protocol08
	}
	return client.Protocol07
}

// parseSigningKey checks the key material for alg.
func parseSigningKey(alg string, key []byte) (any, error) {
	return token.ParseSigningKey(alg, key)
}
