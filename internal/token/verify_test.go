package token

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mercurectl/mercurectl/internal/match"
)

const dt = `"type":"https://mercure.rocks/authorization-detail"`

// accessClaims wraps authorization details in otherwise valid access-token
// claims.
func accessClaims(details string) string {
	return `{"iss":"` + issuer + `","aud":"` + hubAud + `","exp":` + future + `,"sub":"alice","client_id":"app","authorization_details":` + details + `}`
}

func TestVerifyAccessTokenRules(t *testing.T) {
	t.Parallel()
	pubSub := `[{` + dt + `,"actions":["publish","subscribe"],"topics":[{"match":"https://e/a"},{"match":"/b/:id","match_type":"urlpattern"}],"payload":{"u":1}}]`
	topicsN := func(n int) string {
		ts := make([]string, n)
		for i := range ts {
			ts[i] = fmt.Sprintf(`{"match":"t%d"}`, i)
		}
		return "[" + strings.Join(ts, ",") + "]"
	}
	detailsN := func(n int) string {
		ds := make([]string, n)
		for i := range ds {
			ds[i] = `{` + dt + `,"actions":["subscribe"],"topics":[{"match":"t"}]}`
		}
		return "[" + strings.Join(ds, ",") + "]"
	}
	detail := func(body string) string { return accessClaims(`[{` + dt + `,` + body + `}]`) }

	tests := []struct {
		name     string
		rule     string // the docs/protocol.md section of the rule checked
		typ      string
		claims   string
		audience string   // default hubAud; "-" for none
		issuers  []string // default {issuer}; use []string{} for none
		wantErr  string   // substring; "" means accepted
		check    func(t *testing.T, c *Claims)
	}{
		{name: "valid token", rule: "access-tokens", claims: accessClaims(pubSub), check: func(t *testing.T, c *Claims) {
			want := []Selector{{Match: "https://e/a", Type: match.TypeExact}, {Match: "/b/:id", Type: match.TypeURLPattern}}
			if c.Format != FormatAccessToken || !reflect.DeepEqual(c.Publish, want) || !reflect.DeepEqual(c.Subscribe, want) {
				t.Errorf("claims = %+v", c)
			}
			if len(c.SubscribeDetails) != 1 || string(c.SubscribeDetails[0].Payload) != `{"u":1}` || c.Payload != nil {
				t.Errorf("details = %+v, payload %s", c.SubscribeDetails, c.Payload)
			}
			if c.Subject != "alice" || c.ClientID != "app" || c.Issuer != issuer || !c.Expiry.Equal(time.Unix(1700003600, 0)) {
				t.Errorf("registered claims = %+v", c)
			}
		}},
		{name: "typ application/at+jwt", rule: "access-tokens", typ: "application/at+jwt", claims: accessClaims(pubSub), check: isFormat(FormatAccessToken)},
		{name: "typ compared case-insensitively", rule: "access-tokens", typ: "AT+JWT", claims: accessClaims(pubSub), check: isFormat(FormatAccessToken)},
		{name: "typ JWT means legacy rules", rule: "access-tokens", typ: "JWT", claims: accessClaims(pubSub), check: func(t *testing.T, c *Claims) {
			if c.Format != FormatLegacy || c.Publish != nil || c.Subscribe != nil {
				t.Errorf("claims = %+v", c)
			}
		}},
		{name: "missing exp", rule: "access-tokens", claims: `{"iss":"` + issuer + `","aud":"` + hubAud + `"}`, wantErr: "exp is required"},
		{name: "null exp counts as missing", rule: "access-tokens", claims: `{"iss":"` + issuer + `","aud":"` + hubAud + `","exp":null}`, wantErr: "exp is required"},
		{name: "expired", rule: "access-tokens", claims: `{"iss":"` + issuer + `","aud":"` + hubAud + `","exp":` + pastTime + `}`, wantErr: "expired"},
		{name: "exp equal to now is expired (no leeway)", rule: "access-tokens", claims: `{"iss":"` + issuer + `","aud":"` + hubAud + `","exp":1700000000}`, wantErr: "expired"},
		{name: "exp half a second ahead is valid", rule: "access-tokens", claims: `{"iss":"` + issuer + `","aud":"` + hubAud + `","exp":1700000000.5}`},
		{name: "exp as a string", rule: "access-tokens", claims: `{"iss":"` + issuer + `","aud":"` + hubAud + `","exp":"` + future + `"}`, wantErr: "exp claim is not a number"},
		{name: "nbf in the future", rule: "access-tokens", claims: `{"iss":"` + issuer + `","aud":"` + hubAud + `","exp":` + future + `,"nbf":1700000001}`, wantErr: "not valid yet"},
		{name: "nbf equal to now", rule: "access-tokens", claims: `{"iss":"` + issuer + `","aud":"` + hubAud + `","exp":` + future + `,"nbf":1700000000}`},
		{name: "untrusted issuer", rule: "access-tokens", claims: strings.Replace(accessClaims(pubSub), issuer, "https://evil.example", 1), wantErr: `token issuer https://evil.example is not trusted; trusted: ` + issuer},
		{name: "issuer compared exactly", rule: "access-tokens", claims: strings.Replace(accessClaims(pubSub), issuer, issuer+"/", 1), wantErr: "is not trusted"},
		{name: "missing issuer", rule: "access-tokens", claims: `{"aud":"` + hubAud + `","exp":` + future + `}`, wantErr: "token has no issuer (iss)"},
		{name: "any issuer when none configured", rule: "access-tokens", claims: strings.Replace(accessClaims(pubSub), issuer, "https://other.example", 1), issuers: []string{}},
		{name: "second trusted issuer", rule: "access-tokens", claims: strings.Replace(accessClaims(pubSub), issuer, "https://b.example", 1), issuers: []string{issuer, "https://b.example"}},
		{name: "wrong audience", rule: "access-tokens", claims: strings.Replace(accessClaims(pubSub), hubAud, "https://other/", 1), wantErr: "audience"},
		{name: "audience array containing the hub", rule: "access-tokens", claims: strings.Replace(accessClaims(pubSub), `"`+hubAud+`"`, `["x","`+hubAud+`"]`, 1)},
		{name: "audience array without the hub", rule: "access-tokens", claims: strings.Replace(accessClaims(pubSub), `"`+hubAud+`"`, `["x","y"]`, 1), wantErr: "audience"},
		{name: "missing audience", rule: "access-tokens", claims: `{"iss":"` + issuer + `","exp":` + future + `}`, wantErr: "audience"},
		{name: "audience not checked when the hub has none", rule: "access-tokens", claims: `{"iss":"` + issuer + `","exp":` + future + `}`, audience: "-"},
		{name: "audience of the wrong type", rule: "access-tokens", claims: strings.Replace(accessClaims(pubSub), `"`+hubAud+`"`, `5`, 1), wantErr: "aud claim"},
		{name: "audience array with a number", rule: "access-tokens", claims: strings.Replace(accessClaims(pubSub), `"`+hubAud+`"`, `["`+hubAud+`",5]`, 1), wantErr: "aud claim"},
		{name: "client_id of the wrong type", rule: "access-tokens", claims: `{"iss":"` + issuer + `","aud":"` + hubAud + `","exp":` + future + `,"client_id":5}`, wantErr: "client_id claim"},
		{name: "issuer of the wrong type", rule: "access-tokens", claims: `{"iss":5,"aud":"` + hubAud + `","exp":` + future + `}`, wantErr: "iss claim"},
		{name: "legacy mercure claim ignored", rule: "access-tokens", claims: `{"iss":"` + issuer + `","aud":"` + hubAud + `","exp":` + future + `,"mercure":{"publish":["*"],"subscribe":["*"]}}`, check: func(t *testing.T, c *Claims) {
			if c.Publish != nil || c.Subscribe != nil || c.Payload != nil {
				t.Errorf("claims = %+v", c)
			}
		}},
		{name: "no authorization_details grants nothing", rule: "authorization-details", claims: `{"iss":"` + issuer + `","aud":"` + hubAud + `","exp":` + future + `}`, check: grantsNothing},
		{name: "other detail types ignored, even malformed", rule: "authorization-details", claims: accessClaims(`[{"type":"payment","actions":5,"topics":"x"},` + pubSub[1:]), check: func(t *testing.T, c *Claims) {
			if len(c.Publish) != 2 {
				t.Errorf("claims = %+v", c)
			}
		}},
		{name: "authorization_details not an array", rule: "authorization-details", claims: accessClaims(`{}`), wantErr: "authorization_details"},
		{name: "authorization_details null", rule: "authorization-details", claims: accessClaims(`null`), wantErr: "authorization_details"},
		{name: "detail not an object", rule: "authorization-details", claims: accessClaims(`["x"]`), wantErr: "not an object"},
		{name: "detail without type", rule: "authorization-details", claims: accessClaims(`[{"actions":["publish"],"topics":[{"match":"a"}]}]`), wantErr: "no type"},
		{name: "detail type compared exactly", rule: "authorization-details", claims: accessClaims(`[{"type":"https://mercure.rocks/authorization-detail/","actions":["publish"],"topics":[{"match":"a"}]}]`), check: grantsNothing},
		{name: "actions missing", rule: "authorization-details", claims: detail(`"topics":[{"match":"a"}]`), wantErr: "actions"},
		{name: "actions empty", rule: "authorization-details", claims: detail(`"actions":[],"topics":[{"match":"a"}]`), wantErr: "actions"},
		{name: "actions a string", rule: "authorization-details", claims: detail(`"actions":"publish","topics":[{"match":"a"}]`), wantErr: "actions"},
		{name: "actions with a number", rule: "authorization-details", claims: detail(`"actions":["publish",1],"topics":[{"match":"a"}]`), wantErr: "actions"},
		{name: "actions with null", rule: "authorization-details", claims: detail(`"actions":["publish",null],"topics":[{"match":"a"}]`), wantErr: "actions"},
		{name: "unknown action grants nothing", rule: "authorization-details", claims: detail(`"actions":["read"],"topics":[{"match":"a"}]`), check: grantsNothing},
		{name: "actions are case-sensitive", rule: "authorization-details", claims: detail(`"actions":["Publish"],"topics":[{"match":"a"}]`), check: grantsNothing},
		{name: "unknown action beside publish", rule: "authorization-details", claims: detail(`"actions":["read","publish"],"topics":[{"match":"a"}]`), check: func(t *testing.T, c *Claims) {
			if !reflect.DeepEqual(c.Publish, []Selector{{Match: "a", Type: match.TypeExact}}) || c.Subscribe != nil || c.SubscribeDetails != nil {
				t.Errorf("claims = %+v", c)
			}
		}},
		{name: "topics missing", rule: "authorization-details", claims: detail(`"actions":["publish"]`), wantErr: "topics"},
		{name: "topics empty", rule: "authorization-details", claims: detail(`"actions":["publish"],"topics":[]`), wantErr: "topics"},
		{name: "topics null", rule: "authorization-details", claims: detail(`"actions":["publish"],"topics":null`), wantErr: "topics"},
		{name: "bare string topic", rule: "authorization-details", claims: detail(`"actions":["publish"],"topics":["a"]`), wantErr: "topics"},
		{name: "null topic", rule: "authorization-details", claims: detail(`"actions":["publish"],"topics":[{"match":"a"},null]`), wantErr: "topics"},
		{name: "topic without match", rule: "authorization-details", claims: detail(`"actions":["publish"],"topics":[{"match_type":"exact"}]`), wantErr: "no match"},
		{name: "empty match", rule: "authorization-details", claims: detail(`"actions":["publish"],"topics":[{"match":""}]`), wantErr: "no match"},
		{name: "match not a string", rule: "authorization-details", claims: detail(`"actions":["publish"],"topics":[{"match":5}]`), wantErr: "no match"},
		{name: "unknown match_type", rule: "authorization-details", claims: detail(`"actions":["publish"],"topics":[{"match":"a","match_type":"regexp"}]`), wantErr: "match_type"},
		{name: "match_type is case-sensitive", rule: "authorization-details", claims: detail(`"actions":["publish"],"topics":[{"match":"a","match_type":"URLPattern"}]`), wantErr: "match_type"},
		{name: "null match_type", rule: "authorization-details", claims: detail(`"actions":["publish"],"topics":[{"match":"a","match_type":null}]`), wantErr: "match_type"},
		{name: "match_type defaults to exact", rule: "authorization-details", claims: detail(`"actions":["subscribe"],"topics":[{"match":"*"}]`), check: func(t *testing.T, c *Claims) {
			if !reflect.DeepEqual(c.Subscribe, []Selector{{Match: "*", Type: match.TypeExact}}) {
				t.Errorf("subscribe = %+v", c.Subscribe)
			}
		}},
		{name: "one bad detail rejects the whole token", rule: "authorization-details", claims: accessClaims(`[` + pubSub[1:len(pubSub)-1] + `,{` + dt + `,"actions":["publish"],"topics":["b"]}]`), wantErr: "topics"},
		{name: "payload a string", rule: "authorization-details", claims: detail(`"actions":["subscribe"],"topics":[{"match":"a"}],"payload":"x"`), wantErr: "payload"},
		{name: "payload an array", rule: "authorization-details", claims: detail(`"actions":["subscribe"],"topics":[{"match":"a"}],"payload":[1]`), wantErr: "payload"},
		{name: "payload null", rule: "authorization-details", claims: detail(`"actions":["subscribe"],"topics":[{"match":"a"}],"payload":null`), wantErr: "payload"},
		{name: "payload of a publish-only detail is not a subscribe detail", rule: "authorization-details", claims: detail(`"actions":["publish"],"topics":[{"match":"a"}],"payload":{"x":1}`), check: func(t *testing.T, c *Claims) {
			if len(c.Publish) != 1 || c.SubscribeDetails != nil {
				t.Errorf("claims = %+v", c)
			}
		}},
		{name: "subscribe details kept in order", rule: "subscription-payload", claims: accessClaims(`[{` + dt + `,"actions":["subscribe"],"topics":[{"match":"a"}],"payload":{"n":1}},{` + dt + `,"actions":["publish"],"topics":[{"match":"p"}]},{` + dt + `,"actions":["subscribe"],"topics":[{"match":"b"}],"payload":{"n":2}}]`), check: func(t *testing.T, c *Claims) {
			if len(c.SubscribeDetails) != 2 || c.SubscribeDetails[0].Topics[0].Match != "a" || string(c.SubscribeDetails[1].Payload) != `{"n":2}` {
				t.Errorf("details = %+v", c.SubscribeDetails)
			}
			if len(c.Subscribe) != 2 || len(c.Publish) != 1 {
				t.Errorf("claims = %+v", c)
			}
		}},
		{name: "100 details", rule: "authorization-details", claims: accessClaims(detailsN(100))},
		{name: "101 details", rule: "authorization-details", claims: accessClaims(detailsN(101)), wantErr: "too many authorization details"},
		{name: "101 details counting only Mercure ones", rule: "authorization-details", claims: accessClaims(`[{"type":"other"},` + detailsN(100)[1:]), check: func(t *testing.T, c *Claims) {
			if len(c.SubscribeDetails) != 100 {
				t.Errorf("got %d details", len(c.SubscribeDetails))
			}
		}},
		{name: "100 topics in one detail", rule: "authorization-details", claims: detail(`"actions":["subscribe"],"topics":` + topicsN(100))},
		{name: "101 topics in one detail", rule: "authorization-details", claims: detail(`"actions":["subscribe"],"topics":` + topicsN(101)), wantErr: "too many topics"},
		{name: "101 topics summed over details", rule: "authorization-details", claims: accessClaims(`[{` + dt + `,"actions":["subscribe"],"topics":` + topicsN(51) + `},{` + dt + `,"actions":["publish"],"topics":` + topicsN(50) + `}]`), wantErr: "too many topics"},
		{name: "100 topics summed over details", rule: "authorization-details", claims: accessClaims(`[{` + dt + `,"actions":["subscribe"],"topics":` + topicsN(50) + `},{` + dt + `,"actions":["publish"],"topics":` + topicsN(50) + `}]`)},
		{name: "member names are case-sensitive", rule: "authorization-details", claims: detail(`"Actions":["publish"],"actions":["read"],"topics":[{"match":"a"}]`), check: grantsNothing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			issuers := tt.issuers
			if issuers == nil {
				issuers = []string{issuer}
			}
			aud := tt.audience
			switch aud {
			case "":
				aud = hubAud
			case "-":
				aud = ""
			}
			typ := tt.typ
			if typ == "" {
				typ = "at+jwt"
			}
			v := mustVerifier(t, VerifierConfig{Key: []byte(secret), Issuers: issuers, Now: fixed(t0)})
			c, err := v.Verify(hs256(t, typ, tt.claims), aud)
			checkResult(t, "docs/protocol.md#"+tt.rule, c, err, tt.wantErr, tt.check)
		})
	}
}

func isFormat(f Format) func(*testing.T, *Claims) {
	return func(t *testing.T, c *Claims) {
		t.Helper()
		if c.Format != f {
			t.Errorf("format = %v, want %v", c.Format, f)
		}
	}
}

func grantsNothing(t *testing.T, c *Claims) {
	t.Helper()
	if c.Publish != nil || c.Subscribe != nil || c.SubscribeDetails != nil || c.Payload != nil {
		t.Errorf("claims grant something: %+v", c)
	}
}

func checkResult(t *testing.T, ref string, c *Claims, err error, wantErr string, check func(*testing.T, *Claims)) {
	t.Helper()
	if wantErr != "" {
		if err == nil {
			t.Fatalf("%s: accepted, want error containing %q", ref, wantErr)
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), wantErr) || c != nil {
			t.Fatalf("%s: err = %v (claims %v), want ErrInvalid containing %q", ref, err, c, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: rejected: %v", ref, err)
	}
	if check != nil {
		check(t, c)
	}
}

func TestVerifyLegacyRules(t *testing.T) {
	t.Parallel()
	sels := func(prefix string, n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprintf(`"%s%d"`, prefix, i)
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	tests := []struct {
		name    string
		rule    string
		typ     string
		claims  string
		wantErr string
		check   func(t *testing.T, c *Claims)
	}{
		{name: "valid token", rule: "legacy-tokens", claims: `{"mercure":{"publish":["*"],"subscribe":["https://e/{id}","a"],"payload":{"a":1}},"sub":"bob"}`, check: func(t *testing.T, c *Claims) {
			if c.Format != FormatLegacy || !reflect.DeepEqual(c.Publish, []Selector{{Match: "*"}}) ||
				!reflect.DeepEqual(c.Subscribe, []Selector{{Match: "https://e/{id}"}, {Match: "a"}}) ||
				string(c.Payload) != `{"a":1}` || c.SubscribeDetails != nil || c.Subject != "bob" || !c.Expiry.IsZero() {
				t.Errorf("claims = %+v", c)
			}
		}},
		{name: "typ JWT", rule: "legacy-tokens", typ: "JWT", claims: `{"mercure":{"publish":["a"]}}`, check: isFormat(FormatLegacy)},
		{name: "unknown typ", rule: "access-tokens", typ: "at+jwt2", claims: `{"mercure":{"publish":["a"]}}`, check: isFormat(FormatLegacy)},
		{name: "no mercure claim grants nothing", rule: "legacy-tokens", claims: `{"sub":"x"}`, check: grantsNothing},
		{name: "null mercure claim grants nothing", rule: "legacy-tokens", claims: `{"mercure":null}`, check: grantsNothing},
		{name: "empty claims", rule: "legacy-tokens", claims: `{}`, check: grantsNothing},
		{name: "mercure claim a string", rule: "legacy-tokens", claims: `{"mercure":"x"}`, wantErr: "not an object"},
		{name: "mercure claim an array", rule: "legacy-tokens", claims: `{"mercure":[]}`, wantErr: "not an object"},
		{name: "publish a string", rule: "legacy-tokens", claims: `{"mercure":{"publish":"*"}}`, wantErr: "mercure.publish"},
		{name: "publish with a number", rule: "legacy-tokens", claims: `{"mercure":{"publish":["a",1]}}`, wantErr: "mercure.publish"},
		{name: "subscribe with null", rule: "legacy-tokens", claims: `{"mercure":{"subscribe":[null]}}`, wantErr: "mercure.subscribe"},
		{name: "subscribe an object", rule: "legacy-tokens", claims: `{"mercure":{"subscribe":{"a":1}}}`, wantErr: "mercure.subscribe"},
		{name: "null publish counts as absent", rule: "legacy-tokens", claims: `{"mercure":{"publish":null,"subscribe":["a"]}}`, check: func(t *testing.T, c *Claims) {
			if c.Publish != nil || len(c.Subscribe) != 1 {
				t.Errorf("claims = %+v", c)
			}
		}},
		{name: "empty publish", rule: "legacy-tokens", claims: `{"mercure":{"publish":[]}}`, check: func(t *testing.T, c *Claims) {
			if len(c.Publish) != 0 {
				t.Errorf("publish = %v", c.Publish)
			}
		}},
		{name: "1000 publish selectors", rule: "legacy-tokens", claims: `{"mercure":{"publish":` + sels("p", 1000) + `}}`},
		{name: "1001 publish selectors", rule: "legacy-tokens", claims: `{"mercure":{"publish":` + sels("p", 1001) + `}}`, wantErr: "more than 1000"},
		{name: "1001 subscribe selectors", rule: "legacy-tokens", claims: `{"mercure":{"subscribe":` + sels("s", 1001) + `}}`, wantErr: "more than 1000"},
		{name: "payload a string", rule: "legacy-tokens", claims: `{"mercure":{"payload":"hello"}}`, check: func(t *testing.T, c *Claims) {
			if string(c.Payload) != `"hello"` {
				t.Errorf("payload = %s", c.Payload)
			}
		}},
		{name: "payload a number", rule: "legacy-tokens", claims: `{"mercure":{"payload":42}}`, check: func(t *testing.T, c *Claims) {
			if string(c.Payload) != `42` {
				t.Errorf("payload = %s", c.Payload)
			}
		}},
		{name: "aud and iss not checked", rule: "legacy-tokens", claims: `{"iss":"https://evil.example","aud":"https://other/","mercure":{"publish":["a"]}}`, check: func(t *testing.T, c *Claims) {
			if c.Issuer != "https://evil.example" || len(c.Publish) != 1 {
				t.Errorf("claims = %+v", c)
			}
		}},
		{name: "expired", rule: "token-expiry", claims: `{"exp":` + pastTime + `,"mercure":{"subscribe":["*"]}}`, wantErr: "expired"},
		{name: "exp kept", rule: "token-expiry", claims: `{"exp":` + future + `,"mercure":{"subscribe":["*"]}}`, check: func(t *testing.T, c *Claims) {
			if !c.Expiry.Equal(time.Unix(1700003600, 0)) {
				t.Errorf("expiry = %v", c.Expiry)
			}
		}},
		{name: "huge exp is clamped, not wrapped", rule: "token-expiry", claims: `{"exp":1e300}`, check: func(t *testing.T, c *Claims) {
			if c.Expiry.Year() != 9999 {
				t.Errorf("expiry = %v", c.Expiry)
			}
		}},
		{name: "huge negative exp is expired", rule: "token-expiry", claims: `{"exp":-1e300}`, wantErr: "expired"},
		{name: "nbf in the future", rule: "access-tokens", claims: `{"nbf":1700000001}`, wantErr: "not valid yet"},
		{name: "exp a string", rule: "token-expiry", claims: `{"exp":"1700003600"}`, wantErr: "exp claim"},
		{name: "iat a string", rule: "access-tokens", claims: `{"iat":"now"}`, wantErr: "iat claim"},
		{name: "sub a number", rule: "access-tokens", claims: `{"sub":5}`, wantErr: "sub claim"},
		{name: "client_id read when a string", rule: "legacy-tokens", claims: `{"client_id":"app","sub":"s","iss":"i"}`, check: func(t *testing.T, c *Claims) {
			if c.ClientID != "app" || c.Subject != "s" || c.Issuer != "i" {
				t.Errorf("claims = %+v", c)
			}
		}},
		{name: "client_id of another type ignored", rule: "legacy-tokens", claims: `{"client_id":5}`, check: func(t *testing.T, c *Claims) {
			if c.ClientID != "" {
				t.Errorf("client_id = %q", c.ClientID)
			}
		}},
		{name: "claim names are case-sensitive", rule: "legacy-tokens", claims: `{"Mercure":{"publish":["*"]},"EXP":1}`, check: func(t *testing.T, c *Claims) {
			if c.Publish != nil || !c.Expiry.IsZero() {
				t.Errorf("claims = %+v", c)
			}
		}},
		{name: "claims an array", rule: "access-tokens", claims: `[1]`, wantErr: "not a JSON object"},
		{name: "claims null", rule: "access-tokens", claims: `null`, wantErr: "not a JSON object"},
		{name: "claims not JSON", rule: "access-tokens", claims: `{"a":`, wantErr: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := mustVerifier(t, VerifierConfig{Key: []byte(secret), Issuers: []string{issuer}, Now: fixed(t0)})
			c, err := v.Verify(hs256(t, tt.typ, tt.claims), hubAud)
			checkResult(t, "docs/protocol.md#"+tt.rule, c, err, tt.wantErr, tt.check)
		})
	}
}

// TestVerifySignatureRules covers docs/protocol.md#access-tokens algorithm
// and key rules, and malformed tokens.
func TestVerifySignatureRules(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	b64 := base64.RawURLEncoding
	valid := hs256(t, "", `{"mercure":{"publish":["*"]}}`)
	parts := strings.Split(valid, ".")

	// A server that must never be contacted: tokens pointing at it through
	// jku or x5u must not make the verifier fetch anything.
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	// The subtests are parallel, so they run after this function returns:
	// the server and the hit count are checked once they are all done.
	t.Cleanup(func() {
		srv.Close()
		if n := hits.Load(); n != 0 {
			t.Errorf("the verifier contacted a URL from a token header %d times", n)
		}
	})

	attackerJWK := map[string]any{"kty": "EC", "crv": "P-256",
		"x": b64.EncodeToString(k.ec256b.X.FillBytes(make([]byte, 32))), "y": b64.EncodeToString(k.ec256b.Y.FillBytes(make([]byte, 32)))}
	legacyClaims := `{"mercure":{"publish":["*"]}}`

	// Flip the unused low bits of the last signature character: the same
	// bytes under lax decoding, a different string.
	sig := parts[2]
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", sig[len(sig)-1])
	malleable := parts[0] + "." + parts[1] + "." + sig[:len(sig)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last^1])

	tests := []struct {
		name    string
		alg     string
		key     []byte
		token   string
		wantErr string
	}{
		{name: "valid HS256", token: valid},
		{name: "alg none", token: signRawNone(`{"alg":"none","typ":"JWT"}`, legacyClaims), wantErr: "unexpected signing algorithm"},
		{name: "alg None", token: signRawNone(`{"alg":"None"}`, legacyClaims), wantErr: "unexpected signing algorithm"},
		{name: "missing alg", token: signRawNone(`{"typ":"JWT"}`, legacyClaims), wantErr: "unexpected signing algorithm"},
		{name: "HS384 with the right secret", token: signRaw(t, map[string]any{"alg": "HS384"}, legacyClaims, []byte(secret)), wantErr: "unexpected signing algorithm"},
		{name: "wrong secret", token: signRaw(t, map[string]any{"alg": "HS256"}, legacyClaims, []byte("other")), wantErr: "signature is invalid"},
		{name: "claims tampered", token: parts[0] + "." + b64.EncodeToString([]byte(`{"mercure":{"publish":["x"]}}`)) + "." + parts[2], wantErr: "signature is invalid"},
		{name: "signature stripped", token: parts[0] + "." + parts[1] + ".", wantErr: "signature is invalid"},
		{name: "non-canonical base64 signature", token: malleable, wantErr: "malformed"},
		{name: "padded signature", token: valid + "=", wantErr: "malformed"},
		{name: "public key used as an HMAC secret", alg: "RS256", key: pkixPEM(t, &k.rsa.PublicKey),
			token: signRaw(t, map[string]any{"alg": "HS256"}, legacyClaims, pkixPEM(t, &k.rsa.PublicKey)), wantErr: "unexpected signing algorithm"},
		{name: "embedded jwk is not trusted", alg: "ES256", key: pkixPEM(t, &k.ec256.PublicKey),
			token: signRaw(t, map[string]any{"alg": "ES256", "jwk": attackerJWK}, legacyClaims, k.ec256b), wantErr: "signature is invalid"},
		{name: "jku is not followed", alg: "ES256", key: pkixPEM(t, &k.ec256.PublicKey),
			token: signRaw(t, map[string]any{"alg": "ES256", "jku": srv.URL, "kid": "x"}, legacyClaims, k.ec256b), wantErr: "signature is invalid"},
		{name: "x5u is not followed", alg: "ES256", key: pkixPEM(t, &k.ec256.PublicKey),
			token: signRaw(t, map[string]any{"alg": "ES256", "x5u": srv.URL}, legacyClaims, k.ec256b), wantErr: "signature is invalid"},
		{name: "ES256 token for an RS256 hub", alg: "RS256", key: pkixPEM(t, &k.rsa.PublicKey),
			token: signRaw(t, map[string]any{"alg": "ES256"}, legacyClaims, k.ec256), wantErr: "unexpected signing algorithm"},
		{name: "PS256 token for an RS256 hub", alg: "RS256", key: pkixPEM(t, &k.rsa.PublicKey),
			token: signRaw(t, map[string]any{"alg": "PS256"}, legacyClaims, k.rsa), wantErr: "unexpected signing algorithm"},
		{name: "valid RS256", alg: "RS256", key: pkixPEM(t, &k.rsa.PublicKey), token: signRaw(t, map[string]any{"alg": "RS256"}, legacyClaims, k.rsa)},
		{name: "RS256 signed by another key", alg: "RS256", key: pkixPEM(t, &k.rsa.PublicKey), token: signRaw(t, map[string]any{"alg": "RS256"}, legacyClaims, k.rsa2), wantErr: "signature is invalid"},
		{name: "crit header", token: signRaw(t, map[string]any{"alg": "HS256", "crit": []string{"exp"}}, legacyClaims, []byte(secret)), wantErr: "critical"},
		{name: "kid not a string", token: signRaw(t, map[string]any{"alg": "HS256", "kid": 7}, legacyClaims, []byte(secret)), wantErr: "kid"},
		{name: "kid ignored without a JWKS", token: signRaw(t, map[string]any{"alg": "HS256", "kid": "k1"}, legacyClaims, []byte(secret))},
		{name: "two parts", token: parts[0] + "." + parts[1], wantErr: "malformed"},
		{name: "four parts", token: valid + ".x", wantErr: "malformed"},
		{name: "empty", token: "", wantErr: "malformed"},
		{name: "header not base64", token: "!!." + parts[1] + "." + parts[2], wantErr: "malformed"},
		{name: "header not JSON", token: b64.EncodeToString([]byte("alg")) + "." + parts[1] + "." + parts[2], wantErr: "malformed"},
		{name: "header an array", token: b64.EncodeToString([]byte(`["HS256"]`)) + "." + parts[1] + "." + parts[2], wantErr: "malformed"},
		{name: "too large", token: parts[0] + "." + strings.Repeat("A", maxTokenSize) + "." + parts[2], wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			alg, key := tt.alg, tt.key
			if key == nil {
				key = []byte(secret)
			}
			v := mustVerifier(t, VerifierConfig{Alg: alg, Key: key, Now: fixed(t0)})
			c, err := v.Verify(tt.token, "")
			checkResult(t, "docs/protocol.md#access-tokens", c, err, tt.wantErr, nil)
		})
	}
}

// signRawNone builds an unsigned token with the given header JSON.
func signRawNone(header, claims string) string {
	b64 := base64.RawURLEncoding
	return b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims)) + "."
}

func TestNilVerifierRejects(t *testing.T) {
	t.Parallel()
	var v *Verifier
	if _, err := v.Verify(hs256(t, "", `{}`), ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestNewVerifierValidates(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	tests := []struct {
		name    string
		cfg     VerifierConfig
		wantErr string
	}{
		{name: "default HS256", cfg: VerifierConfig{Key: []byte(secret)}},
		{name: "none", cfg: VerifierConfig{Alg: "none", Key: []byte(secret)}, wantErr: `"none"`},
		{name: "unknown alg", cfg: VerifierConfig{Alg: "HS1", Key: []byte(secret)}, wantErr: "unsupported algorithm"},
		{name: "lower-case alg", cfg: VerifierConfig{Alg: "hs256", Key: []byte(secret)}, wantErr: "unsupported algorithm"},
		{name: "no key", cfg: VerifierConfig{}, wantErr: "key or a JWKS"},
		{name: "RS256 with a secret", cfg: VerifierConfig{Alg: "RS256", Key: []byte(secret)}, wantErr: "RS256 needs a PEM RSA public key"},
		{name: "HS256 with a PEM key", cfg: VerifierConfig{Key: pkixPEM(t, &k.rsa.PublicKey)}, wantErr: "HS256 needs a shared secret"},
		{name: "ES256 with a P-384 key", cfg: VerifierConfig{Alg: "ES256", Key: pkixPEM(t, &k.ec384.PublicKey)}, wantErr: "ES256 needs a PEM ECDSA P-256 public key: found an ECDSA P-384 key"},
		{name: "EdDSA", cfg: VerifierConfig{Alg: "EdDSA", Key: pkixPEM(t, k.ed.Public())}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := NewVerifier(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || v == nil {
					t.Fatalf("NewVerifier: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestVerifyCache checks that the cache of verified tokens never extends a
// token's life (docs/protocol.md#token-expiry: an expired token is refused on
// reconnection) and is keyed by audience.
func TestVerifyCache(t *testing.T) {
	t.Parallel()

	t.Run("hit still rejects after expiry", func(t *testing.T) {
		t.Parallel()
		clk := newClock(t0)
		v := mustVerifier(t, VerifierConfig{Key: []byte(secret), Now: clk.now})
		tok := hs256(t, "", `{"exp":1700000010,"mercure":{"subscribe":["*"]}}`)
		if _, err := v.Verify(tok, ""); err != nil {
			t.Fatal(err)
		}
		if _, ok := v.cache.get(cacheKey{raw: tok}); !ok {
			t.Fatal("verified token not cached")
		}
		clk.add(9 * time.Second)
		if _, err := v.Verify(tok, ""); err != nil {
			t.Fatalf("before exp: %v", err)
		}
		clk.add(time.Second)
		if _, err := v.Verify(tok, ""); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("at exp: err = %v, want expired", err)
		}
		if _, ok := v.cache.get(cacheKey{raw: tok}); ok {
			t.Error("expired token still cached")
		}
	})

	t.Run("hit still checks nbf", func(t *testing.T) {
		t.Parallel()
		clk := newClock(t0)
		v := mustVerifier(t, VerifierConfig{Key: []byte(secret), Now: clk.now})
		tok := hs256(t, "", `{"nbf":1700000000}`)
		if _, err := v.Verify(tok, ""); err != nil {
			t.Fatal(err)
		}
		clk.add(-time.Second) // the clock stepped back
		if _, err := v.Verify(tok, ""); err == nil || !strings.Contains(err.Error(), "not valid yet") {
			t.Fatalf("err = %v, want not valid yet", err)
		}
	})

	t.Run("keyed by audience", func(t *testing.T) {
		t.Parallel()
		v := mustVerifier(t, VerifierConfig{Key: []byte(secret), Now: fixed(t0)})
		tok := hs256(t, "at+jwt", accessClaims(`[]`))
		if _, err := v.Verify(tok, hubAud); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(tok, "https://other.example/"); err == nil {
			t.Fatal("a token cached for one audience was accepted for another")
		}
	})

	t.Run("returned claims are copies", func(t *testing.T) {
		t.Parallel()
		v := mustVerifier(t, VerifierConfig{Key: []byte(secret), Now: fixed(t0)})
		tok := hs256(t, "", `{"sub":"a"}`)
		c1, err := v.Verify(tok, "")
		if err != nil {
			t.Fatal(err)
		}
		c1.Subject = "mutated"
		c2, err := v.Verify(tok, "")
		if err != nil || c2.Subject != "a" {
			t.Fatalf("second verify = %+v, %v", c2, err)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		v := mustVerifier(t, VerifierConfig{Key: []byte(secret), Now: fixed(t0), CacheSize: 3})
		for i := range 10 {
			tok := hs256(t, "", fmt.Sprintf(`{"sub":"%d"}`, i))
			c, err := v.Verify(tok, "")
			if err != nil || c.Subject != fmt.Sprint(i) {
				t.Fatalf("verify %d: %+v %v", i, c, err)
			}
			if n := v.cache.len(); n > 3 {
				t.Fatalf("cache holds %d entries, bound is 3", n)
			}
		}
	})

	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		v := mustVerifier(t, VerifierConfig{Key: []byte(secret), Now: fixed(t0), CacheSize: -1})
		tok := hs256(t, "", `{}`)
		for range 2 {
			if _, err := v.Verify(tok, ""); err != nil {
				t.Fatal(err)
			}
		}
		if v.cache != nil {
			t.Fatal("cache not disabled")
		}
	})

	t.Run("failures are not cached", func(t *testing.T) {
		t.Parallel()
		v := mustVerifier(t, VerifierConfig{Key: []byte(secret), Now: fixed(t0)})
		tok := hs256(t, "", `{"exp":1}`)
		for range 2 {
			if _, err := v.Verify(tok, ""); err == nil {
				t.Fatal("expired token accepted")
			}
		}
		if n := v.cache.len(); n != 0 {
			t.Fatalf("cache holds %d entries", n)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		t.Parallel()
		v := mustVerifier(t, VerifierConfig{Key: []byte(secret), Now: fixed(t0), CacheSize: 8})
		toks := make([]string, 16)
		for i := range toks {
			toks[i] = hs256(t, "", fmt.Sprintf(`{"sub":"%d","mercure":{"publish":["t%d"]}}`, i, i))
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 200 {
					n := (g + i) % len(toks)
					c, err := v.Verify(toks[n], "")
					if err != nil || c.Subject != fmt.Sprint(n) || c.Publish[0].Match != fmt.Sprintf("t%d", n) {
						t.Errorf("verify %d: %+v %v", n, c, err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

func BenchmarkVerify(b *testing.B) {
	k := getKeys(b)
	claims := func(i int) string {
		return fmt.Sprintf(`{"exp":1700003600,"sub":"%d","mercure":{"publish":["https://example.com/books/{id}"],"subscribe":["*"]}}`, i)
	}
	access := func(i int) string {
		return fmt.Sprintf(`{"iss":"%s","aud":"%s","exp":1700003600,"sub":"%d","authorization_details":[{%s,"actions":["publish","subscribe"],"topics":[{"match":"https://example.com/books/:id","match_type":"urlpattern"}]}]}`, issuer, hubAud, i, dt)
	}
	cases := []struct {
		name    string
		alg     string
		pub     []byte
		sign    any
		typ     string
		claims  func(int) string
		noCache bool
	}{
		{name: "HS256/legacy/cached", alg: "HS256", pub: []byte(secret), sign: []byte(secret), claims: claims},
		{name: "HS256/legacy/uncached", alg: "HS256", pub: []byte(secret), sign: []byte(secret), claims: claims, noCache: true},
		{name: "HS256/access/uncached", alg: "HS256", pub: []byte(secret), sign: []byte(secret), typ: "at+jwt", claims: access, noCache: true},
		{name: "RS256/legacy/uncached", alg: "RS256", pub: pkixPEM(b, &k.rsa.PublicKey), sign: k.rsa, claims: claims, noCache: true},
		{name: "ES256/legacy/uncached", alg: "ES256", pub: pkixPEM(b, &k.ec256.PublicKey), sign: k.ec256, claims: claims, noCache: true},
		{name: "EdDSA/legacy/uncached", alg: "EdDSA", pub: pkixPEM(b, k.ed.Public()), sign: k.ed, claims: claims, noCache: true},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			size := 0
			if bc.noCache {
				size = -1
			}
			v := mustVerifier(b, VerifierConfig{Alg: bc.alg, Key: bc.pub, Now: fixed(t0), CacheSize: size, Issuers: []string{issuer}})
			h := map[string]any{"alg": bc.alg}
			if bc.typ != "" {
				h["typ"] = bc.typ
			}
			tok := signRaw(b, h, bc.claims(1), bc.sign)
			if _, err := v.Verify(tok, hubAud); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok, hubAud); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
